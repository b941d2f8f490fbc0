//! LoRA: low-rank adapters on a frozen linear projection.
//!
//! A [`LoraLinear`] holds the base projection and any number of adapters, one
//! slot per named adapter of the model (`None` where that adapter does not
//! target this projection). Which adapter is applied is chosen per forward
//! call ([`Adapter`]): the reference policy is the same model called with
//! [`Adapter::Off`], never a copy.
//!
//! `y = x W + b + (alpha / r) * dropout(x) A B`, with `A` initialised like
//! PEFT (Kaiming-uniform) and `B` at zero, so a fresh adapter changes nothing.

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use serde::{Deserialize, Serialize};

use crate::precision::cast_to;

/// The projections an adapter can target, by their Hugging Face names.
pub const TARGETS: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// How one adapter is shaped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoraConfig {
    /// The rank of each adapter's update.
    pub rank: usize,
    /// The update is scaled by `alpha / rank`.
    pub alpha: f64,
    /// Dropout on the adapter's input while training.
    #[serde(default)]
    pub dropout: f64,
    /// Projection names from [`TARGETS`].
    pub targets: Vec<String>,
}

impl LoraConfig {
    pub fn scale(&self) -> f64 {
        self.alpha / self.rank as f64
    }
}

/// Which adapter a forward call applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Adapter {
    /// The base model alone (the reference policy).
    #[default]
    Off,
    /// The adapter at this index of the model's adapter list.
    On(usize),
}

/// One low-rank update.
///
/// # Shapes
/// `a`: `[d_in, rank]`, `b`: `[rank, d_out]` (burn's input-major layout).
#[derive(Module, Debug)]
pub struct LoraPair<B: Backend> {
    pub a: Param<Tensor<B, 2>>,
    pub b: Param<Tensor<B, 2>>,
    pub dropout: Dropout,
    pub scale: f64,
}

impl<B: Backend> LoraPair<B> {
    pub fn new(d_in: usize, d_out: usize, config: &LoraConfig, device: &B::Device) -> Self {
        // PEFT's default: kaiming_uniform_(a=sqrt(5)) on A, i.e. U(-1/sqrt(d_in), 1/sqrt(d_in)).
        let bound = 1.0 / (d_in as f64).sqrt();
        let a = Tensor::random([d_in, config.rank], Distribution::Uniform(-bound, bound), device);
        let b = Tensor::zeros([config.rank, d_out], device);
        LoraPair {
            a: Param::from_tensor(a),
            b: Param::from_tensor(b),
            dropout: DropoutConfig::new(config.dropout).init(),
            scale: config.scale(),
        }
    }

    /// The update to add to the base output.
    ///
    /// # Shapes
    /// `x`: `[..., d_in]` → `[..., d_out]`
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let x = self.dropout.forward(x);
        let [a, b] = [self.a.val(), self.b.val()];
        let r = a.dims()[1];
        let lead: usize = x.dims()[..D - 1].iter().product();
        let d_in = x.dims()[D - 1];
        let d_out = b.dims()[1];
        let mut out_shape = x.dims();
        out_shape[D - 1] = d_out;
        let h: Tensor<B, 2> = x.reshape([lead, d_in]).matmul(a);
        debug_assert_eq!(h.dims()[1], r);
        h.matmul(b).mul_scalar(self.scale).reshape(out_shape)
    }

    /// `scale * A B`, the dense update, `[d_in, d_out]`.
    pub fn delta(&self) -> Tensor<B, 2> {
        self.a.val().matmul(self.b.val()).mul_scalar(self.scale)
    }
}

/// A linear projection with optional LoRA adapters.
#[derive(Module, Debug)]
pub struct LoraLinear<B: Backend> {
    pub base: Linear<B>,
    pub adapters: Vec<Option<LoraPair<B>>>,
}

impl<B: Backend> LoraLinear<B> {
    pub fn new(base: Linear<B>) -> Self {
        LoraLinear {
            base,
            adapters: Vec::new(),
        }
    }

    /// # Shapes
    /// `x`: `[..., d_in]` → `[..., d_out]`
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>, adapter: Adapter) -> Tensor<B, D> {
        match adapter {
            Adapter::On(i) => match self.adapters.get(i).and_then(Option::as_ref) {
                Some(pair) => self.base_forward(x.clone()) + pair.forward(x),
                None => self.base_forward(x),
            },
            Adapter::Off => self.base_forward(x),
        }
    }

    /// The base projection in the input's dtype: a weight stored in half
    /// precision ([`crate::Precision`]) is cast for this product only.
    ///
    /// The leading dimensions are flattened into one: one `[rows, d_in] x
    /// [d_in, d_out]` product (on `flex` split over every thread, the
    /// weight packed once) rather than one product per batch row, and in
    /// the backward no per-row weight gradients to sum.
    fn base_forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let dtype = x.dtype();
        let mut dims = x.dims();
        let d_in = dims[D - 1];
        let rows = dims[..D - 1].iter().product();
        let out = burn::tensor::module::linear(
            x.reshape([rows, d_in]),
            cast_to(self.base.weight.val(), dtype),
            self.base.bias.as_ref().map(|b| cast_to(b.val(), dtype)),
        );
        dims[D - 1] = out.dims()[1];
        out.reshape(dims)
    }

    pub fn dims(&self) -> [usize; 2] {
        self.base.weight.dims()
    }

    /// Folds adapter `i` into the base weight and removes every adapter.
    pub fn merge(self, i: usize) -> Self {
        let LoraLinear { base, adapters } = self;
        let delta = adapters.into_iter().nth(i).flatten().map(|p| p.delta());
        let base = match delta {
            Some(delta) => Linear {
                // In the weight's own precision.
                weight: base.weight.map(|w| {
                    let dtype = w.dtype();
                    cast_to(cast_to(w, delta.dtype()) + delta, dtype)
                }),
                bias: base.bias,
            },
            None => base,
        };
        LoraLinear::new(base)
    }
}
