//! The model's configuration, read from a Hugging Face `config.json`.
//!
//! Field names are Hugging Face's. Unknown fields are accepted (those files
//! carry many that do not concern the architecture); the ones that change
//! the computation are checked in [`LlamaConfig::validate`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{LmError, Result, read_json};

/// One token id or several (`eos_token_id` is either in Hugging Face files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    One(u32),
    Many(Vec<u32>),
}

impl TokenIds {
    pub fn to_vec(&self) -> Vec<u32> {
        match self {
            TokenIds::One(id) => vec![*id],
            TokenIds::Many(ids) => ids.clone(),
        }
    }
}

/// Rotary scaling as Llama 3.1 defines it (`rope_type: "llama3"`), or none
/// (`"default"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RopeParameters {
    /// `default` or `llama3`; older files call it `type`.
    #[serde(default, alias = "type")]
    pub rope_type: Option<String>,
    /// Transformers 5 keeps the base frequency here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f64>,
    #[serde(default)]
    pub factor: Option<f64>,
    #[serde(default)]
    pub low_freq_factor: Option<f64>,
    #[serde(default)]
    pub high_freq_factor: Option<f64>,
    #[serde(default)]
    pub original_max_position_embeddings: Option<usize>,
}

/// A Llama-family decoder's configuration (Llama 2 and 3, SmolLM2, Qwen2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// `llama` or `qwen2` (or `mistral`, which is the same computation).
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Grouped-query attention: fewer key/value heads than query heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_key_value_heads: Option<usize>,
    /// Defaults to `hidden_size / num_attention_heads`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    /// Transformers 4 keeps the base frequency at the top level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<RopeParameters>,
    /// Transformers 5's spelling of `rope_theta` and `rope_scaling` together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_parameters: Option<RopeParameters>,
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Biases on q, k, v and o (Llama's flag); Qwen2 has them on q, k, v only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention_bias: Option<bool>,
    #[serde(default)]
    pub mlp_bias: bool,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bos_token_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos_token_id: Option<TokenIds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_token_id: Option<u32>,
}

fn default_eps() -> f64 {
    1e-6
}
fn default_max_positions() -> usize {
    2048
}
fn default_act() -> String {
    "silu".into()
}

/// The rotary scaling of Llama 3.1, resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Llama3Scaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: usize,
}

impl LlamaConfig {
    /// Reads and validates a `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let config: LlamaConfig = read_json(path)?;
        config.validate(path)?;
        Ok(config)
    }

    fn err(path: &Path, field: &str, message: impl Into<String>) -> LmError {
        LmError::Config {
            path: path.to_path_buf(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// Refuses what this implementation does not compute.
    pub fn validate(&self, path: &Path) -> Result<()> {
        if !matches!(self.model_type.as_str(), "llama" | "qwen2" | "mistral") {
            return Err(Self::err(
                path,
                "model_type",
                format!(
                    "`{}` is not a Llama-family decoder this crate runs (llama, qwen2, mistral)",
                    self.model_type
                ),
            ));
        }
        if self.hidden_act != "silu" {
            return Err(Self::err(
                path,
                "hidden_act",
                format!("`{}`: only `silu` (SwiGLU) is implemented", self.hidden_act),
            ));
        }
        let kv = self.kv_heads();
        if kv == 0 || !self.num_attention_heads.is_multiple_of(kv) {
            return Err(Self::err(
                path,
                "num_key_value_heads",
                format!(
                    "{kv} does not divide num_attention_heads = {}",
                    self.num_attention_heads
                ),
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err(Self::err(
                path,
                "head_dim",
                "rotary encoding needs an even head size",
            ));
        }
        if self.head_dim.is_none() && !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(Self::err(
                path,
                "hidden_size",
                "not a multiple of num_attention_heads and no head_dim given",
            ));
        }
        if let Some(kind) = self.rope().and_then(|r| r.rope_type.clone()) {
            match kind.as_str() {
                "default" => {}
                "llama3" => {
                    self.llama3_scaling()
                        .ok_or_else(|| Self::err(path, "rope_scaling", "llama3 scaling needs factor, low_freq_factor, high_freq_factor and original_max_position_embeddings"))?;
                }
                other => {
                    return Err(Self::err(
                        path,
                        "rope_scaling.rope_type",
                        format!("`{other}` is not implemented (default, llama3)"),
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    fn rope(&self) -> Option<&RopeParameters> {
        self.rope_parameters.as_ref().or(self.rope_scaling.as_ref())
    }

    /// The rotary base frequency (10,000 when the file names none).
    pub fn rope_theta(&self) -> f64 {
        self.rope_theta
            .or_else(|| self.rope_parameters.as_ref().and_then(|r| r.rope_theta))
            .unwrap_or(10_000.0)
    }

    pub fn llama3_scaling(&self) -> Option<Llama3Scaling> {
        let r = self.rope()?;
        if r.rope_type.as_deref() != Some("llama3") {
            return None;
        }
        Some(Llama3Scaling {
            factor: r.factor?,
            low_freq_factor: r.low_freq_factor?,
            high_freq_factor: r.high_freq_factor?,
            original_max_position_embeddings: r.original_max_position_embeddings?,
        })
    }

    /// Whether q, k and v have biases (Qwen2 always; Llama with `attention_bias`).
    pub fn qkv_bias(&self) -> bool {
        self.attention_bias.unwrap_or(self.model_type == "qwen2")
    }

    /// Whether the output projection has a bias (Llama's `attention_bias`; never in Qwen2).
    pub fn o_bias(&self) -> bool {
        self.model_type != "qwen2" && self.attention_bias.unwrap_or(false)
    }

    /// The rotary inverse frequencies, `head_dim / 2` of them, Llama-3
    /// scaling applied when configured.
    pub fn inv_freq(&self) -> Vec<f32> {
        let d = self.head_dim();
        let base = self.rope_theta();
        let scaling = self.llama3_scaling();
        (0..d / 2)
            .map(|i| {
                let f = 1.0 / base.powf((2 * i) as f64 / d as f64);
                match scaling {
                    None => f as f32,
                    Some(s) => llama3_scale(f, s) as f32,
                }
            })
            .collect()
    }

    /// A small random-weights configuration for tests.
    pub fn tiny(vocab: usize, layers: usize, heads: usize, kv_heads: usize, head_dim: usize) -> Self {
        LlamaConfig {
            model_type: "llama".into(),
            vocab_size: vocab,
            hidden_size: heads * head_dim,
            intermediate_size: 2 * heads * head_dim + 8,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            num_key_value_heads: Some(kv_heads),
            head_dim: Some(head_dim),
            rms_norm_eps: 1e-5,
            rope_theta: Some(10_000.0),
            rope_scaling: None,
            rope_parameters: None,
            max_position_embeddings: 256,
            tie_word_embeddings: false,
            attention_bias: None,
            mlp_bias: false,
            hidden_act: "silu".into(),
            bos_token_id: Some(1),
            eos_token_id: Some(TokenIds::One(2)),
            pad_token_id: None,
        }
    }
}

/// Llama 3.1's frequency-dependent scaling of one inverse frequency.
fn llama3_scale(inv_freq: f64, s: Llama3Scaling) -> f64 {
    let old = s.original_max_position_embeddings as f64;
    let low_wavelen = old / s.low_freq_factor;
    let high_wavelen = old / s.high_freq_factor;
    let wavelen = 2.0 * std::f64::consts::PI / inv_freq;
    if wavelen < high_wavelen {
        inv_freq
    } else if wavelen > low_wavelen {
        inv_freq / s.factor
    } else {
        let smooth = (old / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        (1.0 - smooth) * inv_freq / s.factor + smooth * inv_freq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> LlamaConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn smollm2_style_config() {
        let c = parse(
            r#"{"model_type":"llama","vocab_size":49152,"hidden_size":576,"intermediate_size":1536,
            "num_hidden_layers":30,"num_attention_heads":9,"num_key_value_heads":3,"rms_norm_eps":1e-5,
            "rope_theta":100000.0,"tie_word_embeddings":true,"eos_token_id":2,"bos_token_id":1,
            "architectures":["LlamaForCausalLM"]}"#,
        );
        c.validate(Path::new("config.json")).unwrap();
        assert_eq!(c.head_dim(), 64);
        assert_eq!(c.kv_heads(), 3);
        assert!(!c.qkv_bias());
        let f = c.inv_freq();
        assert_eq!(f.len(), 32);
        assert_eq!(f[0], 1.0);
        assert!((f[1] as f64 - 1e5f64.powf(-2.0 / 64.0)).abs() < 1e-7);
    }

    #[test]
    fn transformers5_rope_parameters() {
        let c = parse(
            r#"{"model_type":"llama","vocab_size":10,"hidden_size":8,"intermediate_size":16,
            "num_hidden_layers":1,"num_attention_heads":2,
            "rope_parameters":{"rope_theta":500000.0,"rope_type":"llama3","factor":8.0,
            "low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192},
            "eos_token_id":[128001,128008,128009]}"#,
        );
        c.validate(Path::new("config.json")).unwrap();
        assert_eq!(c.rope_theta(), 500000.0);
        let s = c.llama3_scaling().unwrap();
        assert_eq!(s.factor, 8.0);
        assert_eq!(c.eos_token_id.unwrap().to_vec(), vec![128001, 128008, 128009]);
    }

    #[test]
    fn llama3_scaling_bands() {
        let s = Llama3Scaling {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192,
        };
        // High frequencies (short wavelengths) are kept, low ones divided by the factor.
        assert_eq!(llama3_scale(1.0, s), 1.0);
        let low = 2.0 * std::f64::consts::PI / 20_000.0;
        assert!((llama3_scale(low, s) - low / 8.0).abs() < 1e-15);
        // Between the bands the two are blended.
        let mid = 2.0 * std::f64::consts::PI / 4096.0;
        let m = llama3_scale(mid, s);
        assert!(m < mid && m > mid / 8.0);
    }

    #[test]
    fn qwen2_biases_and_refusals() {
        let mut c = LlamaConfig::tiny(10, 1, 2, 1, 4);
        c.model_type = "qwen2".into();
        assert!(c.qkv_bias() && !c.o_bias());
        c.hidden_act = "gelu".into();
        let e = c.validate(Path::new("x/config.json")).unwrap_err().to_string();
        assert!(e.contains("x/config.json") && e.contains("hidden_act"), "{e}");
        let mut c = LlamaConfig::tiny(10, 1, 3, 2, 4);
        c.num_attention_heads = 3;
        assert!(c.validate(Path::new("c.json")).is_err());
    }
}
