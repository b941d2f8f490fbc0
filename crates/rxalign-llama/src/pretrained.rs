//! The `llama` family on a pretrained model: `model: "DIR"`, a Hugging Face
//! folder (`config.json`, `tokenizer.json` with the chat template,
//! `model.safetensors` or the shards of `model.safetensors.index.json`),
//! read relative to the working directory.
//!
//! At `build` (a run's start) the config and the tokenizer are read and
//! every weight file's safetensors header is checked against the file's
//! length, so that a missing or damaged folder is refused, naming the file,
//! before any stage trains. The weights themselves are read when the family
//! builds its model ([`load`], from `PolicyFamily::init`). With `lora`, the
//! base is frozen and the adapter's `A` matrices are drawn from the
//! family's generator (PEFT's bound, `U(±1/sqrt(d_in))`; `B` is zero), so
//! a seeded run starts from the same adapters; checkpoints then keep the
//! adapters only ([`rxalign_policy::checkpoint::Keep::Trainable`]): the frozen base
//! is the folder's.

use std::path::Path;

use burn::prelude::*;
use rxalign_core::Cohort;
use rxalign_lm::weights::{load_pretrained_in, weight_files};
use rxalign_lm::{Llama, LlamaConfig, Precision, Tokenizer};

use super::{DrugNames, LlamaPolicy, LlamaPolicyConfig};
use rxalign_policy::PolicyError;

/// The error of the `model` field, naming what failed.
fn bad(message: impl std::fmt::Display) -> PolicyError {
    PolicyError::Config {
        field: "model",
        message: message.to_string(),
    }
}

/// The family on the pretrained model of `dir`: its config and tokenizer,
/// the chat template's end of turn as the end of an answer.
pub(super) fn build(
    config: &LlamaPolicyConfig,
    dir: &Path,
    cohort: &Cohort,
) -> Result<LlamaPolicy, PolicyError> {
    if !dir.is_dir() {
        return Err(bad(format!(
            "{}: no such folder (a Hugging Face model folder: config.json, tokenizer.json, model.safetensors; relative paths are read from the working directory)",
            dir.display()
        )));
    }
    let llama = LlamaConfig::from_file(&dir.join("config.json")).map_err(bad)?;
    let tokenizer = Tokenizer::from_dir(dir, &llama).map_err(bad)?;
    if tokenizer.chat.is_none() {
        return Err(bad(format!(
            "{}: the tokenizer has no chat template (neither ChatML nor Llama-3 headers)",
            dir.join("tokenizer.json").display()
        )));
    }
    for file in weight_files(dir).map_err(bad)? {
        check_header(&file)?;
    }
    let templates = config.templates.load()?;
    let names = DrugNames::new(&cohort.drugs).map_err(|e| PolicyError::Invalid(e.to_string()))?;
    let family = LlamaPolicy::new(config.clone(), llama, tokenizer, templates, names)?;
    if family.eos as usize >= family.llama.vocab_size {
        return Err(bad(format!(
            "{}: the end-of-turn token {} is outside the model's vocabulary ({} tokens)",
            dir.join("tokenizer.json").display(),
            family.eos,
            family.llama.vocab_size
        )));
    }
    Ok(family)
}

/// Checks that `file` is a safetensors file whose header parses and whose
/// tensors end where the file ends (a partial download is refused).
fn check_header(file: &Path) -> Result<(), PolicyError> {
    use std::io::Read as _;
    let fail = |m: &dyn std::fmt::Display| {
        bad(format!(
            "{}: not a readable safetensors file ({m})",
            file.display()
        ))
    };
    let mut f = std::fs::File::open(file).map_err(|e| fail(&e))?;
    let len = f.metadata().map_err(|e| fail(&e))?.len();
    let mut n = [0u8; 8];
    f.read_exact(&mut n).map_err(|e| fail(&e))?;
    let header_len = u64::from_le_bytes(n);
    if header_len > len.saturating_sub(8) || header_len > 100 << 20 {
        return Err(fail(&format!(
            "a header of {header_len} bytes in a file of {len}"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    f.read_exact(&mut header).map_err(|e| fail(&e))?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| fail(&e))?;
    let end = header
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .filter_map(|(_, v)| v.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    if 8 + header_len + end != len {
        return Err(fail(&format!(
            "its tensors end at byte {} but the file has {len} bytes",
            8 + header_len + end
        )));
    }
    Ok(())
}

/// The pretrained model of `dir`, its weight matrices in `precision` (the
/// family adds its adapter, if any).
pub(super) fn load<B: Backend>(
    dir: &Path,
    device: &B::Device,
    precision: Precision,
) -> Result<Llama<B>, PolicyError> {
    load_pretrained_in::<B>(dir, device, precision).map_err(bad)
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::backend::flex::FlexDevice;
    use burn::module::{Module, ModuleVisitor, Param};
    use rand::SeedableRng as _;
    use rxalign_core::Rng;
    use rxalign_lm::{LoraConfig, load_pretrained};

    use super::*;
    use rxalign_policy::CpuTrainBackend;
    use rxalign_policy::test_support::tiny;

    /// A model folder with a tiny random model: its weights written by
    /// rxalign-lm's own writer, SmolLM2's layout of special tokens in a
    /// word-level tokenizer built here.
    fn folder(dir: &Path) {
        let mut config = LlamaConfig::tiny(64, 1, 2, 1, 8);
        config.eos_token_id = Some(rxalign_lm::config::TokenIds::One(1));
        let model = config.init::<Flex>(&FlexDevice);
        rxalign_lm::save_pretrained(&model, dir).unwrap();
        let mut vocab = serde_json::Map::new();
        for (i, t) in ["<unk>", "<|im_end|>", "<|im_start|>", "\n"].iter().enumerate() {
            vocab.insert((*t).to_string(), i.into());
        }
        for i in 4..64 {
            vocab.insert(format!("w{i}"), i.into());
        }
        let added: Vec<serde_json::Value> = ["<|im_start|>", "<|im_end|>"]
            .iter()
            .map(|t| {
                serde_json::json!({"id": vocab[*t], "content": t, "single_word": false,
                    "lstrip": false, "rstrip": false, "normalized": false, "special": true})
            })
            .collect();
        let tokenizer = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null,
            "added_tokens": added, "normalizer": null,
            "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
        });
        std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    }

    fn config(dir: &Path) -> LlamaPolicyConfig {
        LlamaPolicyConfig {
            model: Some(dir.to_path_buf()),
            lora: Some(LoraConfig {
                rank: 2,
                alpha: 4.0,
                dropout: 0.0,
                targets: vec!["q_proj".into(), "v_proj".into()],
            }),
            ..LlamaPolicyConfig::default()
        }
    }

    #[derive(Default)]
    struct Values(Vec<(bool, Vec<f32>)>);

    impl<B: Backend> ModuleVisitor<B> for Values {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let t = param.val();
            self.0
                .push((t.is_require_grad(), t.into_data().to_vec().unwrap()));
        }
    }

    #[test]
    fn a_pretrained_folder_loads_with_seeded_adapters_on_a_frozen_base() {
        let tmp = tempfile::tempdir().unwrap();
        folder(tmp.path());
        let family = config(tmp.path()).build(&tiny()).unwrap();
        assert_eq!(family.eos(), 1, "the chat template's end of turn");
        let init = |seed| {
            let m: Llama<CpuTrainBackend> = rxalign_policy::family::PolicyFamily::init(
                &family,
                &mut Rng::seed_from_u64(seed),
                &FlexDevice,
            )
            .unwrap();
            let mut v = Values::default();
            m.visit(&mut v);
            v.0
        };
        let (a, b, c) = (init(1), init(1), init(2));
        assert_eq!(a, b, "the same generator, the same model");
        let base = load_pretrained::<Flex>(tmp.path(), &FlexDevice).unwrap();
        let mut plain = Values::default();
        base.visit(&mut plain);
        // The base's parameters come first in every projection; the model
        // has them plus two adapter matrices per targeted projection.
        let frozen: Vec<_> = a.iter().filter(|(g, _)| !g).map(|(_, v)| v.clone()).collect();
        let trained: Vec<_> = a.iter().filter(|(g, _)| *g).collect();
        assert_eq!(frozen.len(), plain.0.len());
        assert_eq!(frozen, plain.0.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>());
        assert_eq!(trained.len(), 4, "A and B on q_proj and v_proj of one layer");
        assert_ne!(a, c, "another generator, other adapters");
    }

    #[test]
    fn a_missing_or_broken_folder_is_refused_at_build_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("nowhere");
        let e = config(&missing).build(&tiny()).unwrap_err().to_string();
        assert!(e.contains("`model`") && e.contains("nowhere"), "{e}");
        folder(tmp.path());
        let weights = tmp.path().join("model.safetensors");
        let bytes = std::fs::read(&weights).unwrap();
        std::fs::write(&weights, &bytes[..bytes.len() - 3]).unwrap();
        let e = config(tmp.path()).build(&tiny()).unwrap_err().to_string();
        assert!(e.contains("model.safetensors") && e.contains("file has"), "{e}");
        std::fs::remove_file(&weights).unwrap();
        let e = config(tmp.path()).build(&tiny()).unwrap_err().to_string();
        assert!(e.contains("model.safetensors"), "{e}");
        std::fs::write(&weights, &bytes).unwrap();
        std::fs::write(tmp.path().join("config.json"), "{\"hidden_size\": }").unwrap();
        let e = config(tmp.path()).build(&tiny()).unwrap_err().to_string();
        assert!(e.contains("`model`") && e.contains("config.json"), "{e}");
        folder(tmp.path());
        std::fs::write(tmp.path().join("tokenizer.json"), "{}").unwrap();
        let e = config(tmp.path()).build(&tiny()).unwrap_err().to_string();
        assert!(e.contains("tokenizer.json"), "{e}");
    }

    #[test]
    fn model_and_scratch_are_exclusive() {
        let text = "(model: \"m\", scratch: (layers: 1))";
        let c: LlamaPolicyConfig = ron::from_str(text).unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("`model`") && e.contains("scratch"), "{e}");
        let c: LlamaPolicyConfig = ron::from_str("(model: \"m\")").unwrap();
        assert!(c.validate().is_ok());
        assert_eq!(c.model.as_deref(), Some(Path::new("m")));
        let c: LlamaPolicyConfig = ron::from_str("()").unwrap();
        assert!(c.model.is_none() && c.validate().is_ok(), "scratch by default");
    }
}
