//! What the `llama` editor needs before it runs (`rxalign plan FILE
//! --resources`; the shared terms are `rxalign_policy::resources`).

use rxalign_lm::attention::BACKWARD_BLOCK_SCORES;
pub use rxalign_lm::config::LlamaConfig;
use rxalign_lm::lora::{LoraConfig, TARGETS};
use rxalign_policy::PolicyError;
use rxalign_policy::resources::{FLOAT_BYTES, Footprint, Work};

use crate::LlamaPolicyConfig;

/// The `(inputs, outputs)` of a projection of a Llama layer.
fn projection(llama: &LlamaConfig, name: &str) -> (u128, u128) {
    let h = llama.hidden_size as u128;
    let q = (llama.num_attention_heads * llama.head_dim()) as u128;
    let kv = (llama.kv_heads() * llama.head_dim()) as u128;
    let i = llama.intermediate_size as u128;
    match name {
        "q_proj" => (h, q),
        "k_proj" | "v_proj" => (h, kv),
        "o_proj" => (q, h),
        "gate_proj" | "up_proj" => (h, i),
        "down_proj" => (i, h),
        // Not a projection of the family (`LlamaPolicyConfig::validate`
        // refuses such a LoRA target).
        _ => (0, 0),
    }
}

/// Parameters of a Llama-family decoder: the token embedding, the output
/// head unless tied, the final norm, and per layer the seven projections,
/// their biases where the family has them, and two norms.
pub fn llama_parameters(llama: &LlamaConfig) -> u128 {
    let h = llama.hidden_size as u128;
    let v = llama.vocab_size as u128;
    let mut layer: u128 = TARGETS
        .iter()
        .map(|n| {
            let (i, o) = projection(llama, n);
            i * o
        })
        .sum::<u128>()
        + 2 * h;
    if llama.qkv_bias() {
        layer += ["q_proj", "k_proj", "v_proj"]
            .iter()
            .map(|n| projection(llama, n).1)
            .sum::<u128>();
    }
    if llama.o_bias() {
        layer += h;
    }
    if llama.mlp_bias {
        layer += 2 * llama.intermediate_size as u128 + h;
    }
    let head = if llama.tie_word_embeddings { 0 } else { v * h };
    v * h + head + h + llama.num_hidden_layers as u128 * layer
}

/// The parameters of `llama`'s weight matrices (the projections, the
/// embedding and an untied head): what a half [`rxalign_lm::Precision`]
/// stores in 2 bytes.
pub fn llama_matrices(llama: &LlamaConfig) -> u128 {
    let (h, v) = (llama.hidden_size as u128, llama.vocab_size as u128);
    let layer: u128 = TARGETS
        .iter()
        .map(|n| {
            let (i, o) = projection(llama, n);
            i * o
        })
        .sum();
    let head = if llama.tie_word_embeddings { 0 } else { v * h };
    v * h + head + llama.num_hidden_layers as u128 * layer
}

/// LoRA's parameters on `llama`: `rank × (inputs + outputs)` per target
/// projection and layer.
pub fn lora_parameters(llama: &LlamaConfig, lora: &LoraConfig) -> u128 {
    let per_layer: u128 = lora
        .targets
        .iter()
        .map(|t| {
            let (i, o) = projection(llama, t);
            lora.rank as u128 * (i + o)
        })
        .sum();
    llama.num_hidden_layers as u128 * per_layer
}

impl LlamaPolicyConfig {
    /// The model's shape without its weights or tokenizer: the folder's
    /// `config.json` (checked), or the scratch shape with its vocabulary at
    /// most `scratch.vocab` (the BPE is trained on the run's prompts).
    pub fn shape(&self) -> Result<LlamaConfig, PolicyError> {
        if let Some(dir) = &self.model {
            let path = dir.join("config.json");
            let config = LlamaConfig::from_file(&path).map_err(|e| PolicyError::Invalid(e.to_string()))?;
            config
                .validate(&path)
                .map_err(|e| PolicyError::Invalid(e.to_string()))?;
            return Ok(config);
        }
        let s = self.scratch.clone().unwrap_or_default();
        let mut l = LlamaConfig::tiny(s.vocab, s.layers, s.heads, s.kv_heads, s.head_dim);
        l.intermediate_size = s.intermediate;
        Ok(l)
    }

    /// Tokens of an answer at most: `max_lines` lines of `max_line_tokens`
    /// tokens and the end-of-answer token.
    pub fn answer_tokens(&self) -> usize {
        self.max_lines * self.max_line_tokens + 1
    }

    /// The editor on `llama` (the model folder's `config.json`, or the
    /// scratch shape), with prompts of `prompt_tokens` tokens (system,
    /// patient, start list and question; the data's longest).
    ///
    /// A sequence is one question's prompt and its answer (each question
    /// is a chat of its own): `T = prompt + max_lines × max_line_tokens +
    /// 1`. Rows: an SFT step scores `batch` decisions
    /// in at most `batch` rows (the lines of one answer share a row); a
    /// GRPO update scores every rollout's answers, `visits × group ×
    /// answers` rows, and with groups of two or more reads each visit's
    /// prompts once (all but their last token, `visits × answers` of them),
    /// each row its answer and that last token, its keys and values
    /// holding a copy of the prompt's.
    ///
    /// Activations, f32 floats a token keeps per layer for the backward
    /// pass (burn's autodiff), counted from `rxalign_lm::llama`'s ops:
    /// `4·hidden` (each RMSNorm's input and output), `(5·heads +
    /// 4·kv_heads)·head_dim` (the projections' outputs, their half turns
    /// and rotations, the grouped queries, the attention's output and the
    /// output projection's input), `5·intermediate` (the MLP's gate, its
    /// sigmoid and SiLU, up, and their product), plus `rank` per LoRA
    /// target; nothing per pair of tokens ([`rxalign_lm::attention`]
    /// keeps no scores). The attention backward's recomputed scores are
    /// transient, one layer at a time: two `[kv_heads, query rows, keys]`
    /// blocks per sequence (the probabilities and their gradient, the
    /// other steps in place), at most [`BACKWARD_BLOCK_SCORES`] scores per
    /// key head. The head runs on the decisions' tokens only, three
    /// vocabulary-wide rows each (logits, biased logits, log-softmax).
    ///
    /// KV cache: `2 × layers × kv_heads × head_dim × T` floats per rollout,
    /// `min(act_batch, visits × group)` rollouts decoding at once.
    ///
    /// FLOPs: forward `2 × (layer parameters) × tokens + 2 × vocab × hidden
    /// × head tokens + 4 × layers × heads × head_dim × T` per token
    /// (attention's two products); a training step is `× 3` (`× 2` under
    /// LoRA: the frozen base has no weight gradients); a GRPO iteration
    /// adds the rollouts (decoding with the cache: forward of every prompt
    /// and generated token) and the reference's forward pass.
    pub fn footprint(&self, llama: &LlamaConfig, prompt_tokens: usize, work: Work) -> Footprint {
        let base = llama_parameters(llama);
        let adapters = self.lora.as_ref().map_or(0, |l| lora_parameters(llama, l));
        let parameters = base + adapters;
        let trainable = if self.lora.is_some() { adapters } else { base };
        let answers = self.answers();
        let t = prompt_tokens + self.answer_tokens();
        let (h, i, v) = (
            llama.hidden_size as u128,
            llama.intermediate_size as u128,
            llama.vocab_size as u128,
        );
        let layers = llama.num_hidden_layers as u128;
        let heads = llama.num_attention_heads as u128;
        let head_dim = llama.head_dim() as u128;
        let kv = llama.kv_heads() as u128;
        let t128 = t as u128;
        // `prompts` read once, `shared` tokens each (0: every row reads
        // its whole sequence); each row's keys and values hold a copy.
        let (rows, decisions, updates, rollouts, prompts, shared) = match work {
            Work::Sft { batch } => (batch as u128, batch as u128, 1u128, 0u128, 0u128, 0u128),
            Work::Grpo {
                visits,
                group,
                ppo_epochs,
            } => {
                let rollouts = (visits * group) as u128;
                // A group's rollouts answer each prompt of their visit:
                // it is read once, all but its last token.
                let (prompts, shared) = if group > 1 && prompt_tokens > 1 {
                    ((visits * answers) as u128, (prompt_tokens - 1) as u128)
                } else {
                    (0, 0)
                };
                (
                    rollouts * answers as u128,
                    rollouts * self.budget() as u128,
                    ppo_epochs as u128,
                    rollouts,
                    prompts,
                    shared,
                )
            }
        };
        // The tokens the forward passes read (and keep for the backward).
        let read = prompts * shared + rows * (t128 - shared);
        let lora_floats = self
            .lora
            .as_ref()
            .map_or(0, |l| (l.rank * l.targets.len()) as u128);
        let per_token = layers * (4 * h + (5 * heads + 4 * kv) * head_dim + 5 * i + lora_floats);
        let head_tokens = decisions * self.max_line_tokens as u128;
        // The largest block of recomputed scores: rows of `queries` new
        // tokens against `keys` keys, per key head.
        let block =
            |queries: u128, keys: u128| (heads / kv * queries * keys).min(BACKWARD_BLOCK_SCORES as u128);
        let attention_backward =
            (rows * 2 * kv * block(t128 - shared, t128)).max(prompts * 2 * kv * block(shared, shared));
        let shared_keys = rows * layers * 2 * kv * head_dim * shared;
        let activations = read * per_token + shared_keys + attention_backward + head_tokens * 3 * v;
        let kv_cache = if rollouts > 0 {
            rollouts.min(self.act_batch as u128) * 2 * layers * kv * head_dim * t128 * FLOAT_BYTES
        } else {
            0
        };
        let layer_parameters = base - v * h * if llama.tie_word_embeddings { 1 } else { 2 };
        let per_token_flops =
            2.0 * (layer_parameters + adapters) as f64 + 4.0 * (layers * heads * head_dim * t128) as f64;
        let forward = per_token_flops * read as f64 + 2.0 * (v * h * head_tokens) as f64;
        let training = if self.lora.is_some() { 2.0 } else { 3.0 };
        let mut flops = training * forward * updates as f64;
        let shape = match work {
            Work::Sft { batch } => format!(
                "{batch} decisions in at most {rows} rows of T = {prompt_tokens} prompt + {} answer = {t} tokens",
                self.answer_tokens()
            ),
            Work::Grpo { .. } => {
                // Rollouts: each prompt once, then every generated token
                // with the cache; the reference scores the update's rows.
                let generated = rollouts * (answers * self.answer_tokens()) as u128;
                flops += per_token_flops * (rollouts * prompt_tokens as u128 + generated) as f64
                    + 2.0 * (v * h * generated) as f64
                    + forward;
                format!(
                    "{rollouts} rollouts ({} decoding at once), {rows} rows ({answers} answers a rollout) of T = {prompt_tokens} prompt + {} answer = {t} tokens an update",
                    rollouts.min(self.act_batch as u128),
                    self.answer_tokens()
                )
            }
        };
        // Weight matrices in the setting's precision; norms, biases and
        // adapters in f32. A half-precision matrix is widened to f32 where
        // it is used, and autodiff keeps the widened copy of every matrix
        // for the backward pass (the input gradients need it): a training
        // step holds them all.
        let matrices = llama_matrices(llama);
        let p = self.precision.bytes();
        let widened = if p == FLOAT_BYTES {
            0
        } else {
            matrices * FLOAT_BYTES
        };
        let mut footprint = Footprint {
            parameters,
            trainable,
            reference_bytes: if matches!(work, Work::Grpo { .. }) {
                trainable * FLOAT_BYTES
            } else {
                0
            },
            activation_bytes: activations * FLOAT_BYTES + widened,
            kv_cache_bytes: kv_cache,
            flops,
            shape,
            ..Footprint::default()
        }
        .with_state();
        footprint.weight_bytes = matrices * p + (parameters - matrices) * FLOAT_BYTES;
        if widened > 0 {
            footprint.shape.push_str(&format!(
                "; weight matrices in {} ({p} bytes a value), widened to f32 where used",
                self.precision
            ));
        }
        footprint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn llama_3_8b() -> LlamaConfig {
        let mut c = LlamaConfig::tiny(128_256, 32, 32, 8, 128);
        c.hidden_size = 4096;
        c.intermediate_size = 14_336;
        c.tie_word_embeddings = false;
        c
    }

    #[test]
    fn llama_3_8b_has_its_published_parameter_count() {
        // Meta's model card: 8.03 billion parameters.
        let p = llama_parameters(&llama_3_8b());
        assert_eq!(p, 8_030_261_248, "{p}");
    }

    #[test]
    fn lora_rank_32_on_every_projection_of_llama_3_8b() {
        let lora = LoraConfig {
            rank: 32,
            alpha: 64.0,
            dropout: 0.0,
            targets: TARGETS.iter().map(|s| s.to_string()).collect(),
        };
        // Per layer: 32 × (4096+4096 + 2·(4096+1024) + 4096+4096 + 2·(4096+14336) + 14336+4096).
        let per_layer = 32 * (8192 + 2 * 5120 + 8192 + 2 * 18432 + 18432);
        assert_eq!(lora_parameters(&llama_3_8b(), &lora), 32 * per_layer);
    }

    #[test]
    fn adam_keeps_two_moments_of_the_trainable_parameters_only() {
        let config = LlamaPolicyConfig {
            lora: Some(LoraConfig {
                rank: 4,
                alpha: 8.0,
                dropout: 0.0,
                targets: vec!["q_proj".into()],
            }),
            ..LlamaPolicyConfig::default()
        };
        let f = config.footprint(
            &llama_3_8b(),
            100,
            Work::Grpo {
                visits: 2,
                group: 4,
                ppo_epochs: 1,
            },
        );
        assert_eq!(f.optimizer_bytes, 2 * f.trainable * 4);
        assert_eq!(f.gradient_bytes, f.trainable * 4);
        assert_eq!(f.reference_bytes, f.trainable * 4);
        assert_eq!(f.weight_bytes, f.parameters * 4);
        assert!(f.kv_cache_bytes > 0 && f.trainable < f.parameters / 100);
        let sft = config.footprint(&llama_3_8b(), 100, Work::Sft { batch: 8 });
        assert_eq!((sft.reference_bytes, sft.kv_cache_bytes), (0, 0));
    }

    #[test]
    fn half_precision_halves_the_matrices_and_keeps_their_widened_copies() {
        use rxalign_lm::Precision;
        let llama = llama_3_8b();
        let f32_config = LlamaPolicyConfig {
            model: Some("m".into()),
            lora: Some(LoraConfig {
                rank: 32,
                alpha: 64.0,
                dropout: 0.0,
                targets: TARGETS.iter().map(|s| s.to_string()).collect(),
            }),
            ..LlamaPolicyConfig::default()
        };
        let bf16_config = LlamaPolicyConfig {
            precision: Precision::Bf16,
            ..f32_config.clone()
        };
        let work = Work::Sft { batch: 8 };
        let (full, half) = (
            f32_config.footprint(&llama, 512, work),
            bf16_config.footprint(&llama, 512, work),
        );
        let matrices = llama_matrices(&llama);
        // Llama 3 8B: everything but 65 norms of 4096 is a matrix.
        assert_eq!(llama_parameters(&llama) - matrices, 65 * 4096);
        assert_eq!(full.weight_bytes - half.weight_bytes, 2 * matrices);
        assert_eq!(half.activation_bytes - full.activation_bytes, 4 * matrices);
        assert_eq!(
            (half.gradient_bytes, half.optimizer_bytes),
            (full.gradient_bytes, full.optimizer_bytes)
        );
        assert_eq!(half.flops, full.flops);
    }
}
