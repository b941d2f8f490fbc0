//! Parity with transformers on a real checkpoint (SmolLM2-135M-Instruct,
//! converted by scripts/convert_smollm2.py; expected values written by
//! scripts/lm_reference.py). `.ci/run` prepares both and sets
//! RXALIGN_LM_DIR; without it the test says why it is skipped.
//!
//! Checked: our tokenizer's ids and chat template against transformers';
//! next-token logits of three prompts (every position on a fixed set of
//! probe ids, the whole vocabulary at the last position, the argmax
//! everywhere); 32 greedy tokens, plain and chat, token for token; the mean
//! NLL of a paragraph within 1%; left-padded batching against single rows.

use std::path::PathBuf;

use burn::backend::Flex;
use burn::backend::flex::FlexDevice;
use burn::tensor::{Int, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rxalign_lm::generate::{GenerateConfig, Sampling, generate, left_pad};
use rxalign_lm::{Adapter, Message, Tokenizer, load_pretrained};
use serde::Deserialize;

type B = Flex;

/// Largest allowed |ours - transformers'| of a logit (fp32, CPU).
const LOGIT_TOL: f32 = 5e-4;

#[derive(Deserialize)]
struct Expected {
    probes: Vec<usize>,
    logits: Vec<PromptLogits>,
    greedy: Vec<Greedy>,
    nll: Nll,
}
#[derive(Deserialize)]
struct PromptLogits {
    prompt: String,
    ids: Vec<u32>,
    last: Vec<f32>,
    probe_logits: Vec<Vec<f32>>,
    argmax: Vec<usize>,
}
#[derive(Deserialize)]
struct Greedy {
    kind: String,
    prompt: String,
    prompt_ids: Vec<u32>,
    new_ids: Vec<u32>,
    text: String,
}
#[derive(Deserialize)]
struct Nll {
    ids: Vec<u32>,
    mean_nll: f64,
}

fn model_dir() -> Option<PathBuf> {
    match std::env::var_os("RXALIGN_LM_DIR") {
        None => {
            eprintln!("skipped: RXALIGN_LM_DIR is not set (.ci/run converts SmolLM2-135M and sets it)");
            None
        }
        Some(d) => {
            let d = PathBuf::from(d);
            if d.join("expected.json").is_file() {
                Some(d)
            } else {
                eprintln!(
                    "skipped: {} has no expected.json (run scripts/lm_reference.py)",
                    d.display()
                );
                None
            }
        }
    }
}

fn tensor(ids: &[u32]) -> Tensor<B, 2, Int> {
    let v: Vec<i64> = ids.iter().map(|&t| t as i64).collect();
    Tensor::from_data(TensorData::new(v, [1, ids.len()]), &FlexDevice)
}

fn host(t: Tensor<B, 3>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec().unwrap()
}

fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best
}

#[test]
fn smollm2_matches_transformers() {
    let Some(dir) = model_dir() else { return };
    let text = std::fs::read_to_string(dir.join("expected.json")).unwrap();
    let expected: Expected = serde_json::from_str(&text).unwrap();
    let model = load_pretrained::<B>(&dir, &FlexDevice).unwrap();
    let tok = Tokenizer::from_dir(&dir, &model.config).unwrap();
    let v = model.vocab_size();

    // Logits.
    let mut worst = 0.0f32;
    for p in &expected.logits {
        assert_eq!(tok.encode(&p.prompt, true).unwrap(), p.ids, "{:?}", p.prompt);
        let logits = host(model.forward(tensor(&p.ids), None, None, Adapter::Off));
        let n = p.ids.len();
        for (j, probes) in p.probe_logits.iter().enumerate() {
            let row = &logits[j * v..(j + 1) * v];
            for (&id, &want) in expected.probes.iter().zip(probes) {
                worst = worst.max((row[id] - want).abs());
            }
            assert_eq!(argmax(row), p.argmax[j], "{:?} position {j}", p.prompt);
        }
        let last = &logits[(n - 1) * v..];
        for (a, b) in last.iter().zip(&p.last) {
            worst = worst.max((a - b).abs());
        }
    }
    eprintln!("logits: largest |ours - transformers| = {worst:.2e} (tolerance {LOGIT_TOL:.0e})");
    assert!(worst < LOGIT_TOL, "logits differ by {worst}");

    // Left-padded batch of the three prompts: each row's last logits as alone.
    let rows: Vec<&[u32]> = expected.logits.iter().map(|p| p.ids.as_slice()).collect();
    let (ids, real, width) = left_pad(&rows, 2);
    let batch = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [3, width]), &FlexDevice);
    let logits = host(model.forward(batch, Some(&real), None, Adapter::Off));
    let mut pad_worst = 0.0f32;
    for (r, p) in expected.logits.iter().enumerate() {
        let last = &logits[(r * width + width - 1) * v..(r * width + width) * v];
        for (a, b) in last.iter().zip(&p.last) {
            pad_worst = pad_worst.max((a - b).abs());
        }
    }
    eprintln!("left-padded batch: largest |ours - transformers| at the last position = {pad_worst:.2e}");
    assert!(pad_worst < LOGIT_TOL);

    // Greedy generation, plain and chat.
    for g in &expected.greedy {
        let ids = match g.kind.as_str() {
            "chat" => tok.encode_chat(&[Message::user(&g.prompt)]).unwrap(),
            _ => tok.encode(&g.prompt, true).unwrap(),
        };
        assert_eq!(ids, g.prompt_ids, "{} prompt ids", g.kind);
        let config = GenerateConfig {
            max_new_tokens: 32,
            sampling: Sampling::Greedy,
            stop_tokens: tok.stop_tokens.clone(),
            pad_token: 2,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (out, stats) = generate(&model, &[ids], 1, &config, Adapter::Off, &mut rng).unwrap();
        let text = tok.decode(&out[0].tokens).unwrap();
        eprintln!(
            "greedy {}: {text:?} ({:.1} prefill tok/s, {:.1} decode tok/s)",
            g.kind,
            stats.prefill_tokens_per_s(),
            stats.decode_tokens_per_s()
        );
        assert_eq!(out[0].tokens, g.new_ids, "{} greedy tokens", g.kind);
        assert_eq!(text, g.text);
    }

    // Mean NLL of the paragraph.
    let n = expected.nll.ids.len();
    let score: Vec<bool> = (0..n).map(|j| j > 0).collect();
    let lp = model.token_logprobs(tensor(&expected.nll.ids), None, &score, Adapter::Off);
    let sum: f32 = lp.sum().into_scalar();
    let nll = -(sum as f64) / (n - 1) as f64;
    let rel = (nll - expected.nll.mean_nll).abs() / expected.nll.mean_nll;
    eprintln!(
        "mean NLL: ours {nll:.5}, transformers {:.5} nats/token over {} tokens (relative difference {rel:.2e})",
        expected.nll.mean_nll,
        n - 1
    );
    assert!(rel < 0.01);
}

/// LoRA on the real model: a few training steps raise a sentence's
/// likelihood, the base stays bit-identical, and the adapter is exported in
/// PEFT's format with our logits beside it, for scripts/lm_peft_check.py
/// (into RXALIGN_LM_PEFT_OUT when set, else a temporary folder).
#[test]
fn smollm2_lora_trains_and_exports() {
    use burn::backend::Autodiff;
    use burn::module::AutodiffModule;
    use burn::optim::{AdamConfig, GradientsParams, Optimizer};
    use rxalign_lm::LoraConfig;
    use rxalign_lm::peft::save_adapter;

    type A = Autodiff<Flex>;
    let Some(dir) = model_dir() else { return };
    let base = load_pretrained::<A>(&dir, &FlexDevice).unwrap().freeze();
    let tok = Tokenizer::from_dir(&dir, &base.config).unwrap();
    let text = "Warfarin with aspirin raises the risk of bleeding.";
    let ids = tok.encode(text, true).unwrap();
    let n = ids.len();
    let tokens = || {
        let v: Vec<i64> = ids.iter().map(|&t| t as i64).collect();
        Tensor::<A, 2, Int>::from_data(TensorData::new(v, [1, n]), &FlexDevice)
    };
    let probe = |m: &rxalign_lm::Llama<A>| {
        m.model.layers[3]
            .self_attn
            .q_proj
            .base
            .weight
            .val()
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .unwrap()
    };
    let before = probe(&base);
    let config = LoraConfig {
        rank: 8,
        alpha: 16.0,
        dropout: 0.0,
        targets: vec!["q_proj".into(), "v_proj".into(), "up_proj".into()],
    };
    let mut m = base.add_adapter("check", config).unwrap();
    let adapter = m.adapter("check").unwrap();
    let score: Vec<bool> = (0..n).map(|j| j > 0).collect();
    let mut optim = AdamConfig::new().init();
    let mut nll = Vec::new();
    for _ in 0..3 {
        let loss = m
            .token_logprobs(tokens(), None, &score, adapter)
            .sum()
            .neg()
            .div_scalar((n - 1) as f64);
        nll.push(loss.clone().into_scalar());
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        m = optim.step(1e-3, m, grads);
    }
    eprintln!("LoRA (rank 8 on q, v, up; Adam 1e-3): mean NLL of the sentence by step {nll:?}");
    assert!(nll[2] < nll[0] - 0.05, "{nll:?}");
    assert!(probe(&m) == before, "a frozen base weight moved");

    let m = m.valid();
    let out = match std::env::var_os("RXALIGN_LM_PEFT_OUT") {
        Some(d) => PathBuf::from(d),
        None => std::env::temp_dir().join(format!("rxalign-lm-peft-{}", std::process::id())),
    };
    save_adapter(&m, "check", &out, Some(&dir.display().to_string())).unwrap();
    let v: Vec<i64> = ids.iter().map(|&t| t as i64).collect();
    let t = Tensor::<Flex, 2, Int>::from_data(TensorData::new(v, [1, n]), &FlexDevice);
    let logits = host(m.forward(t, None, None, m.adapter("check").unwrap()));
    let rows: Vec<&[f32]> = logits.chunks(m.vocab_size()).collect();
    let json = serde_json::json!({ "ids": ids, "logits": rows });
    std::fs::write(out.join("rxalign_logits.json"), json.to_string()).unwrap();
    eprintln!("adapter and logits written to {}", out.display());
}
