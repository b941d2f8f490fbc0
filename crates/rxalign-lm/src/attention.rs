//! Scaled dot-product attention for the decoder: grouped-query heads and an
//! additive bias that carries the causal and padding masks.
//!
//! - Without autodiff (prefill, decoding, scoring) it is the backend's own
//!   fused attention (`burn::tensor::module::attention`: on `flex` one pass
//!   per head over a score tile, or its tiled flash kernel for long rows).
//! - In training it is one autodiff operation, `FusedAttention`: its
//!   forward is the inner backend's fused attention and it keeps only the
//!   queries, keys, values, bias and output; its backward recomputes the
//!   scores block by block of query rows, so no `[rows, keys]` matrix of any
//!   layer outlives its layer's backward, and memory grows linearly with the
//!   sequence for a fixed block budget. burn 0.21 ships no fused attention
//!   backward (`burn-autodiff` builds `attention` from primitive ops, each
//!   with its own backward pass over the scores).
//!
//! burn's autodiff operations are written for `Autodiff<B, C>` with the
//! inner backend `B` known, while the model is generic over any `Backend`.
//! [`attention`] therefore routes a training call to the operation by the
//! backend's type for the backends rxalign trains on (`flex`, and CUDA with
//! the `cuda` feature), each with any of burn's checkpoint strategies; any
//! other autodiff backend gets burn's differentiable composition.

use std::any::{Any, TypeId};

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::ops::{AttentionModuleOptions, FloatTensor};
use burn::tensor::{Tensor, TensorPrimitive};

/// Score elements per batch row and key head that one block of the backward
/// recomputes at a time (`rows_per_block * keys`): 128 Ki, so that 128-token
/// rows are one block and 1,024-token rows are blocks of 128 query rows.
pub const BACKWARD_BLOCK_SCORES: usize = 128 * 1024;

/// Grouped-query attention with an additive bias.
///
/// The query heads that share a key/value head are stacked along the rows:
/// row `g * seq + i` is query `i` of the `g`-th head of its group.
///
/// # Shapes
/// - `q`: `[batch, kv_heads, rows, head_dim]`
/// - `k`, `v`: `[batch, kv_heads, keys, head_dim]`
/// - `bias`: `[batch, 1, rows, keys]`, added to the scaled scores (0 where a
///   query may look, a large negative number where it may not); a constant,
///   no gradient flows into it
/// - output: `[batch, kv_heads, rows, head_dim]`
pub fn attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    bias: Tensor<B, 4>,
    scale: f64,
) -> Tensor<B, 4> {
    let inputs = Inputs { q, k, v, bias };
    let inputs = if B::ad_enabled(&inputs.q.device()) {
        match fused(inputs, scale) {
            Ok(out) => return out,
            Err(inputs) => inputs,
        }
    } else {
        inputs
    };
    burn::tensor::module::attention(
        inputs.q,
        inputs.k,
        inputs.v,
        None,
        Some(inputs.bias),
        options(scale),
    )
}

fn options(scale: f64) -> AttentionModuleOptions {
    AttentionModuleOptions {
        scale: Some(scale),
        softcap: None,
        is_causal: false,
    }
}

/// The four inputs of [`attention`], handed back when no route takes them.
struct Inputs<B: Backend> {
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    bias: Tensor<B, 4>,
}

type Route<X> = fn(Inputs<X>, f64) -> Result<Tensor<X, 4>, Inputs<X>>;

/// [`FusedAttention`] when `X` is one of the autodiff backends it is routed
/// for; the inputs back otherwise.
fn fused<X: Backend>(inputs: Inputs<X>, scale: f64) -> Result<Tensor<X, 4>, Inputs<X>> {
    let routes: &[Route<X>] = &[
        on::<burn::backend::Flex, NoCheckpointing, X>,
        on::<burn::backend::Flex, BalancedCheckpointing, X>,
        #[cfg(feature = "cuda")]
        on::<burn::backend::Cuda, NoCheckpointing, X>,
        #[cfg(feature = "cuda")]
        on::<burn::backend::Cuda, BalancedCheckpointing, X>,
    ];
    let mut inputs = inputs;
    for route in routes {
        match route(inputs, scale) {
            Ok(out) => return Ok(out),
            Err(back) => inputs = back,
        }
    }
    Err(inputs)
}

/// `x` as a `To` when it is one (the same type under another name).
fn same<From: 'static, To: 'static>(x: From) -> Result<To, From> {
    let mut slot = Some(x);
    if let Some(to) = (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<To>>()
        .and_then(Option::take)
    {
        return Ok(to);
    }
    match slot {
        Some(x) => Err(x),
        None => unreachable!("a failed downcast leaves the slot as it was"),
    }
}

/// The route through `Autodiff<B, C>`: `X` is that backend, or the inputs
/// go back untouched.
fn on<B: Backend, C: CheckpointStrategy, X: Backend>(
    inputs: Inputs<X>,
    scale: f64,
) -> Result<Tensor<X, 4>, Inputs<X>> {
    if TypeId::of::<X>() != TypeId::of::<Autodiff<B, C>>() {
        return Err(inputs);
    }
    let primitive = |t: Tensor<X, 4>| -> FloatTensor<Autodiff<B, C>> {
        match same(t.into_primitive().tensor()) {
            Ok(p) => p,
            Err(_) => unreachable!("X is Autodiff<B, C>, checked above"),
        }
    };
    let out = fused_autodiff::<B, C>(
        primitive(inputs.q),
        primitive(inputs.k),
        primitive(inputs.v),
        primitive(inputs.bias),
        scale,
    );
    match same::<_, FloatTensor<X>>(out) {
        Ok(out) => Ok(Tensor::from_primitive(TensorPrimitive::Float(out))),
        Err(_) => unreachable!("X is Autodiff<B, C>, checked above"),
    }
}

/// The autodiff operation: burn's `Backward` for attention with the
/// queries, keys and values as parents.
#[derive(Debug)]
struct FusedAttention;

/// What the backward needs: the inputs and the output, nothing quadratic.
#[derive(Debug, Clone)]
struct Saved<B: Backend> {
    q: FloatTensor<B>,
    k: FloatTensor<B>,
    v: FloatTensor<B>,
    bias: FloatTensor<B>,
    out: FloatTensor<B>,
    scale: f64,
}

impl<B: Backend> Backward<B, 3> for FusedAttention {
    type State = Saved<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_q, node_k, node_v] = ops.parents;
        let grad = tensor::<B>(grads.consume::<B>(&ops.node));
        let s = ops.state;
        let (dq, dk, dv) = attention_backward(
            tensor(s.q),
            tensor(s.k),
            tensor(s.v),
            tensor(s.bias),
            tensor(s.out),
            grad,
            s.scale,
        );
        for (node, g) in [(node_q, dq), (node_k, dk), (node_v, dv)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, g.into_primitive().tensor());
            }
        }
    }
}

fn tensor<B: Backend>(p: FloatTensor<B>) -> Tensor<B, 4> {
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

fn fused_autodiff<B: Backend, C: CheckpointStrategy>(
    q: FloatTensor<Autodiff<B, C>>,
    k: FloatTensor<Autodiff<B, C>>,
    v: FloatTensor<Autodiff<B, C>>,
    bias: FloatTensor<Autodiff<B, C>>,
    scale: f64,
) -> FloatTensor<Autodiff<B, C>> {
    let forward = |q, k, v, bias| B::attention(q, k, v, None, Some(bias), options(scale));
    match FusedAttention
        .prepare::<C>([q.node.clone(), k.node.clone(), v.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let out = forward(
                q.primitive.clone(),
                k.primitive.clone(),
                v.primitive.clone(),
                bias.primitive.clone(),
            );
            let saved = Saved {
                q: q.primitive,
                k: k.primitive,
                v: v.primitive,
                bias: bias.primitive,
                out: out.clone(),
                scale,
            };
            prep.finish(saved, out)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(forward(q.primitive, k.primitive, v.primitive, bias.primitive))
        }
    }
}

/// The gradients of the queries, keys and values, the scores recomputed
/// block by block of [`BACKWARD_BLOCK_SCORES`].
///
/// With `P = softmax(scale * Q K^T + bias)` and `O = P V`:
/// `dV = P^T dO`, `dS = P * (dO V^T - rowsum(dO * O))`,
/// `dQ = scale * dS K`, `dK = scale * dS^T Q`.
///
/// # Shapes
/// as [`attention`]; `out` and `grad`: `[batch, kv_heads, rows, head_dim]`;
/// returns `dq` like `q`, `dk` and `dv` like `k`
pub fn attention_backward<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    bias: Tensor<B, 4>,
    out: Tensor<B, 4>,
    grad: Tensor<B, 4>,
    scale: f64,
) -> (Tensor<B, 4>, Tensor<B, 4>, Tensor<B, 4>) {
    let [_, kv_heads, rows, _] = q.dims();
    let keys = k.dims()[2];
    let block = (BACKWARD_BLOCK_SCORES / keys.max(1)).clamp(1, rows.max(1));
    let k_t = k.clone().swap_dims(2, 3);
    let v_t = v.swap_dims(2, 3);
    let mut dq = Vec::with_capacity(rows.div_ceil(block));
    let mut dk: Option<Tensor<B, 4>> = None;
    let mut dv: Option<Tensor<B, 4>> = None;
    for start in (0..rows).step_by(block) {
        let n = block.min(rows - start);
        let rows_of = |t: &Tensor<B, 4>| {
            if n == rows {
                t.clone()
            } else {
                t.clone().narrow(2, start, n)
            }
        };
        let (q_b, grad_b, out_b) = (rows_of(&q), rows_of(&grad), rows_of(&out));
        // The bias for every key head, materialised: a broadcast add would
        // take flex's slow strided path.
        let bias_b = rows_of(&bias);
        let bias_b = if kv_heads > 1 {
            Tensor::cat(vec![bias_b; kv_heads], 1)
        } else {
            bias_b
        };
        // [batch, kv_heads, n, keys]
        let p = softmax(q_b.clone().matmul(k_t.clone()).mul_scalar(scale) + bias_b, 3);
        let dv_b = p.clone().swap_dims(2, 3).matmul(grad_b.clone());
        let delta = (grad_b.clone() * out_b).sum_dim(3);
        let ds = (p * (grad_b.matmul(v_t.clone()) - delta)).mul_scalar(scale);
        dq.push(ds.clone().matmul(k.clone()));
        let dk_b = ds.swap_dims(2, 3).matmul(q_b);
        dk = Some(match dk {
            Some(acc) => acc + dk_b,
            None => dk_b,
        });
        dv = Some(match dv {
            Some(acc) => acc + dv_b,
            None => dv_b,
        });
    }
    match (dk, dv) {
        (Some(dk), Some(dv)) => (Tensor::cat(dq, 2), dk, dv),
        // No query rows: nothing flows back.
        _ => (q.zeros_like(), k.zeros_like(), k.zeros_like()),
    }
}

#[cfg(test)]
mod tests;
