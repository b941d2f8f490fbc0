//! Checkpoints: a model saved as a Hugging Face folder reads back exactly,
//! also when its tensors are split into shards listed by an index; a
//! checkpoint that lacks tensors is refused with their names.

use std::collections::BTreeMap;
use std::path::Path;

use burn::backend::Flex;
use burn::backend::flex::FlexDevice;
use burn::tensor::{Int, Tensor, TensorData};
use rxalign_lm::{Adapter, Llama, LlamaConfig, load_pretrained, save_pretrained};
use safetensors::SafeTensors;

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
