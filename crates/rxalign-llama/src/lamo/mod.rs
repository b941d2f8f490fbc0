//! LAMO's point-wise classifier as a language-model family: one yes/no
//! question per (visit, drug), answered by a Llama-family model
//! (`rxalign-lm`) with one LoRA adapter per drug group.
//!
//! - [`prompt`]: the question, rendered from a plain-text template (age,
//!   sex, diagnoses and procedures by name, the previous visit's drugs, the
//!   note, the drug).
//! - [`groups`]: drugs grouped by training frequency into `k` groups (LAMO's
//!   development code) or by ATC level 1; one adapter per group.
//! - `train`: the score of a drug is the probability of the answer "Yes"
//!   against "No" at the position after the question,
//!   `p = exp(l_yes) / (exp(l_yes) + exp(l_no))` over the two tokens' logits
//!   (their ids looked up in the model's tokenizer), so PRAUC exists; the
//!   list holds the drugs scoring at least a threshold chosen on validation.
//!   Training is the cross-entropy of the right answer among the two, the
//!   base frozen, each (visit, drug) pair training its group's adapter only.

pub mod groups;
pub mod prompt;
mod train;

pub use groups::{DrugGroups, Grouping};
pub use prompt::{DEFAULT_TEMPLATE, PromptTemplate};
pub use train::{
    Answers, Encoder, GroupBest, LamoEpoch, LamoOptim, LamoTraining, LamoValidation, TrainedLamo,
};

use std::path::PathBuf;

use rxalign_lm::LoraConfig;
use serde::{Deserialize, Serialize};

use rxalign_policy::{PolicyError, Select};

/// `prompt`'s value naming the built-in template.
pub const BUILTIN_PROMPT: &str = "builtin";

/// The language model of the family.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LamoModel {
    /// A Hugging Face folder (`config.json`, `model.safetensors` or shards,
    /// `tokenizer.json`; e.g. SmolLM2-135M-Instruct converted by
    /// `scripts/convert_smollm2.py`), relative to the directory rxalign runs in.
    Pretrained { dir: PathBuf },
    /// A Llama with random weights (frozen, like a pretrained base; only the
    /// adapters learn), with a byte-level BPE tokenizer trained on the
    /// training visits' questions, the drug names and the two answers (added
    /// as whole tokens), for tests and CPU runs.
    Tiny {
        layers: usize,
        heads: usize,
        kv_heads: usize,
        head_dim: usize,
        /// Most tokens of the trained tokenizer.
        vocab_size: usize,
    },
}

/// Settings of the family, as an experiment file gives them
/// (`(kind: "lamo", ...)`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LamoSettings {
    /// The language model: a pretrained folder or a tiny random one.
    pub model: LamoModel,
    /// The question's template (see [`prompt`]): `"builtin"`, the copy of
    /// `experiments/prompts/lamo-yes-no.txt` built into rxalign, or the path
    /// of a template file (relative to the directory rxalign runs in).
    pub prompt: String,
    /// Longest note in a question, in characters (cut at a word).
    pub max_note_chars: usize,
    /// Ask the question as a user message in the model's chat template
    /// (instruction-tuned models); otherwise the rendered text is the prompt.
    pub chat: bool,
    /// The answers compared; each must be one token of the tokenizer.
    pub yes: String,
    /// See `yes`.
    pub no: String,
    /// How the drugs are grouped, one adapter per group.
    pub groups: Grouping,
    /// Every group's adapter (LAMO: rank 8, alpha 16, on q_proj and v_proj).
    pub lora: LoraConfig,
    /// Passes over each group's questions.
    pub epochs: usize,
    /// (visit, drug) questions per training step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Negative questions (a drug the visit was not prescribed) drawn per
    /// positive one in each epoch and group, fresh each epoch; 0 keeps every
    /// negative.
    pub negatives_per_positive: f64,
    /// Thresholds tried on validation: from `step` to `1 - step` by `step`.
    pub threshold_step: f32,
    /// Which epoch's adapter each group keeps: `"last"`, or `"validation"`,
    /// the epoch with the group's lowest validation cross-entropy (earliest
    /// on ties); the threshold is then chosen on the kept adapters' scores.
    pub select: Select,
}

impl Default for LamoSettings {
    fn default() -> Self {
        Self {
            model: LamoModel::Tiny {
                layers: 2,
                heads: 4,
                kv_heads: 2,
                head_dim: 16,
                vocab_size: 1024,
            },
            prompt: BUILTIN_PROMPT.into(),
            max_note_chars: 600,
            chat: false,
            yes: "Yes".into(),
            no: "No".into(),
            groups: Grouping::default(),
            lora: LoraConfig {
                rank: 8,
                alpha: 16.0,
                dropout: 0.0,
                targets: vec!["q_proj".into(), "v_proj".into()],
            },
            epochs: 2,
            batch_size: 16,
            lr: 1e-3,
            negatives_per_positive: 0.0,
            threshold_step: 0.05,
            select: Select::Last,
        }
    }
}

impl LamoSettings {
    /// The question template the settings name, read and checked.
    pub fn template(&self) -> Result<PromptTemplate, PolicyError> {
        if self.prompt == BUILTIN_PROMPT {
            PromptTemplate::new(DEFAULT_TEMPLATE, self.max_note_chars)
        } else {
            PromptTemplate::from_file(std::path::Path::new(&self.prompt), self.max_note_chars)
        }
    }

    pub fn validate(&self) -> Result<(), PolicyError> {
        let bad = |field, message: &str| {
            Err(PolicyError::Config {
                field,
                message: message.to_string(),
            })
        };
        if let LamoModel::Tiny {
            layers,
            heads,
            kv_heads,
            head_dim,
            vocab_size,
        } = &self.model
        {
            if *layers == 0 || *heads == 0 || *kv_heads == 0 || *head_dim == 0 {
                return bad("model", "layers, heads, kv_heads and head_dim must be positive");
            }
            if heads % kv_heads != 0 {
                return bad("model.kv_heads", "must divide heads");
            }
            if head_dim % 2 != 0 {
                return bad("model.head_dim", "must be even (rotary encoding)");
            }
            if *vocab_size < 300 {
                return bad(
                    "model.vocab_size",
                    "must be at least 300 (the 256 bytes, the answers and some merges)",
                );
            }
        }
        if self.max_note_chars == 0 {
            return bad("max_note_chars", "must be positive");
        }
        if self.yes.is_empty() || self.no.is_empty() || self.yes == self.no {
            return bad("yes", "the two answers must be different, non-empty texts");
        }
        if self.lora.rank == 0 || self.lora.targets.is_empty() {
            return bad("lora", "needs a positive rank and at least one target");
        }
        if self.epochs == 0 {
            return bad("epochs", "must be positive");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be positive");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", "must be a positive number");
        }
        if !(self.negatives_per_positive >= 0.0 && self.negatives_per_positive.is_finite()) {
            return bad("negatives_per_positive", "must be a non-negative number");
        }
        if !(self.threshold_step > 0.0 && self.threshold_step < 0.5) {
            return bad("threshold_step", "must lie in (0, 0.5)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
