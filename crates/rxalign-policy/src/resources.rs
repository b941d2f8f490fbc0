//! What a training stage needs before it runs: parameters, the bytes of
//! weights, gradients, optimizer state, activations and key/value caches,
//! and the floating-point operations of one step (`rxalign plan FILE
//! --resources`). Each family sizes itself (`rxalign_set_encoder::resources`,
//! `rxalign_llama::resources`) in these terms.
//!
//! Every tensor is 32-bit except the `llama` editor's weight matrices under
//! `precision: "bf16"` or `"f16"` (2 bytes a value): the CPU backend and the
//! CUDA build compute in f32, and by default a bf16 or f16 checkpoint is cast
//! to f32 when loaded. The counts are estimates of what our code keeps, not
//! measurements; each field says what it counts. Peak memory is checked
//! against measured CPU runs by `tests/resources.rs` of `rxalign-cli`.

/// Bytes of one float (f32).
pub const FLOAT_BYTES: u128 = 4;

/// The cards a plan is checked against: name and memory in bytes as
/// `nvidia-smi` reports it (24, 40 and 80 GiB; the 141 GB H200 shows 140 GiB).
pub const CARDS: [(&str, u128); 4] = [
    ("24 GB (RTX 4090, A10G-class)", 24 << 30),
    ("40 GB (A100 40GB)", 40 << 30),
    ("80 GB (A100/H100 80GB)", 80 << 30),
    ("141 GB (H200)", 140 << 30),
];

/// A plan fits a card when its peak is at most this share of the card's
/// memory; the rest is left to the CUDA context and allocator slack.
pub const CARD_SHARE: f64 = 0.9;

/// What one training step (SFT) or one GRPO iteration works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// One SFT step of `batch` decisions.
    Sft { batch: usize },
    /// One GRPO iteration: `visits × group` rollouts, then `ppo_epochs`
    /// updates on all their decisions at once.
    Grpo {
        visits: usize,
        group: usize,
        ppo_epochs: usize,
    },
}

/// A stage's resources (bytes are f32 bytes).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Footprint {
    pub parameters: u128,
    pub trainable: u128,
    /// Every parameter (the frozen base and the adapters).
    pub weight_bytes: u128,
    /// One gradient per trainable parameter.
    pub gradient_bytes: u128,
    /// Adam's two moments per trainable parameter.
    pub optimizer_bytes: u128,
    /// GRPO's KL reference (the SFT policy): its frozen weights are the
    /// policy's own tensors (reference-counted, never copied), so only a
    /// copy of the trainable parameters counts; 0 for SFT.
    pub reference_bytes: u128,
    /// What autodiff keeps of one forward pass for its backward pass.
    pub activation_bytes: u128,
    /// The rollouts' key/value caches at their longest (GRPO of the
    /// language model; 0 otherwise).
    pub kv_cache_bytes: u128,
    /// Floating-point operations of one step (SFT) or one iteration (GRPO).
    pub flops: f64,
    /// Sizes the estimate used (tokens, rows), for the reader.
    pub shape: String,
}

impl Footprint {
    /// The estimated peak: the weights, gradients, optimizer state and
    /// reference, plus the larger of the training pass's activations and
    /// the rollouts' caches (they are never alive together).
    pub fn peak_bytes(&self) -> u128 {
        self.weight_bytes
            + self.gradient_bytes
            + self.optimizer_bytes
            + self.reference_bytes
            + self.activation_bytes.max(self.kv_cache_bytes)
    }

    /// The cards of [`CARDS`] whose memory holds the peak (at most
    /// [`CARD_SHARE`] of it).
    pub fn fits(&self) -> Vec<(&'static str, bool)> {
        let peak = self.peak_bytes() as f64;
        CARDS
            .iter()
            .map(|&(name, bytes)| (name, peak <= bytes as f64 * CARD_SHARE))
            .collect()
    }

    /// Weights of every parameter, and a gradient and Adam's two moments
    /// of every trainable one, as f32.
    pub fn with_state(mut self) -> Self {
        self.weight_bytes = self.parameters * FLOAT_BYTES;
        self.gradient_bytes = self.trainable * FLOAT_BYTES;
        self.optimizer_bytes = 2 * self.trainable * FLOAT_BYTES;
        self
    }
}
