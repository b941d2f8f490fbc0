//! Language models in burn, independent of medicine.
//!
//! - [`attention`]: grouped-query attention with a bias: the backend's fused
//!   kernel, and in training one autodiff operation with a blockwise backward.
//! - [`llama`]: the Llama-family decoder (Llama 2/3, SmolLM2, Qwen2), generic
//!   over the backend, configured from a Hugging Face `config.json`
//!   ([`config`]), with a caller-owned [`KvCache`] and a training forward
//!   ([`Llama::token_logprobs`]).
//! - [`weights`]: Hugging Face safetensors checkpoints (single or sharded)
//!   through burn-store, and our own checkpoints in the same layout.
//! - [`tokenizer`]: `tokenizer.json`, chat templates, stop tokens.
//! - [`generate`](mod@generate): one decoding path: the sampler, the step-wise
//!   decoder over a caller-owned cache, and batched sampling of several
//!   completions per prompt.
//! - [`lora`] and [`peft`]: LoRA adapters, named, switchable per call,
//!   mergeable, saved alone in PEFT's format.
//! - [`precision`]: weight matrices kept in f32, bf16 or f16.

pub mod attention;
pub mod config;
pub mod error;
pub mod generate;
pub mod llama;
pub mod lora;
pub mod peft;
pub mod precision;
pub mod tokenizer;
pub mod weights;

pub use config::LlamaConfig;
pub use error::{LmError, Result};
pub use generate::{
    Completion, DecodeRule, Decoded, GenerateConfig, GenerateStats, Pick, Sampling, decode, generate, pick,
};
pub use llama::{CachedRow, KvCache, Llama};
pub use lora::{Adapter, LoraConfig};
pub use precision::Precision;
pub use tokenizer::{ChatTemplate, Message, Tokenizer};
pub use weights::{load_pretrained, load_pretrained_in, save_pretrained};
