//! Generation outside the model: batched, left-padded sampling of several
//! completions per prompt (GRPO samples a group of G at once) with a
//! caller-visible KV cache, greedy or temperature/top-p, and stop tokens.

use std::time::{Duration, Instant};

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rand::Rng;

use crate::error::{LmError, Result};
use crate::llama::{KvCache, Llama};
use crate::lora::Adapter;

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    /// The most likely token (the first of equals, as `torch.argmax`).
    Greedy,
    /// Sample from `softmax(logits / temperature)` restricted to the smallest
    /// set of most likely tokens whose probability reaches `top_p`.
    TopP { temperature: f32, top_p: f32 },
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateConfig {
    pub max_new_tokens: usize,
    pub sampling: Sampling,
    /// A row stops after producing one of these (it is kept in its tokens).
    pub stop_tokens: Vec<u32>,
    /// Fed for rows that have stopped (masked out; any valid id does).
    pub pad_token: u32,
}

/// One completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// Index of its prompt.
    pub prompt: usize,
    /// The new tokens, the stop token included when one ended it.
    pub tokens: Vec<u32>,
    /// Whether a stop token ended it (rather than the token budget).
    pub stopped: bool,
}

/// Work and time of a generate call.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GenerateStats {
    /// Prompt tokens processed (padding excluded).
    pub prefill_tokens: usize,
    pub prefill_time: Duration,
    /// Tokens sampled after the first (each needs one decode step).
    pub decode_tokens: usize,
    pub decode_time: Duration,
}

impl GenerateStats {
    pub fn prefill_tokens_per_s(&self) -> f64 {
        self.prefill_tokens as f64 / self.prefill_time.as_secs_f64().max(1e-12)
    }
    pub fn decode_tokens_per_s(&self) -> f64 {
        self.decode_tokens as f64 / self.decode_time.as_secs_f64().max(1e-12)
    }
}

/// Picks a token from one row of logits.
pub fn sample(logits: &[f32], sampling: Sampling, rng: &mut impl Rng) -> u32 {
    match sampling {
        Sampling::Greedy => argmax(logits),
        Sampling::TopP { temperature, top_p } => {
            if temperature <= 0.0 {
                return argmax(logits);
            }
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let t = temperature as f64;
            let mut probs: Vec<(u32, f64)> = logits
                .iter()
                .enumerate()
                .map(|(i, &l)| (i as u32, ((l as f64 - max) / t).exp()))
                .collect();
            let total: f64 = probs.iter().map(|p| p.1).sum();
            probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let mut kept = 0.0;
            let mut n = 0;
            for p in &probs {
                kept += p.1 / total;
                n += 1;
                if kept >= top_p as f64 {
                    break;
                }
            }
            let probs = &probs[..n];
            let mass: f64 = probs.iter().map(|p| p.1).sum();
            let mut u = rng.random::<f64>() * mass;
            for &(id, p) in probs {
                if u < p {
                    return id;
                }
                u -= p;
            }
            probs[n - 1].0
        }
    }
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Left-pads prompts into one batch: the token ids (`pad` in front) and
/// which entries are real, both `[rows * width]` row-major.
pub fn left_pad(prompts: &[&[u32]], pad: u32) -> (Vec<i64>, Vec<bool>, usize) {
    let width = prompts.iter().map(|p| p.len()).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(prompts.len() * width);
    let mut real = Vec::with_capacity(prompts.len() * width);
    for p in prompts {
        let gap = width - p.len();
        ids.extend(std::iter::repeat_n(pad as i64, gap));
        real.extend(std::iter::repeat_n(false, gap));
        ids.extend(p.iter().map(|&t| t as i64));
        real.extend(std::iter::repeat_n(true, p.len()));
    }
    (ids, real, width)
}

/// The last position's logits of each row, on the host.
///
/// # Shapes
/// `hidden`: `[rows, seq, hidden]` → `rows` vectors of `vocab`
fn last_logits<B: Backend>(model: &Llama<B>, hidden: Tensor<B, 3>) -> Result<Vec<Vec<f32>>> {
    let [rows, s, _] = hidden.dims();
    let logits = model.head(hidden.narrow(1, s - 1, 1));
    let v = model.vocab_size();
    let flat: Vec<f32> = logits
        .into_data()
        .convert::<f32>()
        .into_vec()
        .map_err(|e| LmError::Request(format!("reading logits: {e:?}")))?;
    Ok((0..rows).map(|r| flat[r * v..(r + 1) * v].to_vec()).collect())
}

/// Generates `group` completions for each prompt in one batch: rows are the
/// prompts, each repeated `group` times, left-padded; one prefill, then one
/// decode step per token with the KV cache, until every row has stopped or
/// `max_new_tokens` are out. Completions come in row order (prompt-major).
pub fn generate<B: Backend>(
    model: &Llama<B>,
    prompts: &[Vec<u32>],
    group: usize,
    config: &GenerateConfig,
    adapter: Adapter,
    rng: &mut impl Rng,
) -> Result<(Vec<Completion>, GenerateStats)> {
    if prompts.is_empty() || group == 0 {
        return Err(LmError::Request("no prompts, or a group of 0".into()));
    }
    if let Some(i) = prompts.iter().position(Vec::is_empty) {
        return Err(LmError::Request(format!("prompt {i} has no tokens")));
    }
    let vocab = model.vocab_size() as u32;
    if let Some(bad) = prompts.iter().flatten().find(|&&t| t >= vocab) {
        return Err(LmError::Request(format!(
            "token id {bad} is outside the vocabulary of {vocab}"
        )));
    }
    let device = model.device();
    let rows: Vec<&[u32]> = prompts
        .iter()
        .flat_map(|p| std::iter::repeat_n(p.as_slice(), group))
        .collect();
    let n = rows.len();
    let (ids, real, width) = left_pad(&rows, config.pad_token);
    let mut stats = GenerateStats {
        prefill_tokens: prompts.iter().map(Vec::len).sum::<usize>() * group,
        ..Default::default()
    };
    let mut out: Vec<Completion> = (0..n)
        .map(|r| Completion {
            prompt: r / group,
            tokens: Vec::new(),
            stopped: false,
        })
        .collect();
    if config.max_new_tokens == 0 {
        return Ok((out, stats));
    }

    let start = Instant::now();
    let mut cache = KvCache::new(model.config.num_hidden_layers);
    let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [n, width]), &device);
    let hidden = model.hidden(tokens, Some(&real), Some(&mut cache), adapter);
    let mut logits = last_logits(model, hidden)?;
    stats.prefill_time = start.elapsed();

    let start = Instant::now();
    loop {
        let mut next = Vec::with_capacity(n);
        let mut live = Vec::with_capacity(n);
        for (row, c) in out.iter_mut().enumerate() {
            if c.stopped || c.tokens.len() >= config.max_new_tokens {
                next.push(config.pad_token as i64);
                live.push(false);
                continue;
            }
            let t = sample(&logits[row], config.sampling, rng);
            c.tokens.push(t);
            c.stopped = config.stop_tokens.contains(&t);
            let more = !c.stopped && c.tokens.len() < config.max_new_tokens;
            next.push(t as i64);
            live.push(more);
        }
        if !live.iter().any(|&l| l) {
            break;
        }
        stats.decode_tokens += live.iter().filter(|&&l| l).count();
        let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(next, [n, 1]), &device);
        let hidden = model.hidden(tokens, Some(&live), Some(&mut cache), adapter);
        logits = last_logits(model, hidden)?;
    }
    stats.decode_time = start.elapsed();
    Ok((out, stats))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn top_p_keeps_the_nucleus() {
        let logits = [0.0f32, 5.0, 4.9, -10.0];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let s = Sampling::TopP {
            temperature: 1.0,
            top_p: 0.9,
        };
        let mut counts = [0usize; 4];
        for _ in 0..2000 {
            counts[sample(&logits, s, &mut rng) as usize] += 1;
        }
        // Tokens 1 and 2 hold ~99% of the mass; 0 and 3 are cut.
        assert_eq!(counts[0] + counts[3], 0, "{counts:?}");
        assert!(counts[1] > 900 && counts[2] > 800, "{counts:?}");
        // A tiny top_p is greedy.
        let g = Sampling::TopP {
            temperature: 1.0,
            top_p: 1e-6,
        };
        assert!((0..50).all(|_| sample(&logits, g, &mut rng) == 1));
        assert_eq!(sample(&logits, Sampling::Greedy, &mut rng), 1);
    }

    #[test]
    fn temperature_sharpens() {
        let logits = [1.0f32, 0.0];
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let frac = |t: f32, rng: &mut ChaCha8Rng| {
            let s = Sampling::TopP {
                temperature: t,
                top_p: 1.0,
            };
            (0..4000).filter(|_| sample(&logits, s, rng) == 0).count() as f64 / 4000.0
        };
        let p1 = 1.0 / (1.0 + (-1.0f64).exp());
        assert!((frac(1.0, &mut rng) - p1).abs() < 0.03);
        assert!(frac(0.25, &mut rng) > 0.95);
    }

    #[test]
    fn left_padding_layout() {
        let (ids, real, w) = left_pad(&[&[5, 6, 7], &[8]], 0);
        assert_eq!(w, 3);
        assert_eq!(ids, vec![5, 6, 7, 0, 0, 8]);
        assert_eq!(real, vec![true, true, true, false, false, true]);
    }
}
