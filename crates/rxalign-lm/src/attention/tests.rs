//! The fused attention against the composition it replaces (scores, bias,
//! softmax, weighted values, each its own op with its own backward), on
//! `flex`: forward and the gradients of queries, keys and values, with
//! grouped query heads, causal masks and left padding, short rows (one
//! backward block, flex's one-tile kernel) and long ones (several blocks,
//! flex's flash kernel).

use burn::backend::flex::FlexDevice;
use burn::backend::{Autodiff, Flex};
use burn::tensor::activation::softmax;
use burn::tensor::{Distribution, Tensor, TensorData};

use super::*;

type A = Autodiff<Flex>;

const MASKED: f32 = -1.0e30;

/// Today's composition, the reference.
fn composed<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    bias: Tensor<B, 4>,
    scale: f64,
) -> Tensor<B, 4> {
    softmax(q.matmul(k.swap_dims(2, 3)).mul_scalar(scale) + bias, 3).matmul(v)
}

/// Causal attention over `seq` new queries after `past` cached keys, each
/// batch row left-padded by `pads[row]` keys, the rows of `rep` query heads
/// stacked per key head.
///
/// # Shapes
/// `[batch, 1, rep * seq, past + seq]`
fn bias(pads: &[usize], rep: usize, seq: usize, past: usize) -> Tensor<Flex, 4> {
    let keys = past + seq;
    let mut data = Vec::with_capacity(pads.len() * rep * seq * keys);
    for &pad in pads {
        for _ in 0..rep {
            for i in 0..seq {
                data.extend((0..keys).map(|k| if k >= pad && k <= past + i { 0.0 } else { MASKED }));
            }
        }
    }
    Tensor::from_data(
        TensorData::new(data, [pads.len(), 1, rep * seq, keys]),
        &FlexDevice,
    )
}

struct Case {
    pads: Vec<usize>,
    kv_heads: usize,
    rep: usize,
    seq: usize,
    past: usize,
    head_dim: usize,
}

impl Case {
    fn inputs(&self) -> [Tensor<Flex, 4>; 4] {
        let b = self.pads.len();
        let keys = self.past + self.seq;
        let normal = Distribution::Normal(0.0, 1.0);
        let rows = self.rep * self.seq;
        [
            Tensor::random([b, self.kv_heads, rows, self.head_dim], normal, &FlexDevice),
            Tensor::random([b, self.kv_heads, keys, self.head_dim], normal, &FlexDevice),
            Tensor::random([b, self.kv_heads, keys, self.head_dim], normal, &FlexDevice),
            Tensor::random([b, self.kv_heads, rows, self.head_dim], normal, &FlexDevice),
        ]
    }

    /// The largest difference between fused and composed, forward and the
    /// three gradients of `sum(out * w)`.
    fn differences(&self) -> [f32; 4] {
        <Flex as Backend>::seed(&FlexDevice, 7);
        let [q, k, v, w] = self.inputs();
        let bias = bias(&self.pads, self.rep, self.seq, self.past);
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let run = |fused: bool| {
            let track = |t: &Tensor<Flex, 4>| Tensor::<A, 4>::from_inner(t.clone()).require_grad();
            let (q, k, v) = (track(&q), track(&k), track(&v));
            let b = Tensor::<A, 4>::from_inner(bias.clone());
            let out = if fused {
                attention(q.clone(), k.clone(), v.clone(), b, scale)
            } else {
                composed(q.clone(), k.clone(), v.clone(), b, scale)
            };
            let grads = (out.clone() * Tensor::from_inner(w.clone())).sum().backward();
            [
                out.inner(),
                q.grad(&grads).unwrap(),
                k.grad(&grads).unwrap(),
                v.grad(&grads).unwrap(),
            ]
        };
        let (fused, reference) = (run(true), run(false));
        let mut out = [0.0; 4];
        for (i, (a, b)) in fused.into_iter().zip(reference).enumerate() {
            out[i] = (a - b).abs().max().into_scalar();
        }
        out
    }
}

/// Fails unless fused and composed agree within `tolerance`, forward and
/// every gradient.
fn assert_agree(case: &Case, tolerance: f32) {
    for (what, d) in ["output", "dq", "dk", "dv"].into_iter().zip(case.differences()) {
        assert!(d < tolerance, "{what}: fused and composed differ by {d}");
    }
}

#[test]
fn training_takes_the_fused_operation_and_inference_the_backends_kernel() {
    let t = || Tensor::<A, 4>::zeros([1, 1, 2, 4], &FlexDevice);
    let inputs = Inputs {
        q: t(),
        k: t(),
        v: t(),
        bias: Tensor::zeros([1, 1, 2, 2], &FlexDevice),
    };
    assert!(
        fused(inputs, 0.5).is_ok(),
        "Autodiff<Flex> must be routed to FusedAttention"
    );
    let t = || Tensor::<Flex, 4>::zeros([1, 1, 2, 4], &FlexDevice);
    let inputs = Inputs {
        q: t(),
        k: t(),
        v: t(),
        bias: Tensor::zeros([1, 1, 2, 2], &FlexDevice),
    };
    assert!(fused(inputs, 0.5).is_err(), "Flex alone has no autodiff route");
}

#[test]
fn fused_equals_composed_with_grouped_heads_causal_mask_and_left_padding() {
    let case = Case {
        pads: vec![0, 3, 7],
        kv_heads: 2,
        rep: 3,
        seq: 12,
        past: 0,
        head_dim: 8,
    };
    assert_agree(&case, 1e-5);
}

#[test]
fn fused_equals_composed_after_cached_keys() {
    let case = Case {
        pads: vec![2, 0],
        kv_heads: 1,
        rep: 2,
        seq: 5,
        past: 9,
        head_dim: 16,
    };
    assert_agree(&case, 1e-5);
}

#[test]
fn fused_equals_composed_on_long_rows_in_several_backward_blocks() {
    // rows 2 x 400 = 800 and 400 keys: flex's flash kernel (more than 256 Ki
    // scores a head) and backward blocks of 327 rows, the last one short.
    let case = Case {
        pads: vec![0, 40],
        kv_heads: 2,
        rep: 2,
        seq: 400,
        past: 0,
        head_dim: 16,
    };
    assert!(case.rep * case.seq * (case.past + case.seq) > 256 * 1024);
    assert!(BACKWARD_BLOCK_SCORES / (case.past + case.seq) < case.rep * case.seq);
    assert_agree(&case, 1e-4);
}
