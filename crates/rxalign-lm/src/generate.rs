//! Decoding outside the model, one path for every caller: a sampler
//! ([`pick`]: greedy, temperature, top-k, top-p, banned tokens, each pick
//! with its log-probability) and a step-wise decoder over a caller-owned
//! KV cache ([`decode`]). [`generate`] samples several completions per
//! prompt with it (GRPO samples a group of G at once); the list editor of
//! `rxalign-llama` decodes its lines with it, continuing cached prompts.

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
    /// Sample from `softmax(logits / temperature)`, restricted to the
    /// `top_k` most likely tokens (`None`: all) and then to the smallest set
    /// of most likely tokens whose probability reaches `top_p` (1: all).
    /// A temperature of 0 or less is greedy.
    Sample {
        temperature: f32,
        top_k: Option<usize>,
        top_p: f32,
    },
}

impl Sampling {
    /// Plain sampling at `temperature`: no top-k, no top-p.
    pub fn at(temperature: f32) -> Self {
        Sampling::Sample {
            temperature,
            top_k: None,
            top_p: 1.0,
        }
    }

    /// The temperature of the distribution picks are scored under (1 when
    /// greedy).
    fn temperature(self) -> f32 {
        match self {
            Sampling::Sample { temperature, .. } if temperature > 0.0 => temperature,
            _ => 1.0,
        }
    }
}

/// A chosen token and its log-probability under `softmax(logits /
/// temperature)` with the banned tokens removed (before top-k and top-p cut
/// the distribution: with neither, the distribution it was drawn from).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pick {
    pub token: u32,
    pub log_prob: f32,
}

/// `log softmax(logits / temperature)`, with `banned` at −∞ (probability 0).
/// Fails when no token keeps a finite score (a diverged model).
pub fn log_probs(logits: &[f32], temperature: f32, banned: &[u32]) -> Result<Vec<f32>> {
    let mut z: Vec<f32> = logits.iter().map(|l| l / temperature).collect();
    for &b in banned {
        if let Some(slot) = z.get_mut(b as usize) {
            *slot = f32::NEG_INFINITY;
        }
    }
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return Err(LmError::NonFinite { what: "token logits" });
    }
    let sum: f32 = z.iter().map(|x| (x - max).exp()).sum();
    let log_sum = max + sum.ln();
    Ok(z.iter().map(|x| x - log_sum).collect())
}

/// Picks a token from one row of logits. Greedy draws nothing from `rng`;
/// sampling draws one `f64` per token.
pub fn pick(logits: &[f32], sampling: Sampling, banned: &[u32], rng: &mut impl Rng) -> Result<Pick> {
    let lp = log_probs(logits, sampling.temperature(), banned)?;
    let token = match sampling {
        Sampling::Sample {
            temperature,
            top_k,
            top_p,
        } if temperature > 0.0 => draw(&lp, top_k, top_p, rng),
        _ => argmax(&lp),
    };
    Ok(Pick {
        token: token as u32,
        log_prob: lp[token],
    })
}

/// A token drawn from the distribution `lp` (log-probabilities): without
/// top-k and top-p, by walking the tokens in id order; with them, the kept
/// most likely tokens (ties by id) renormalised.
fn draw(lp: &[f32], top_k: Option<usize>, top_p: f32, rng: &mut impl Rng) -> usize {
    let u: f64 = rng.random();
    if top_k.is_none() && top_p >= 1.0 {
        let mut acc = 0.0f64;
        let mut last = 0;
        for (i, l) in lp.iter().enumerate() {
            let p = f64::from(l.exp());
            if p > 0.0 {
                last = i;
            }
            acc += p;
            if u < acc {
                return i;
            }
        }
        return last;
    }
    let mut order: Vec<(usize, f64)> = lp.iter().map(|l| f64::from(l.exp())).enumerate().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    order.truncate(top_k.unwrap_or(order.len()).max(1));
    let mut kept = 0.0;
    let mut n = 0;
    for &(_, p) in &order {
        kept += p;
        n += 1;
        if kept >= f64::from(top_p) {
            break;
        }
    }
    let order = &order[..n];
    let mut u = u * kept;
    for &(id, p) in order {
        if u < p {
            return id;
        }
        u -= p;
    }
    order[n - 1].0
}

/// The first of the largest.
fn argmax(lp: &[f32]) -> usize {
    let mut best = 0;
    for (i, &l) in lp.iter().enumerate() {
        if l > lp[best] {
            best = i;
        }
    }
    best
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

/// How a [`decode`] picks and when each row ends.
#[expect(missing_debug_implementations, reason = "holds the caller's stop closure")]
pub struct DecodeRule<'a> {
    /// A row ends after this many new tokens.
    pub max_new_tokens: usize,
    pub sampling: Sampling,
    /// A row ends after a token for which this is true (kept in its tokens).
    pub stop: &'a dyn Fn(u32) -> bool,
    /// Tokens a row may produce only as its first new token (the list
    /// editor's end of the answer, which may not end a line begun).
    pub banned_after_first: &'a [u32],
    /// Fed in front of shorter rows and for rows that have ended (masked out).
    pub pad: u32,
}

/// One row's new tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The new tokens, the stop token included when one ended the row.
    pub tokens: Vec<u32>,
    /// Each token's log-probability ([`Pick::log_prob`]).
    pub log_probs: Vec<f32>,
    /// Whether a stop token ended the row (rather than the token budget).
    pub stopped: bool,
}

/// Reads `rows` (row `r` continues `cache`'s row `r`; an empty cache: from
/// nothing), then decodes one token per row per step over `cache` until
/// every row has ended. The rows are left-padded with `rule.pad`; a row
/// that has ended reads padding, so its cache keeps what it wrote while it
/// was live (all its tokens but the last).
///
/// # Shapes
/// The rows `[rows, width]` after the cached `[rows, kv_heads, cached,
/// head_dim]` keys and values; per step, the last position's logits
/// `[rows, vocab]` come to the host.
pub fn decode<B: Backend>(
    model: &Llama<B>,
    cache: &mut KvCache<B>,
    rows: &[&[u32]],
    adapter: Adapter,
    rule: &DecodeRule<'_>,
    rng: &mut impl Rng,
) -> Result<(Vec<Decoded>, GenerateStats)> {
    let n = rows.len();
    let mut out: Vec<Decoded> = (0..n)
        .map(|_| Decoded {
            tokens: Vec::new(),
            log_probs: Vec::new(),
            stopped: false,
        })
        .collect();
    let mut stats = GenerateStats {
        prefill_tokens: rows.iter().map(|r| r.len()).sum(),
        ..Default::default()
    };
    if n == 0 || rule.max_new_tokens == 0 {
        return Ok((out, stats));
    }
    if let Some(i) = rows.iter().position(|r| r.is_empty()) {
        return Err(LmError::Request(format!("row {i} has no tokens to read")));
    }
    let device = model.device();
    let start = Instant::now();
    let (ids, real, width) = left_pad(rows, rule.pad);
    let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [n, width]), &device);
    let hidden = model.hidden(tokens, Some(&real), Some(cache), adapter); // [rows, width, hidden]
    let mut logits = last_logits(model, hidden)?;
    stats.prefill_time = start.elapsed();

    let start = Instant::now();
    let mut done = vec![false; n];
    for step in 0.. {
        let banned: &[u32] = if step == 0 { &[] } else { rule.banned_after_first };
        let mut next = Vec::with_capacity(n);
        for (r, row) in out.iter_mut().enumerate() {
            if done[r] {
                next.push(rule.pad as i64);
                continue;
            }
            let p = pick(&logits[r], rule.sampling, banned, rng)?;
            row.tokens.push(p.token);
            row.log_probs.push(p.log_prob);
            row.stopped = (rule.stop)(p.token);
            done[r] = row.stopped || row.tokens.len() >= rule.max_new_tokens;
            next.push(p.token as i64);
        }
        if done.iter().all(|&d| d) {
            break;
        }
        let live: Vec<bool> = done.iter().map(|d| !d).collect();
        stats.decode_tokens += live.iter().filter(|&&l| l).count();
        let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(next, [n, 1]), &device);
        let hidden = model.hidden(tokens, Some(&live), Some(cache), adapter);
        logits = last_logits(model, hidden)?;
    }
    stats.decode_time = start.elapsed();
    Ok((out, stats))
}

/// Generates `group` completions for each prompt in one batch: rows are the
/// prompts, each repeated `group` times, left-padded; one prefill, then one
/// decode step per token with the KV cache ([`decode`]), until every row has
/// stopped or `max_new_tokens` are out. Completions come in row order
/// (prompt-major).
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
    let rows: Vec<&[u32]> = prompts
        .iter()
        .flat_map(|p| std::iter::repeat_n(p.as_slice(), group))
        .collect();
    let stop = |t: u32| config.stop_tokens.contains(&t);
    let rule = DecodeRule {
        max_new_tokens: config.max_new_tokens,
        sampling: config.sampling,
        stop: &stop,
        banned_after_first: &[],
        pad: config.pad_token,
    };
    let mut cache = KvCache::new(model.config.num_hidden_layers);
    let (decoded, stats) = decode(model, &mut cache, &rows, adapter, &rule, rng)?;
    let out = decoded
        .into_iter()
        .enumerate()
        .map(|(r, d)| Completion {
            prompt: r / group,
            tokens: d.tokens,
            stopped: d.stopped,
        })
        .collect();
    Ok((out, stats))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn token(logits: &[f32], s: Sampling, rng: &mut ChaCha8Rng) -> u32 {
        pick(logits, s, &[], rng).unwrap().token
    }

    #[test]
    fn top_p_keeps_the_nucleus() {
        let logits = [0.0f32, 5.0, 4.9, -10.0];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let s = Sampling::Sample {
            temperature: 1.0,
            top_k: None,
            top_p: 0.9,
        };
        let mut counts = [0usize; 4];
        for _ in 0..2000 {
            counts[token(&logits, s, &mut rng) as usize] += 1;
        }
        // Tokens 1 and 2 hold ~99% of the mass; 0 and 3 are cut.
        assert_eq!(counts[0] + counts[3], 0, "{counts:?}");
        assert!(counts[1] > 900 && counts[2] > 800, "{counts:?}");
        // A tiny top_p is greedy.
        let g = Sampling::Sample {
            temperature: 1.0,
            top_k: None,
            top_p: 1e-6,
        };
        assert!((0..50).all(|_| token(&logits, g, &mut rng) == 1));
        assert_eq!(token(&logits, Sampling::Greedy, &mut rng), 1);
    }

    #[test]
    fn top_k_keeps_the_k_most_likely() {
        let logits = [1.0f32, 3.0, 2.0, 2.5];
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let s = Sampling::Sample {
            temperature: 1.0,
            top_k: Some(2),
            top_p: 1.0,
        };
        let mut counts = [0usize; 4];
        for _ in 0..3000 {
            counts[token(&logits, s, &mut rng) as usize] += 1;
        }
        assert_eq!(counts[0] + counts[2], 0, "{counts:?}");
        // Renormalised over tokens 1 and 3: 1 / (1 + e^-0.5) ≈ 0.62.
        let share = counts[1] as f64 / 3000.0;
        assert!((share - 0.622).abs() < 0.03, "{share}");
    }

    #[test]
    fn temperature_sharpens_and_the_pick_carries_its_log_probability() {
        let logits = [1.0f32, 0.0];
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let frac = |t: f32, rng: &mut ChaCha8Rng| {
            (0..4000)
                .filter(|_| token(&logits, Sampling::at(t), rng) == 0)
                .count() as f64
                / 4000.0
        };
        let p1 = 1.0 / (1.0 + (-1.0f64).exp());
        assert!((frac(1.0, &mut rng) - p1).abs() < 0.03);
        assert!(frac(0.25, &mut rng) > 0.95);
        // The log-probability is taken at the sampling temperature.
        let p = pick(&logits, Sampling::at(0.5), &[], &mut rng).unwrap();
        let want = log_probs(&logits, 0.5, &[]).unwrap()[p.token as usize];
        assert_eq!(p.log_prob, want);
        let g = pick(&logits, Sampling::Greedy, &[], &mut rng).unwrap();
        assert!((g.log_prob as f64 - p1.ln()).abs() < 1e-6);
    }

    #[test]
    fn banned_tokens_are_never_picked_and_ties_go_to_the_first() {
        let logits = [2.0f32, 2.0, 5.0];
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let g = pick(&logits, Sampling::Greedy, &[2], &mut rng).unwrap();
        assert_eq!(g.token, 0, "the first of equals, as torch.argmax");
        assert!((g.log_prob - 0.5f32.ln()).abs() < 1e-6);
        assert!((0..500).all(|_| pick(&logits, Sampling::at(1.0), &[2], &mut rng).unwrap().token != 2));
        // Nothing left to pick is a diverged model, not a panic.
        assert!(matches!(
            pick(&[f32::NAN, f32::NEG_INFINITY], Sampling::Greedy, &[], &mut rng),
            Err(LmError::NonFinite { .. })
        ));
        assert!(log_probs(&logits, 1.0, &[0, 1, 2]).is_err());
    }

    #[test]
    fn greedy_draws_nothing_from_the_generator() {
        let mut a = ChaCha8Rng::seed_from_u64(5);
        let b = a.clone();
        pick(&[0.0, 1.0], Sampling::Greedy, &[], &mut a).unwrap();
        pick(&[0.0, 1.0], Sampling::at(0.0), &[], &mut a).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn left_padding_layout() {
        let (ids, real, w) = left_pad(&[&[5, 6, 7], &[8]], 0);
        assert_eq!(w, 3);
        assert_eq!(ids, vec![5, 6, 7, 0, 0, 8]);
        assert_eq!(real, vec![true, true, true, false, false, true]);
    }
}
