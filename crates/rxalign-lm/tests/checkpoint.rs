//! Checkpoints: a model saved as a Hugging Face folder reads back exactly,
//! also when its tensors are split into shards listed by an index; a
//! checkpoint that lacks tensors is refused with their names, and one whose
//! weight is an integer tensor or holds NaN or infinite values is refused
//! naming that tensor (issue #22, item 7), for the base model and for a
//! PEFT adapter alike; bf16 and f16 checkpoints load.

use std::collections::BTreeMap;
use std::path::Path;

use burn::backend::Flex;
use burn::backend::flex::FlexDevice;
use burn::tensor::{Int, Tensor, TensorData};
use rxalign_lm::peft::{load_adapter, save_adapter};
use rxalign_lm::{Adapter, Llama, LlamaConfig, LoraConfig, load_pretrained, save_pretrained};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

fn logits(m: &Llama<Flex>) -> Vec<f32> {
    let ids = Tensor::<Flex, 2, Int>::from_data(TensorData::new(vec![3i64, 1, 4, 1, 5], [1, 5]), &FlexDevice);
    m.forward(ids, None, None, Adapter::Off)
        .into_data()
        .convert::<f32>()
        .into_vec()
        .unwrap()
}

/// Splits `full/model.safetensors` into two shards (layer 0, the rest)
/// with an index naming `indexed` of them.
fn shard(full: &Path, out: &Path, indexed: usize) {
    std::fs::create_dir_all(out).unwrap();
    std::fs::copy(full.join("config.json"), out.join("config.json")).unwrap();
    let bytes = std::fs::read(full.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (first, rest): (Vec<_>, Vec<_>) = st
        .tensors()
        .into_iter()
        .partition(|(name, _)| name.contains("layers.0."));
    let mut map = BTreeMap::new();
    for (i, part) in [first, rest].into_iter().enumerate() {
        let file = format!("model-0000{}-of-00002.safetensors", i + 1);
        for (name, _) in &part {
            if i < indexed {
                map.insert(name.clone(), file.clone());
            }
        }
        safetensors::serialize_to_file(part, None, &out.join(&file)).unwrap();
    }
    let index = serde_json::json!({ "metadata": {}, "weight_map": map });
    std::fs::write(out.join("model.safetensors.index.json"), index.to_string()).unwrap();
}

#[test]
fn saved_and_sharded_checkpoints_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LlamaConfig::tiny(37, 2, 4, 2, 4);
    config.model_type = "qwen2".into(); // q/k/v biases too
    let model = config.init::<Flex>(&FlexDevice);
    let full = dir.path().join("full");
    save_pretrained(&model, &full).unwrap();
    let reread = load_pretrained::<Flex>(&full, &FlexDevice).unwrap();
    let want = logits(&model);
    assert_eq!(logits(&reread), want);

    let sharded = dir.path().join("sharded");
    shard(&full, &sharded, 2);
    let reread = load_pretrained::<Flex>(&sharded, &FlexDevice).unwrap();
    assert_eq!(logits(&reread), want);

    // An index that names only the first shard leaves parameters unfound.
    let partial = dir.path().join("partial");
    shard(&full, &partial, 1);
    let err = load_pretrained::<Flex>(&partial, &FlexDevice)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("in none of the files") && err.contains("layers.1"),
        "{err}"
    );
}

/// transformers reads our checkpoint and computes our logits. Runs when
/// RXALIGN_LM_PYTHON names a Python with torch and transformers (`.ci/run`
/// sets it); otherwise says why it is skipped.
#[test]
fn transformers_reads_our_checkpoint() {
    let Some(python) = std::env::var_os("RXALIGN_LM_PYTHON") else {
        eprintln!("skipped: RXALIGN_LM_PYTHON is not set (.ci/run sets it to its venv)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = LlamaConfig::tiny(37, 2, 4, 2, 4);
    config.rope_theta = Some(500.0);
    let model = config.init::<Flex>(&FlexDevice);
    save_pretrained(&model, dir.path()).unwrap();
    let ours = logits(&model);
    let script = r#"
import json, sys, torch
from transformers import AutoModelForCausalLM
m = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32).eval()
with torch.no_grad():
    print(json.dumps(m(torch.tensor([[3, 1, 4, 1, 5]])).logits[0].flatten().tolist()))
"#;
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let theirs: Vec<f32> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(theirs.len(), ours.len());
    let d = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    eprintln!("transformers on our checkpoint: largest logit difference {d:.2e}");
    assert!(d < 1e-4, "{d}");
}

/// Rewrites `file` with the tensor `name` replaced by `dtype` values of the
/// same shape: `bytes_of(count)` gives their bytes (the file is built by
/// the `safetensors` crate, never a header edited by hand).
fn replace_tensor(file: &Path, name: &str, dtype: Dtype, bytes_of: impl Fn(usize) -> Vec<u8>) {
    let bytes = std::fs::read(file).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let shape = st.tensor(name).unwrap().shape().to_vec();
    let data = bytes_of(shape.iter().product());
    let mut tensors: Vec<(String, TensorView<'_>)> =
        st.tensors().into_iter().filter(|(n, _)| n != name).collect();
    tensors.push((name.to_string(), TensorView::new(dtype, shape, &data).unwrap()));
    let out = safetensors::serialize(tensors, None).unwrap();
    std::fs::write(file, out).unwrap();
}

/// Every value `x` as the bytes of `dtype` (f32, f16 or bf16).
fn floats(dtype: Dtype, x: f32, n: usize) -> Vec<u8> {
    let one = match dtype {
        Dtype::F32 => x.to_le_bytes().to_vec(),
        Dtype::F16 => burn::tensor::f16::from_f32(x).to_le_bytes().to_vec(),
        Dtype::BF16 => burn::tensor::bf16::from_f32(x).to_le_bytes().to_vec(),
        _ => unreachable!("a float dtype"),
    };
    one.repeat(n)
}

/// A crafted tensor: its case name, dtype, bytes for a count of values, and
/// the words its error must hold.
type Case = (
    &'static str,
    Dtype,
    Box<dyn Fn(usize) -> Vec<u8>>,
    &'static [&'static str],
);

/// Issue #22 (7): `lm generate` panicked ("Expected float dtype, got I32")
/// and then segfaulted on an integer weight, and took NaN weights silently.
/// Each crafted tensor is refused with its file, its name and what is
/// wrong; the bf16 and f16 variants of finite values load.
#[test]
fn integer_and_non_finite_weights_are_refused_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let config = LlamaConfig::tiny(37, 2, 4, 2, 4);
    let model = config.init::<Flex>(&FlexDevice);
    let good = dir.path().join("good");
    save_pretrained(&model, &good).unwrap();
    let name = "model.layers.1.self_attn.k_proj.weight";
    let cases: [Case; 7] = [
        (
            "i32",
            Dtype::I32,
            Box::new(|n| 7i32.to_le_bytes().repeat(n)),
            &["I32", "float tensor"],
        ),
        (
            "u8",
            Dtype::U8,
            Box::new(|n| vec![1u8; n]),
            &["U8", "float tensor"],
        ),
        (
            "i64",
            Dtype::I64,
            Box::new(|n| 1i64.to_le_bytes().repeat(n)),
            &["I64", "float tensor"],
        ),
        (
            "nan",
            Dtype::F32,
            Box::new(|n| floats(Dtype::F32, f32::NAN, n)),
            &["NaN or infinite"],
        ),
        (
            "inf",
            Dtype::F32,
            Box::new(|n| floats(Dtype::F32, f32::INFINITY, n)),
            &["NaN or infinite"],
        ),
        (
            "bf16-inf",
            Dtype::BF16,
            Box::new(|n| floats(Dtype::BF16, f32::NEG_INFINITY, n)),
            &["NaN or infinite"],
        ),
        (
            "f16-nan",
            Dtype::F16,
            Box::new(|n| floats(Dtype::F16, f32::NAN, n)),
            &["NaN or infinite"],
        ),
    ];
    for (case, dtype, bytes_of, words) in cases {
        let bad = dir.path().join(case);
        std::fs::create_dir_all(&bad).unwrap();
        std::fs::copy(good.join("config.json"), bad.join("config.json")).unwrap();
        std::fs::copy(good.join("model.safetensors"), bad.join("model.safetensors")).unwrap();
        replace_tensor(&bad.join("model.safetensors"), name, dtype, bytes_of);
        let err = match load_pretrained::<Flex>(&bad, &FlexDevice) {
            Ok(_) => panic!("{case}: loaded"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("model.safetensors"), "{case}: {err}");
        // The tensor by its name in the model (the file's, remapped).
        assert!(err.contains("layers.1.self_attn.k_proj"), "{case}: {err}");
        for w in words {
            assert!(err.contains(w), "{case}: no `{w}` in {err}");
        }
    }
    // Finite half-precision weights load (cast to the backend's f32).
    for (case, dtype) in [("bf16", Dtype::BF16), ("f16", Dtype::F16)] {
        let half = dir.path().join(case);
        std::fs::create_dir_all(&half).unwrap();
        std::fs::copy(good.join("config.json"), half.join("config.json")).unwrap();
        std::fs::copy(good.join("model.safetensors"), half.join("model.safetensors")).unwrap();
        replace_tensor(&half.join("model.safetensors"), name, dtype, |n| {
            floats(dtype, 0.25, n)
        });
        let m = load_pretrained::<Flex>(&half, &FlexDevice).unwrap();
        assert!(logits(&m).iter().all(|x| x.is_finite()), "{case}");
    }

    // A PEFT adapter's tensors are checked the same way.
    let lora = LoraConfig {
        rank: 2,
        alpha: 4.0,
        dropout: 0.0,
        targets: vec!["q_proj".into()],
    };
    let adapted = model.clone().add_adapter("a", lora).unwrap();
    let adapter = dir.path().join("adapter");
    save_adapter(&adapted, "a", &adapter, None).unwrap();
    let file = adapter.join("adapter_model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    let lora_name: String = SafeTensors::deserialize(&bytes)
        .unwrap()
        .names()
        .into_iter()
        .find(|n| n.contains("layers.0") && n.contains("lora_A"))
        .unwrap()
        .to_string();
    for (dtype, value, words) in [
        (
            Dtype::F32,
            f32::NAN,
            ["NaN or infinite", "layers.0.self_attn.q_proj"],
        ),
        (Dtype::I32, 0.0, ["I32", "layers.0.self_attn.q_proj"]),
    ] {
        let bytes_of = |n: usize| match dtype {
            Dtype::I32 => 3i32.to_le_bytes().repeat(n),
            _ => floats(dtype, value, n),
        };
        save_adapter(&adapted, "a", &adapter, None).unwrap();
        replace_tensor(&file, &lora_name, dtype, bytes_of);
        let err = match load_adapter(model.clone(), "a", &adapter) {
            Ok(_) => panic!("{dtype:?}: loaded"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("adapter_model.safetensors"), "{err}");
        for w in words {
            assert!(err.contains(w), "no `{w}` in {err}");
        }
    }
}

/// `f32` tensors of `file` rewritten as `dtype` (bf16 or f16), as a half
/// precision checkpoint ships.
fn to_half(file: &Path, dtype: Dtype) {
    let bytes = std::fs::read(file).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let converted: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let data: Vec<u8> = view
                .data()
                .chunks_exact(4)
                .flat_map(|c| {
                    let x = f32::from_le_bytes(c.try_into().unwrap());
                    floats(dtype, x, 1)
                })
                .collect();
            (name, view.shape().to_vec(), data)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = converted
        .iter()
        .map(|(n, shape, data)| (n.clone(), TensorView::new(dtype, shape.clone(), data).unwrap()))
        .collect();
    std::fs::write(file, safetensors::serialize(views, None).unwrap()).unwrap();
}

/// A bf16 (or f16) checkpoint loaded with `precision` of its own dtype keeps
/// its weight matrices 2 bytes a value (norms f32), computes the logits of
/// the same checkpoint widened to f32 (a half value widens exactly, and the
/// forward pass casts each matrix to f32 where it is used), and trains LoRA
/// adapters in f32 with finite gradients; the base keeps its dtype.
#[test]
fn half_precision_weights_stay_two_bytes_and_compute_the_f32_logits() {
    use burn::backend::Autodiff;
    use burn::tensor::DType;
    use rxalign_lm::{Precision, load_pretrained_in};

    let dir = tempfile::tempdir().unwrap();
    let model = LlamaConfig::tiny(37, 2, 4, 2, 4).init::<Flex>(&FlexDevice);
    for (precision, dtype, burn_dtype) in [
        (Precision::Bf16, Dtype::BF16, DType::BF16),
        (Precision::F16, Dtype::F16, DType::F16),
    ] {
        let half = dir.path().join(precision.to_string());
        save_pretrained(&model, &half).unwrap();
        to_half(&half.join("model.safetensors"), dtype);
        let wide = load_pretrained::<Flex>(&half, &FlexDevice).unwrap();
        let kept = load_pretrained_in::<Flex>(&half, &FlexDevice, precision).unwrap();
        let layer = &kept.model.layers[0];
        assert_eq!(layer.self_attn.q_proj.base.weight.val().dtype(), burn_dtype);
        assert_eq!(kept.model.embed_tokens.weight.val().dtype(), burn_dtype);
        assert_eq!(layer.input_layernorm.gamma.val().dtype(), DType::F32);
        assert_eq!(
            wide.model.layers[0].self_attn.q_proj.base.weight.val().dtype(),
            DType::F32
        );
        let (a, b) = (logits(&wide), logits(&kept));
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= 1e-5, "{precision}: logits differ by {worst}");

        // A LoRA step on the half-precision base: adapters and their
        // gradients f32, the base untouched in its dtype.
        type A = Autodiff<Flex>;
        let base = load_pretrained_in::<A>(&half, &FlexDevice, precision)
            .unwrap()
            .freeze();
        let lora = LoraConfig {
            rank: 2,
            alpha: 4.0,
            dropout: 0.0,
            targets: vec!["q_proj".into(), "down_proj".into()],
        };
        let m = base.add_adapter("a", lora).unwrap();
        let tokens =
            Tensor::<A, 2, Int>::from_data(TensorData::new(vec![3i64, 1, 4, 1, 5, 9], [1, 6]), &FlexDevice);
        let score = [false, false, false, true, true, true];
        let lp = m.token_logprobs(tokens, None, &score, Adapter::On(0));
        let grads = lp.sum().neg().backward();
        let pair = m.model.layers[1].self_attn.q_proj.adapters[0].as_ref().unwrap();
        let g = pair.a.val().grad(&grads).unwrap();
        assert_eq!(g.dtype(), DType::F32);
        assert!(g.into_data().iter::<f32>().all(f32::is_finite), "{precision}");
        assert_eq!(
            m.model.layers[1].mlp.down_proj.base.weight.val().dtype(),
            burn_dtype
        );
    }
}
