//! LoRA on a tiny random model: training moves only the adapters, the
//! reference is the same model with adapters off, merging and the PEFT
//! format round-trip keep the logits, and our checkpoints read back exactly.

use burn::backend::flex::FlexDevice;
use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use burn_store::ModuleSnapshot;
use rxalign_lm::peft::{load_adapter, save_adapter};
use rxalign_lm::{Adapter, Llama, LlamaConfig, LmError, LoraConfig, load_pretrained, save_pretrained};

type A = Autodiff<Flex>;

fn config() -> LlamaConfig {
    LlamaConfig::tiny(53, 2, 4, 2, 8)
}

fn lora(rank: usize, targets: &[&str]) -> LoraConfig {
    LoraConfig {
        rank,
        alpha: 2.0 * rank as f64,
        dropout: 0.0,
        targets: targets.iter().map(|t| t.to_string()).collect(),
    }
}

const TEXT: [i64; 9] = [4, 8, 15, 16, 23, 42, 7, 9, 11];

fn ids<B: Backend>() -> Tensor<B, 2, Int> {
    Tensor::from_data(
        TensorData::new(TEXT.to_vec(), [1, TEXT.len()]),
        &Default::default(),
    )
}

fn logits<B: Backend>(m: &Llama<B>, adapter: Adapter) -> Vec<f32> {
    m.forward(ids::<B>(), None, None, adapter)
        .into_data()
        .convert::<f32>()
        .into_vec()
        .unwrap()
}

/// Every base (non-adapter) parameter, by path, as raw values.
fn base_params<B: Backend>(m: &Llama<B>) -> Vec<(String, Vec<f32>)> {
    m.collect(None, None, false)
        .into_iter()
        .filter(|s| !s.full_path().contains(".adapters."))
        .map(|s| {
            (
                s.full_path(),
                s.to_data().unwrap().convert::<f32>().into_vec().unwrap(),
            )
        })
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Trains adapter `name` for a few Adam steps to raise the text's likelihood.
fn train(mut m: Llama<A>, name: &str, steps: usize) -> (Llama<A>, Vec<f32>) {
    let adapter = m.adapter(name).unwrap();
    let mut optim = AdamConfig::new().init();
    let score: Vec<bool> = (0..TEXT.len()).map(|j| j > 0).collect();
    let mut losses = Vec::new();
    for _ in 0..steps {
        let loss = m.token_logprobs(ids::<A>(), None, &score, adapter).sum().neg();
        losses.push(loss.clone().into_scalar());
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        m = optim.step(1e-2, m, grads);
    }
    (m, losses)
}

#[test]
fn training_moves_only_adapters_and_off_is_the_reference() {
    let base = config().init::<A>(&FlexDevice).freeze();
    let before = base_params(&base);
    let reference = logits(&base, Adapter::Off);
    let m = base
        .add_adapter(
            "all",
            lora(4, &["q_proj", "v_proj", "o_proj", "gate_proj", "down_proj"]),
        )
        .unwrap();
    // A fresh adapter (B = 0) changes nothing.
    let on = m.adapter("all").unwrap();
    assert!(max_diff(&logits(&m, on), &reference) < 1e-6);

    let (m, losses) = train(m, "all", 8);
    assert!(
        losses.last().unwrap() < &(losses[0] - 0.5),
        "the adapter did not learn: {losses:?}"
    );
    // The base is bit-identical; only the adapters moved.
    let after = base_params(&m);
    assert_eq!(before.len(), after.len());
    for ((p, a), (_, b)) in before.iter().zip(&after) {
        assert!(a == b, "base parameter {p} changed");
    }
    assert_eq!(logits(&m, Adapter::Off), reference, "the reference moved");
    assert!(max_diff(&logits(&m, on), &reference) > 1e-2);
}

#[test]
fn merge_peft_round_trip_and_named_adapters() {
    let dir = tempfile::tempdir().unwrap();
    let base = config().init::<A>(&FlexDevice).freeze();
    let m = base
        .add_adapter("a", lora(4, &["q_proj", "k_proj", "up_proj"]))
        .unwrap()
        .add_adapter("b", lora(2, &["v_proj", "down_proj"]))
        .unwrap();
    let (m, _) = train(m, "a", 4);
    let (m, _) = train(m, "b", 4);
    let m = m.valid();
    let (a, b) = (m.adapter("a").unwrap(), m.adapter("b").unwrap());
    let (la, lb, off) = (logits(&m, a), logits(&m, b), logits(&m, Adapter::Off));
    assert!(max_diff(&la, &lb) > 1e-2 && max_diff(&la, &off) > 1e-2);

    // Errors name what is wrong.
    assert!(matches!(m.adapter("c"), Err(LmError::UnknownAdapter { .. })));
    let dup = m.clone().add_adapter("a", lora(2, &["q_proj"]));
    assert!(matches!(dup, Err(LmError::DuplicateAdapter(_))));
    let bad = m.clone().add_adapter("x", lora(2, &["qkv"]));
    assert!(matches!(bad, Err(LmError::UnknownTarget { .. })));

    // The base alone, as a Hugging Face folder, reads back exactly.
    save_pretrained(&m, dir.path()).unwrap();
    let reread = load_pretrained::<Flex>(dir.path(), &FlexDevice).unwrap();
    assert_eq!(logits(&reread, Adapter::Off), off);

    // Each adapter alone, in PEFT's format, onto the reread base.
    save_adapter(&m, "a", &dir.path().join("adapter-a"), None).unwrap();
    save_adapter(&m, "b", &dir.path().join("adapter-b"), None).unwrap();
    let reread = load_adapter(reread, "b", &dir.path().join("adapter-b")).unwrap();
    let reread = load_adapter(reread, "a", &dir.path().join("adapter-a")).unwrap();
    assert_eq!(reread.adapter_names(), vec!["b", "a"]);
    assert!(max_diff(&logits(&reread, reread.adapter("a").unwrap()), &la) < 1e-5);
    assert!(max_diff(&logits(&reread, reread.adapter("b").unwrap()), &lb) < 1e-5);
    let keys = std::fs::read(dir.path().join("adapter-a/adapter_model.safetensors")).unwrap();
    let header = String::from_utf8_lossy(&keys[..keys.len().min(4000)]).to_string();
    assert!(header.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));

    // Merged into the base: the adapter's logits without the adapter.
    let merged = m.clone().merge("a").unwrap();
    assert!(merged.adapter_names().is_empty());
    let d = max_diff(&logits(&merged, Adapter::Off), &la);
    assert!(d < 1e-4, "merged differs by {d}");
}
