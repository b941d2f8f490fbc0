use burn::backend::Flex;
use burn::backend::flex::FlexDevice;
use burn::tensor::{Int, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::generate::{DecodeRule, GenerateConfig, Sampling, decode, generate};

type B = Flex;

/// Two layers, four query heads sharing two key/value heads.
fn tiny() -> Llama<B> {
    let mut c = LlamaConfig::tiny(61, 2, 4, 2, 8);
    c.rope_theta = Some(500.0);
    c.init::<B>(&FlexDevice)
}

fn ids(rows: &[&[i64]]) -> Tensor<B, 2, Int> {
    let w = rows[0].len();
    let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), w]), &FlexDevice)
}

fn host<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

const SEQ: [i64; 7] = [3, 17, 42, 5, 9, 33, 60];

#[test]
fn prefill_equals_step_by_step_decoding() {
    let m = tiny();
    let full = host(m.forward(ids(&[&SEQ]), None, None, Adapter::Off));
    let mut cache = KvCache::new(2);
    // A prefill of three tokens, then one token at a time.
    let mut steps = host(m.forward(ids(&[&SEQ[..3]]), None, Some(&mut cache), Adapter::Off));
    for &t in &SEQ[3..] {
        steps.extend(host(m.forward(
            ids(&[&[t]]),
            None,
            Some(&mut cache),
            Adapter::Off,
        )));
    }
    assert_eq!(cache.len(), SEQ.len());
    let d = max_diff(&full, &steps);
    assert!(d < 1e-4, "cached decoding differs by {d}");
    // The logits are not trivially equal everywhere (the test can fail).
    assert!(max_diff(&full[..61], &full[61..122]) > 1e-3);
}

#[test]
fn causal_future_tokens_change_nothing_before_them() {
    let m = tiny();
    let mut other = SEQ;
    other[4] = 11;
    let a = host(m.forward(ids(&[&SEQ]), None, None, Adapter::Off));
    let b = host(m.forward(ids(&[&other]), None, None, Adapter::Off));
    let v = 61;
    assert!(max_diff(&a[..4 * v], &b[..4 * v]) < 1e-6);
    assert!(max_diff(&a[4 * v..5 * v], &b[4 * v..5 * v]) > 1e-3);
}

#[test]
fn left_padding_leaves_real_tokens_unchanged() {
    let m = tiny();
    let short = &SEQ[..4];
    let alone = host(m.forward(ids(&[short]), None, None, Adapter::Off));
    let padded = [0, 0, 0, SEQ[0], SEQ[1], SEQ[2], SEQ[3]];
    let real = [vec![true; 7], vec![false, false, false, true, true, true, true]].concat();
    let both = host(m.forward(ids(&[&SEQ, &padded]), Some(&real), None, Adapter::Off));
    let v = 61;
    let row1 = &both[7 * v..];
    assert!(max_diff(&alone, &row1[3 * v..]) < 1e-4);
    let first = host(m.forward(ids(&[&SEQ]), None, None, Adapter::Off));
    assert!(max_diff(&first, &both[..7 * v]) < 1e-4);
}

#[test]
fn batched_groups_match_single_prompt_generation() {
    let m = tiny();
    let config = GenerateConfig {
        max_new_tokens: 6,
        sampling: Sampling::Greedy,
        stop_tokens: vec![],
        pad_token: 0,
    };
    let prompts = vec![vec![3u32, 17, 42, 5, 9], vec![33, 60]];
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (batch, stats) = generate(&m, &prompts, 3, &config, Adapter::Off, &mut rng).unwrap();
    assert_eq!(batch.len(), 6);
    assert_eq!(stats.prefill_tokens, 21);
    for (i, p) in prompts.iter().enumerate() {
        let (one, _) = generate(&m, std::slice::from_ref(p), 1, &config, Adapter::Off, &mut rng).unwrap();
        assert_eq!(one[0].tokens.len(), 6);
        for c in &batch[3 * i..3 * i + 3] {
            assert_eq!(c.prompt, i);
            assert_eq!(c.tokens, one[0].tokens, "prompt {i}");
        }
    }
    // Sampling: seeded, so reproducible; the group's members differ.
    let sampled = GenerateConfig {
        sampling: Sampling::at(1.5),
        max_new_tokens: 8,
        ..config.clone()
    };
    let run = |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        generate(&m, &prompts, 4, &sampled, Adapter::Off, &mut rng)
            .unwrap()
            .0
    };
    let (a, b) = (run(7), run(7));
    assert_eq!(a, b);
    assert!(a[..4].iter().any(|c| c.tokens != a[0].tokens));
    assert_ne!(a, run(8));
}

#[test]
fn decoding_a_continued_cache_equals_decoding_the_whole_prompt() {
    let m = tiny();
    let prompt: Vec<u32> = SEQ.iter().map(|&t| t as u32).collect();
    let never = |_: u32| false;
    let rule = DecodeRule {
        max_new_tokens: 5,
        sampling: Sampling::Greedy,
        stop: &never,
        banned_after_first: &[],
        pad: 0,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut whole = KvCache::new(2);
    let (want, stats) = decode(&m, &mut whole, &[&prompt], Adapter::Off, &rule, &mut rng).unwrap();
    assert_eq!(stats.prefill_tokens, 7);
    assert_eq!(want[0].tokens.len(), 5);
    // The first four tokens read into a cache, taken out as a row and
    // continued with the last three: the same tokens and log-probabilities.
    let mut head = KvCache::new(2);
    let _ = decode(&m, &mut head, &[&prompt[..4]], Adapter::Off, &rule, &mut rng).unwrap();
    let row = head.row(0).unwrap();
    let mut cache = KvCache::from_rows(2, &[Some((&row, 4))]);
    let (got, stats) = decode(&m, &mut cache, &[&prompt[4..]], Adapter::Off, &rule, &mut rng).unwrap();
    assert_eq!(stats.prefill_tokens, 3);
    assert_eq!(got[0].tokens, want[0].tokens);
    assert!(max_diff(&got[0].log_probs, &want[0].log_probs) < 1e-4);
    // A token banned after the first never follows it.
    let banned = [want[0].tokens[1]];
    let rule = DecodeRule {
        banned_after_first: &banned,
        ..rule
    };
    let mut fresh = KvCache::new(2);
    let (other, _) = decode(&m, &mut fresh, &[&prompt], Adapter::Off, &rule, &mut rng).unwrap();
    assert_eq!(other[0].tokens[0], want[0].tokens[0]);
    assert!(
        !other[0].tokens[1..].contains(&banned[0]),
        "{:?}",
        other[0].tokens
    );
}

#[test]
fn stop_tokens_end_rows_independently() {
    let m = tiny();
    let greedy = GenerateConfig {
        max_new_tokens: 5,
        sampling: Sampling::Greedy,
        stop_tokens: vec![],
        pad_token: 0,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let prompts = vec![vec![3u32, 17], vec![42u32, 5, 9]];
    let (free, _) = generate(&m, &prompts, 1, &greedy, Adapter::Off, &mut rng).unwrap();
    // Stop the first row at its second token: the other row goes on unchanged
    // unless it produces that token too.
    let stop = free[0].tokens[1];
    let config = GenerateConfig {
        stop_tokens: vec![stop],
        ..greedy
    };
    let (stopped, _) = generate(&m, &prompts, 1, &config, Adapter::Off, &mut rng).unwrap();
    let cut = free[0].tokens.iter().position(|&t| t == stop).unwrap();
    assert_eq!(stopped[0].tokens, free[0].tokens[..=cut]);
    assert!(stopped[0].stopped);
    let cut1 = free[1]
        .tokens
        .iter()
        .position(|&t| t == stop)
        .map_or(free[1].tokens.len(), |c| c + 1);
    assert_eq!(stopped[1].tokens, free[1].tokens[..cut1]);
}

#[test]
fn token_logprobs_score_only_the_completion() {
    let m = tiny();
    let score: Vec<bool> = (0..7).map(|j| j >= 4).collect();
    let lp = host(m.token_logprobs(ids(&[&SEQ]), None, &score, Adapter::Off));
    assert_eq!(lp.len(), 6);
    let logits = host(m.forward(ids(&[&SEQ]), None, None, Adapter::Off));
    let v = 61;
    for j in 0..6 {
        let row = &logits[j * v..(j + 1) * v];
        let max = row.iter().copied().fold(f32::MIN, f32::max);
        let lse = max + row.iter().map(|x| (x - max).exp()).sum::<f32>().ln();
        let want = if j + 1 >= 4 {
            row[SEQ[j + 1] as usize] - lse
        } else {
            0.0
        };
        assert!((lp[j] - want).abs() < 1e-4, "position {j}: {} vs {want}", lp[j]);
    }
}

#[test]
fn tied_head_and_qwen2_biases_run() {
    let mut c = LlamaConfig::tiny(40, 1, 2, 1, 4);
    c.tie_word_embeddings = true;
    c.model_type = "qwen2".into();
    let m = c.init::<B>(&FlexDevice);
    assert!(m.lm_head.is_none());
    assert!(m.model.layers[0].self_attn.q_proj.base.bias.is_some());
    assert!(m.model.layers[0].self_attn.o_proj.base.bias.is_none());
    let out = m.forward(ids(&[&[1, 2, 3]]), None, None, Adapter::Off);
    assert_eq!(out.dims(), [1, 3, 40]);
}

#[test]
fn head_of_some_tokens_equals_those_columns_of_the_full_head() {
    for tied in [false, true] {
        let mut c = LlamaConfig::tiny(61, 2, 4, 2, 8);
        c.tie_word_embeddings = tied;
        let m = c.init::<B>(&FlexDevice);
        let h = m.hidden(ids(&[&SEQ]), None, None, Adapter::Off); // [1, 7, 32]
        let full = host(m.head(h.clone()));
        let picked = [42u32, 3, 60];
        let some = host(m.head_of(h.reshape([7, 32]), &picked));
        for row in 0..7 {
            for (j, &t) in picked.iter().enumerate() {
                let (a, b) = (some[row * 3 + j], full[row * 61 + t as usize]);
                assert!(
                    (a - b).abs() < 1e-5,
                    "tied {tied}, row {row}, token {t}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn rows_taken_out_of_a_batch_continue_in_another_batch() {
    let m = tiny();
    let full = host(m.forward(ids(&[&SEQ]), None, None, Adapter::Off)); // [1, 7, 61]
    let vocab = 61;
    // Batch 1: SEQ[..4] left-padded beside a longer unrelated row.
    let mut cache = KvCache::new(2);
    let real = [
        false, false, true, true, true, true, true, true, true, true, true, true,
    ];
    let first = [0, 0, SEQ[0], SEQ[1], SEQ[2], SEQ[3]];
    let _ = m.hidden(
        ids(&[&first, &[7, 8, 9, 10, 11, 12]]),
        Some(&real),
        Some(&mut cache),
        Adapter::Off,
    );
    let row = cache.row(0).unwrap();
    assert_eq!(row.len(), 4, "padding left out");
    // Batch 2: continue SEQ from its first 3 cached positions (one cached
    // position is dropped and read again), beside a row with nothing cached.
    let mut cache = KvCache::from_rows(2, &[Some((&row, 3)), None]);
    assert_eq!(cache.len(), 3);
    let next = [SEQ[3], SEQ[4], SEQ[5], SEQ[6]];
    let other = [0, 0, 3, 17];
    let real = [true, true, true, true, false, false, true, true];
    let out = host(m.forward(ids(&[&next, &other]), Some(&real), Some(&mut cache), Adapter::Off)); // [2, 4, 61]
    assert!(max_diff(&out[..4 * vocab], &full[3 * vocab..]) < 1e-4);
    // The row with nothing cached starts at position 0.
    assert!(max_diff(&out[6 * vocab..8 * vocab], &full[..2 * vocab]) < 1e-4);
}
