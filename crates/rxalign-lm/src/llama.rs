//! The Llama-family decoder (Llama 2 and 3, SmolLM2, Qwen2, Mistral without
//! sliding windows): token embedding, pre-norm blocks of grouped-query
//! attention with rotary positions and a SwiGLU MLP, RMSNorm, and a tied or
//! separate output head.
//!
//! Field names follow Hugging Face's parameter names, so a checkpoint's keys
//! map onto this module with two renames (see [`crate::weights`]).
//! The KV cache belongs to the caller ([`KvCache`]); sampling lives outside
//! the model ([`crate::generate`](mod@crate::generate)).

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig, RmsNorm, RmsNormConfig};
use burn::tensor::activation::{log_softmax, silu};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::attention::attention;
use crate::config::LlamaConfig;
use crate::error::{LmError, Result};
use crate::lora::{Adapter, LoraConfig, LoraLinear, LoraPair, TARGETS};
use crate::precision::cast_to;

/// A score added to masked attention logits: finite, so that a row with no
/// allowed key (a padding query) gives a uniform, not a NaN, distribution.
const MASKED: f32 = -1.0e30;

/// The keys and values of every layer so far, and which key positions hold
/// real tokens (false for left padding). Owned by the caller: one per batch
/// of sequences being decoded.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    /// Per layer: keys and values, each `[batch, kv_heads, keys, head_dim]`.
    layers: Vec<Option<(Tensor<B, 4>, Tensor<B, 4>)>>,
    /// Per row, per key position: a real token (true) or padding.
    real: Vec<Vec<bool>>,
}

impl<B: Backend> KvCache<B> {
    pub fn new(layers: usize) -> Self {
        KvCache {
            layers: vec![None; layers],
            real: Vec::new(),
        }
    }

    /// How many key positions are cached.
    pub fn len(&self) -> usize {
        self.real.first().map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `r`'s keys and values at its real positions (padding left
    /// out), every layer; `None` when nothing is cached or there is no
    /// row `r`.
    ///
    /// # Shapes
    /// per layer, keys and values `[1, kv_heads, real positions, head_dim]`
    pub fn row(&self, r: usize) -> Option<CachedRow<B>> {
        let real = self.real.get(r)?;
        let keep: Vec<i64> = (0..real.len()).filter(|&k| real[k]).map(|k| k as i64).collect();
        let mut layers = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let (k, v) = layer.as_ref()?;
            let device = k.device();
            let at = Tensor::<B, 1, Int>::from_data(TensorData::new(keep.clone(), [keep.len()]), &device);
            let pick = |t: &Tensor<B, 4>| t.clone().narrow(0, r, 1).select(2, at.clone());
            layers.push((pick(k), pick(v)));
        }
        Some(CachedRow {
            layers,
            len: keep.len(),
        })
    }

    /// A cache that continues `rows`: row `i` holds the first `n` positions
    /// of its [`CachedRow`] (`None`: nothing cached), left-padded to the
    /// longest with masked positions. The tokens given next continue each
    /// row at its own position.
    ///
    /// # Shapes
    /// per layer, keys and values `[rows.len(), kv_heads, longest n, head_dim]`
    pub fn from_rows(layers: usize, rows: &[Option<(&CachedRow<B>, usize)>]) -> Self {
        let kept = |row: &Option<(&CachedRow<B>, usize)>| row.map_or(0, |(c, n)| n.min(c.len));
        let width = rows.iter().map(kept).max().unwrap_or(0);
        let Some((shape, device)) = rows
            .iter()
            .flatten()
            .find_map(|(c, _)| c.layers.first().map(|(k, _)| (k.dims(), k.device())))
        else {
            return Self::new(layers);
        };
        if width == 0 {
            return Self::new(layers);
        }
        let [_, kv, _, d] = shape;
        let mut out = Vec::with_capacity(layers);
        for l in 0..layers {
            let mut keys = Vec::with_capacity(rows.len());
            let mut values = Vec::with_capacity(rows.len());
            for row in rows {
                let n = kept(row);
                let pad = |parts: &mut Vec<Tensor<B, 4>>| {
                    if n < width {
                        parts.push(Tensor::zeros([1, kv, width - n, d], &device));
                    }
                };
                let mut k_parts = Vec::with_capacity(2);
                let mut v_parts = Vec::with_capacity(2);
                pad(&mut k_parts);
                pad(&mut v_parts);
                if let Some((c, _)) = row
                    && n > 0
                {
                    let (k, v) = &c.layers[l];
                    k_parts.push(k.clone().narrow(2, 0, n));
                    v_parts.push(v.clone().narrow(2, 0, n));
                }
                keys.push(Tensor::cat(k_parts, 2));
                values.push(Tensor::cat(v_parts, 2));
            }
            out.push(Some((Tensor::cat(keys, 0), Tensor::cat(values, 0))));
        }
        let real = rows
            .iter()
            .map(|row| {
                let n = kept(row);
                let mut r = vec![false; width - n];
                r.resize(width, true);
                r
            })
            .collect();
        KvCache { layers: out, real }
    }
}

/// One sequence's keys and values, every layer, without padding: what
/// [`KvCache::row`] takes out of a batch and [`KvCache::from_rows`] puts
/// back, so that a caller can continue a sequence later in another batch.
#[derive(Debug, Clone)]
pub struct CachedRow<B: Backend> {
    /// Per layer: keys and values, each `[1, kv_heads, len, head_dim]`.
    layers: Vec<(Tensor<B, 4>, Tensor<B, 4>)>,
    len: usize,
}

impl<B: Backend> CachedRow<B> {
    /// How many positions are cached.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Grouped-query self-attention.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    pub q_proj: LoraLinear<B>,
    pub k_proj: LoraLinear<B>,
    pub v_proj: LoraLinear<B>,
    pub o_proj: LoraLinear<B>,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

/// The SwiGLU MLP: `down(silu(gate(x)) * up(x))`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    pub gate_proj: LoraLinear<B>,
    pub up_proj: LoraLinear<B>,
    pub down_proj: LoraLinear<B>,
}

/// One pre-norm decoder block.
#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    pub self_attn: Attention<B>,
    pub mlp: Mlp<B>,
    pub input_layernorm: RmsNorm<B>,
    pub post_attention_layernorm: RmsNorm<B>,
}

/// The decoder stack without its head (Hugging Face's `model.`).
#[derive(Module, Debug)]
pub struct LlamaModel<B: Backend> {
    pub embed_tokens: Embedding<B>,
    pub layers: Vec<DecoderLayer<B>>,
    pub norm: RmsNorm<B>,
}

/// A causal language model: the decoder and its output head (`None` when the
/// head is tied to the embedding).
#[derive(Module, Debug)]
pub struct Llama<B: Backend> {
    pub model: LlamaModel<B>,
    pub lm_head: Option<Linear<B>>,
    #[module(skip)]
    pub config: LlamaConfig,
    /// Rotary inverse frequencies, `head_dim / 2`.
    #[module(skip)]
    inv_freq: Vec<f32>,
    /// The names and shapes of the LoRA adapters, in slot order.
    #[module(skip)]
    adapters: Vec<(String, LoraConfig)>,
}

fn linear<B: Backend>(d_in: usize, d_out: usize, bias: bool, device: &B::Device) -> LoraLinear<B> {
    LoraLinear::new(LinearConfig::new(d_in, d_out).with_bias(bias).init(device))
}

impl LlamaConfig {
    /// A model of this shape with freshly initialised weights (tests, or the
    /// skeleton that a checkpoint is loaded into).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Llama<B> {
        let d = self.hidden_size;
        let (h, kv, hd) = (self.num_attention_heads, self.kv_heads(), self.head_dim());
        let norm = || RmsNormConfig::new(d).with_epsilon(self.rms_norm_eps).init(device);
        let layers = (0..self.num_hidden_layers)
            .map(|_| DecoderLayer {
                self_attn: Attention {
                    q_proj: linear(d, h * hd, self.qkv_bias(), device),
                    k_proj: linear(d, kv * hd, self.qkv_bias(), device),
                    v_proj: linear(d, kv * hd, self.qkv_bias(), device),
                    o_proj: linear(h * hd, d, self.o_bias(), device),
                    heads: h,
                    kv_heads: kv,
                    head_dim: hd,
                },
                mlp: Mlp {
                    gate_proj: linear(d, self.intermediate_size, self.mlp_bias, device),
                    up_proj: linear(d, self.intermediate_size, self.mlp_bias, device),
                    down_proj: linear(self.intermediate_size, d, self.mlp_bias, device),
                },
                input_layernorm: norm(),
                post_attention_layernorm: norm(),
            })
            .collect();
        Llama {
            model: LlamaModel {
                embed_tokens: EmbeddingConfig::new(self.vocab_size, d).init(device),
                layers,
                norm: norm(),
            },
            lm_head: (!self.tie_word_embeddings).then(|| {
                LinearConfig::new(d, self.vocab_size)
                    .with_bias(false)
                    .init(device)
            }),
            config: self.clone(),
            inv_freq: self.inv_freq(),
            adapters: Vec::new(),
        }
    }
}

/// The rotary tables of one forward call, each as wide as the heads it
/// turns, so that every product is between tensors of one shape (a
/// broadcast over heads takes flex's slow strided path).
struct Rotary<B: Backend> {
    /// `[batch, seq, heads * head_dim]` for the queries.
    cos_q: Tensor<B, 3>,
    sin_q: Tensor<B, 3>,
    /// `[batch, seq, kv_heads * head_dim]` for the keys.
    cos_k: Tensor<B, 3>,
    sin_k: Tensor<B, 3>,
    /// `[head_dim, head_dim]`: `x · half_turn` is `cat(-x2, x1)`, Hugging
    /// Face's `rotate_half`, as one matrix product.
    half_turn: Tensor<B, 2>,
}

/// Rotary encoding in Hugging Face's rotate-half layout:
/// `x * cos + rotate_half(x) * sin`, per head.
///
/// # Shapes
/// `x`, `cos`, `sin`: `[batch, seq, heads * head_dim]`; `half_turn`:
/// `[head_dim, head_dim]` → `[batch, seq, heads * head_dim]`
fn rope<B: Backend>(
    x: Tensor<B, 3>,
    cos: &Tensor<B, 3>,
    sin: &Tensor<B, 3>,
    half_turn: &Tensor<B, 2>,
) -> Tensor<B, 3> {
    let [b, s, width] = x.dims();
    let d = half_turn.dims()[0];
    let turned = x
        .clone()
        .reshape([b * s * (width / d), d])
        .matmul(half_turn.clone())
        .reshape([b, s, width]);
    x * cos.clone() + turned * sin.clone()
}

impl<B: Backend> Attention<B> {
    /// # Shapes
    /// `x`: `[batch, seq, hidden]`; `bias`: `[batch, 1, heads / kv_heads * seq, keys]`
    /// (0 or [`MASKED`], the same for each query head of a group) → `[batch, seq, hidden]`
    fn forward(
        &self,
        x: Tensor<B, 3>,
        rotary: &Rotary<B>,
        bias: &Tensor<B, 4>,
        cache: Option<&mut Option<(Tensor<B, 4>, Tensor<B, 4>)>>,
        adapter: Adapter,
    ) -> Tensor<B, 3> {
        let [b, s, _] = x.dims();
        let (h, kv, d) = (self.heads, self.kv_heads, self.head_dim);
        let heads = |t: Tensor<B, 3>, n: usize| t.reshape([b, s, n, d]).swap_dims(1, 2);
        let q = rope(
            self.q_proj.forward(x.clone(), adapter),
            &rotary.cos_q,
            &rotary.sin_q,
            &rotary.half_turn,
        );
        let k = rope(
            self.k_proj.forward(x.clone(), adapter),
            &rotary.cos_k,
            &rotary.sin_k,
            &rotary.half_turn,
        );
        let (q, mut k, mut v) = (
            heads(q, h),
            heads(k, kv),
            heads(self.v_proj.forward(x, adapter), kv),
        );
        if let Some(slot) = cache {
            if let Some((pk, pv)) = slot.take() {
                k = Tensor::cat(vec![pk, k], 2);
                v = Tensor::cat(vec![pv, v], 2);
            }
            *slot = Some((k.clone(), v.clone()));
        }
        // Query head i uses key/value head i / rep: group the queries of one
        // key/value head instead of repeating keys and values.
        let rep = h / kv;
        let q = q.reshape([b, kv, rep * s, d]);
        let out = attention(q, k, v, bias.clone(), 1.0 / (d as f64).sqrt())
            .reshape([b, h, s, d])
            .swap_dims(1, 2);
        self.o_proj.forward(out.reshape([b, s, h * d]), adapter)
    }
}

impl<B: Backend> Mlp<B> {
    /// # Shapes
    /// `[batch, seq, hidden]` → `[batch, seq, hidden]`
    fn forward(&self, x: Tensor<B, 3>, adapter: Adapter) -> Tensor<B, 3> {
        let gate = silu(self.gate_proj.forward(x.clone(), adapter));
        self.down_proj
            .forward(gate * self.up_proj.forward(x, adapter), adapter)
    }
}

/// Which tokens of a batch are real, and where they sit: the host-side part
/// of a forward call.
struct Layout<B: Backend> {
    rotary: Rotary<B>,
    /// `[batch, 1, heads / kv_heads * seq, keys]`, see [`attention`].
    bias: Tensor<B, 4>,
    keys_real: Vec<Vec<bool>>,
}

impl<B: Backend> Llama<B> {
    pub fn device(&self) -> B::Device {
        self.model.embed_tokens.weight.device()
    }

    pub fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    /// Positions, rotary tables and the attention bias for `real`
    /// (`[batch * seq]`) appended after `past` (per row, per cached key).
    fn layout(&self, b: usize, s: usize, real: &[bool], past: &[Vec<bool>]) -> Layout<B> {
        let device = self.device();
        let t0 = past.first().map_or(0, Vec::len);
        let t = t0 + s;
        let half = self.inv_freq.len();
        let hd = 2 * half;
        let (heads, kv_heads) = (self.config.num_attention_heads, self.config.kv_heads());
        let rep = heads / kv_heads;
        // Per position: the head's cos and sin, `hd` values each.
        let mut cos = Vec::with_capacity(b * s * hd);
        let mut sin = Vec::with_capacity(b * s * hd);
        let mut bias = vec![MASKED; b * s * t];
        let mut keys_real = Vec::with_capacity(b);
        for row in 0..b {
            let mut keys: Vec<bool> = past.get(row).cloned().unwrap_or_default();
            keys.extend_from_slice(&real[row * s..(row + 1) * s]);
            // Hugging Face: position = number of real tokens before this one.
            let mut pos = past.get(row).map_or(0, |p| p.iter().filter(|&&r| r).count());
            for j in 0..s {
                let p = if real[row * s + j] {
                    pos += 1;
                    pos - 1
                } else {
                    0
                } as f32;
                // As transformers: the angle in f32, then cos and sin.
                let angles: Vec<f32> = self.inv_freq.iter().map(|f| f * p).collect();
                for _ in 0..2 {
                    cos.extend(angles.iter().map(|a| a.cos()));
                    sin.extend(angles.iter().map(|a| a.sin()));
                }
                let q = t0 + j;
                let line = &mut bias[(row * s + j) * t..(row * s + j + 1) * t];
                for (k, slot) in line.iter_mut().enumerate().take(q + 1) {
                    if keys[k] {
                        *slot = 0.0;
                    }
                }
            }
            keys_real.push(keys);
        }
        // Each position's table once per head; each batch row's bias once
        // per query head of a group.
        let per_head = |table: &[f32], n: usize| -> Vec<f32> {
            table.chunks(hd).flat_map(|position| position.repeat(n)).collect()
        };
        let grouped: Vec<f32> = bias.chunks(s * t).flat_map(|row| row.repeat(rep)).collect();
        let mut half_turn = vec![0.0f32; hd * hd];
        for i in 0..half {
            // out[i] = -x[i + half], out[i + half] = x[i]
            half_turn[(i + half) * hd + i] = -1.0;
            half_turn[i * hd + i + half] = 1.0;
        }
        let table = |v: Vec<f32>, n: usize| Tensor::from_data(TensorData::new(v, [b, s, n * hd]), &device);
        Layout {
            rotary: Rotary {
                cos_q: table(per_head(&cos, heads), heads),
                sin_q: table(per_head(&sin, heads), heads),
                cos_k: table(per_head(&cos, kv_heads), kv_heads),
                sin_k: table(per_head(&sin, kv_heads), kv_heads),
                half_turn: Tensor::from_data(TensorData::new(half_turn, [hd, hd]), &device),
            },
            bias: Tensor::from_data(TensorData::new(grouped, [b, 1, rep * s, t]), &device),
            keys_real,
        }
    }

    /// The final hidden states.
    ///
    /// `real` marks real tokens (`[batch * seq]`, row-major; `None`: all real);
    /// padding must come before a row's real tokens (left padding). With a
    /// cache, the tokens continue the cached sequences and the cache grows.
    ///
    /// # Shapes
    /// `tokens`: `[batch, seq]` → `[batch, seq, hidden]`
    pub fn hidden(
        &self,
        tokens: Tensor<B, 2, Int>,
        real: Option<&[bool]>,
        mut cache: Option<&mut KvCache<B>>,
        adapter: Adapter,
    ) -> Tensor<B, 3> {
        let [b, s] = tokens.dims();
        let all;
        let real = match real {
            Some(r) => r,
            None => {
                all = vec![true; b * s];
                &all
            }
        };
        assert_eq!(real.len(), b * s, "`real` must have batch * seq entries");
        let past: &[Vec<bool>] = cache.as_ref().map_or(&[], |c| &c.real);
        let layout = self.layout(b, s, real, past);
        // Activations are in the backend's float type, whatever the
        // embedding's storage (crate::Precision).
        let mut x = cast_to(
            self.model.embed_tokens.forward(tokens),
            <B::FloatElem as burn::tensor::Element>::dtype(),
        );
        for (i, layer) in self.model.layers.iter().enumerate() {
            let slot = cache.as_mut().map(|c| &mut c.layers[i]);
            let a = layer.self_attn.forward(
                layer.input_layernorm.forward(x.clone()),
                &layout.rotary,
                &layout.bias,
                slot,
                adapter,
            );
            x = x + a;
            let m = layer
                .mlp
                .forward(layer.post_attention_layernorm.forward(x.clone()), adapter);
            x = x + m;
        }
        if let Some(c) = cache {
            c.real = layout.keys_real;
        }
        self.model.norm.forward(x)
    }

    /// Next-token logits at every position.
    ///
    /// # Shapes
    /// `tokens`: `[batch, seq]` → `[batch, seq, vocab]`
    pub fn forward(
        &self,
        tokens: Tensor<B, 2, Int>,
        real: Option<&[bool]>,
        cache: Option<&mut KvCache<B>>,
        adapter: Adapter,
    ) -> Tensor<B, 3> {
        let h = self.hidden(tokens, real, cache, adapter);
        self.head(h)
    }

    /// The output head on hidden states.
    ///
    /// # Shapes
    /// `[batch, seq, hidden]` → `[batch, seq, vocab]`
    pub fn head(&self, h: Tensor<B, 3>) -> Tensor<B, 3> {
        match &self.lm_head {
            Some(head) => {
                let [b, s, d] = h.dims();
                let dtype = h.dtype();
                burn::tensor::module::linear(h.reshape([b * s, d]), cast_to(head.weight.val(), dtype), None)
                    .reshape([b, s, self.config.vocab_size])
            }
            None => {
                let [b, s, d] = h.dims();
                let w = cast_to(self.model.embed_tokens.weight.val(), h.dtype());
                h.reshape([b * s, d])
                    .matmul(w.transpose())
                    .reshape([b, s, self.config.vocab_size])
            }
        }
    }

    /// The output head restricted to some tokens: their logits only, without
    /// the full vocabulary's matmul (a yes/no classifier needs two).
    ///
    /// # Shapes
    /// `h`: `[rows, hidden]` → `[rows, tokens.len()]`
    pub fn head_of(&self, h: Tensor<B, 2>, tokens: &[u32]) -> Tensor<B, 2> {
        let device = self.device();
        let ids: Vec<i64> = tokens.iter().map(|&t| i64::from(t)).collect();
        let ids = Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [tokens.len()]), &device);
        let w = match &self.lm_head {
            // burn's layout: `[hidden, vocab]`.
            Some(head) => head.weight.val().select(1, ids),
            // The embedding: `[vocab, hidden]`.
            None => self.model.embed_tokens.weight.val().select(0, ids).transpose(),
        };
        let dtype = h.dtype();
        h.matmul(cast_to(w, dtype))
    }

    /// The training forward: the log-probability of each token given those
    /// before it, kept where `score` is true (the completion) and 0 elsewhere.
    ///
    /// `real` as in [`Llama::forward`]; `score[r * seq + j]` says whether
    /// token `j` of row `r` is scored (the first token never is: nothing
    /// predicts it).
    ///
    /// # Shapes
    /// `tokens`: `[batch, seq]` → `[batch, seq - 1]`, entry `j` scoring token `j + 1`
    pub fn token_logprobs(
        &self,
        tokens: Tensor<B, 2, Int>,
        real: Option<&[bool]>,
        score: &[bool],
        adapter: Adapter,
    ) -> Tensor<B, 2> {
        let [b, s] = tokens.dims();
        assert_eq!(score.len(), b * s, "`score` must have batch * seq entries");
        let logits = self
            .forward(tokens.clone(), real, None, adapter)
            .narrow(1, 0, s - 1);
        let next = tokens.narrow(1, 1, s - 1);
        let lp = log_softmax(logits, 2)
            .gather(2, next.unsqueeze_dim::<3>(2))
            .squeeze_dim::<2>(2);
        let keep: Vec<f32> = (0..b)
            .flat_map(|r| (1..s).map(move |j| (r, j)))
            .map(|(r, j)| if score[r * s + j] { 1.0 } else { 0.0 })
            .collect();
        let keep = Tensor::from_data(TensorData::new(keep, [b, s - 1]), &lp.device());
        lp * keep
    }

    /// The names of the LoRA adapters, in slot order.
    pub fn adapter_names(&self) -> Vec<&str> {
        self.adapters.iter().map(|(n, _)| n.as_str()).collect()
    }

    pub fn adapter_config(&self, name: &str) -> Result<&LoraConfig> {
        Ok(&self.adapters[self.adapter_index(name)?].1)
    }

    /// The adapter called `name`, for forward calls.
    pub fn adapter(&self, name: &str) -> Result<Adapter> {
        self.adapter_index(name).map(Adapter::On)
    }

    /// The slot of the adapter called `name` in every projection's list.
    pub fn adapter_index(&self, name: &str) -> Result<usize> {
        self.adapters
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| LmError::UnknownAdapter {
                name: name.into(),
                known: self.adapter_names().join(", "),
            })
    }

    /// Every projection, by its Hugging Face name, per layer.
    fn projections_mut(&mut self) -> impl Iterator<Item = (usize, &'static str, &mut LoraLinear<B>)> {
        self.model.layers.iter_mut().enumerate().flat_map(|(i, l)| {
            let a = &mut l.self_attn;
            let m = &mut l.mlp;
            [
                ("q_proj", &mut a.q_proj),
                ("k_proj", &mut a.k_proj),
                ("v_proj", &mut a.v_proj),
                ("o_proj", &mut a.o_proj),
                ("gate_proj", &mut m.gate_proj),
                ("up_proj", &mut m.up_proj),
                ("down_proj", &mut m.down_proj),
            ]
            .into_iter()
            .map(move |(n, p)| (i, n, p))
        })
    }

    /// Every projection, by its Hugging Face name, per layer.
    pub fn projections(&self) -> impl Iterator<Item = (usize, &'static str, &LoraLinear<B>)> {
        self.model.layers.iter().enumerate().flat_map(|(i, l)| {
            let a = &l.self_attn;
            let m = &l.mlp;
            [
                ("q_proj", &a.q_proj),
                ("k_proj", &a.k_proj),
                ("v_proj", &a.v_proj),
                ("o_proj", &a.o_proj),
                ("gate_proj", &m.gate_proj),
                ("up_proj", &m.up_proj),
                ("down_proj", &m.down_proj),
            ]
            .into_iter()
            .map(move |(n, p)| (i, n, p))
        })
    }

    /// Freezes every parameter present now (the base): gradients reach only
    /// adapters added afterwards, and optimisers skip the rest.
    pub fn freeze(self) -> Self {
        self.no_grad()
    }

    /// Adds a named LoRA adapter (fresh: `B = 0`, so it changes nothing yet)
    /// on the configured projections of every layer.
    pub fn add_adapter(mut self, name: &str, config: LoraConfig) -> Result<Self> {
        if self.adapters.iter().any(|(n, _)| n == name) {
            return Err(LmError::DuplicateAdapter(name.into()));
        }
        if let Some(bad) = config.targets.iter().find(|t| !TARGETS.contains(&t.as_str())) {
            return Err(LmError::UnknownTarget {
                target: bad.clone(),
                known: TARGETS.join(", "),
            });
        }
        if config.rank == 0 || config.targets.is_empty() {
            return Err(LmError::Request(format!(
                "adapter `{name}` needs a positive rank and at least one target"
            )));
        }
        let device = self.device();
        for (_, proj_name, proj) in self.projections_mut() {
            let [d_in, d_out] = proj.dims();
            let pair = config
                .targets
                .iter()
                .any(|t| t == proj_name)
                .then(|| LoraPair::new(d_in, d_out, &config, &device));
            proj.adapters.push(pair);
        }
        self.adapters.push((name.into(), config));
        Ok(self)
    }

    /// Sets adapter `name` to `other`'s (a model of the same shape and
    /// adapters, such as a copy at another epoch); nothing else changes.
    pub fn copy_adapter_from(&mut self, other: &Llama<B>, name: &str) -> Result<()> {
        let slot = self.adapter_index(name)?;
        if other.adapter_index(name)? != slot || self.model.layers.len() != other.model.layers.len() {
            return Err(LmError::Request(format!(
                "adapter `{name}` cannot be copied between models of other shapes"
            )));
        }
        for ((_, _, mine), (_, _, theirs)) in self.projections_mut().zip(other.projections()) {
            if let (Some(m), Some(t)) = (mine.adapters.get_mut(slot), theirs.adapters.get(slot)) {
                *m = t.clone();
            }
        }
        Ok(())
    }

    /// The model with adapter `name` folded into the base weights and no
    /// adapters left.
    pub fn merge(mut self, name: &str) -> Result<Self> {
        let slot = self.adapter_index(name)?;
        for layer in self.model.layers.iter_mut() {
            let a = &mut layer.self_attn;
            let m = &mut layer.mlp;
            for p in [
                &mut a.q_proj,
                &mut a.k_proj,
                &mut a.v_proj,
                &mut a.o_proj,
                &mut m.gate_proj,
                &mut m.up_proj,
                &mut m.down_proj,
            ] {
                let taken = std::mem::replace(p, LoraLinear::new(p.base.clone()));
                *p = taken.merge(slot);
            }
        }
        self.adapters.clear();
        Ok(self)
    }
}

#[cfg(test)]
mod tests;
