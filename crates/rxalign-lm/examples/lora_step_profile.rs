//! Where the time of one LoRA training step goes: the step of
//! `benches/lm_throughput.rs` (`lm/lora_step_8x128`: SmolLM2-135M, LoRA
//! rank 8 on q_proj and v_proj, 8 x 128 tokens, mean token NLL, backward,
//! Adam), timed in segments on the CPU (`flex`, autodiff).
//!
//! ```sh
//! RXALIGN_LM_DIR=~/.cache/rxalign/smollm2-135m-instruct \
//!   cargo run --release -p rxalign-lm --example lora_step_profile [REPS]
//! ```
//!
//! Every segment is timed from its inputs on the host to its results
//! computed (`B::sync` after it; flex runs eagerly, so this is its wall
//! time), as the median of REPS runs (default 3) after one warm-up:
//!
//! - the whole step, split into the forward to the loss, the backward and
//!   Adam's update;
//! - the parts, each forward and backward on its own graph with inputs that
//!   require gradients as inside the step: the output head (the tied
//!   49,152 x 576 embedding as a matmul), the log-softmax and the gather of
//!   the targets' log-probabilities, the embedding lookup, and per decoder
//!   layer: the MLP's projections (gate, up, down with SiLU and product),
//!   the attention's projections (q, k, v, o, with the LoRA pairs on q and
//!   v), the attention core (rotary encoding, scores, softmax, weighted
//!   values), the two RMSNorms and residual additions;
//! - the decoder layers as a whole: the step's forward minus that of the
//!   same model with its layers removed, and the step's backward minus the
//!   head's and the log-softmax's.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use burn::backend::flex::FlexDevice;
use burn::backend::{Autodiff, Flex};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::activation::{log_softmax, silu};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rxalign_lm::attention::attention;
use rxalign_lm::{Llama, LoraConfig, load_pretrained};

type A = Autodiff<Flex>;
const BATCH: usize = 8;
const SEQ: usize = 128;

fn sync() {
    <A as Backend>::sync(&FlexDevice).unwrap();
}

/// The median forward and backward times of a graph built by `forward`
/// from fresh inputs (made by `inputs`, not timed) to a scalar.
fn fwd_bwd<I>(
    reps: usize,
    inputs: impl Fn() -> I,
    forward: impl Fn(I) -> Tensor<A, 1>,
) -> (Duration, Duration) {
    let mut f = Vec::new();
    let mut b = Vec::new();
    for rep in 0..=reps {
        let i = inputs();
        sync();
        let t = Instant::now();
        let loss = forward(i);
        sync();
        let t_f = t.elapsed();
        let t = Instant::now();
        let grads = loss.backward();
        sync();
        let t_b = t.elapsed();
        drop(grads);
        if rep > 0 {
            f.push(t_f);
            b.push(t_b);
        }
    }
    f.sort();
    b.sort();
    (f[reps / 2], b[reps / 2])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Table {
    rows: Vec<(String, f64, f64, f64)>,
}

impl Table {
    fn row(&mut self, name: &str, (f, b): (Duration, Duration), times: f64) {
        self.rows.push((name.into(), ms(f) * times, ms(b) * times, times));
    }
}

fn random(shape: [usize; 3]) -> Tensor<A, 3> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &FlexDevice).require_grad()
}

fn main() {
    let Some(dir) = std::env::var_os("RXALIGN_LM_DIR").map(PathBuf::from) else {
        eprintln!("RXALIGN_LM_DIR must name the converted SmolLM2 folder (see .ci/run)");
        std::process::exit(2);
    };
    let reps: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
    println!("LoRA step profile: batch {BATCH} x {SEQ}, flex, {threads} thread(s), median of {reps}");

    let lora = LoraConfig {
        rank: 8,
        alpha: 16.0,
        dropout: 0.0,
        targets: vec!["q_proj".into(), "v_proj".into()],
    };
    let model: Llama<A> = load_pretrained::<A>(&dir, &FlexDevice)
        .unwrap()
        .freeze()
        .add_adapter("bench", lora)
        .unwrap();
    let adapter = model.adapter("bench").unwrap();
    let config = model.config.clone();
    let (layers, d) = (config.num_hidden_layers, config.hidden_size);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let ids: Vec<i64> = (0..BATCH * SEQ).map(|_| rng.random_range(100..40_000)).collect();
    let tokens = || Tensor::<A, 2, Int>::from_data(TensorData::new(ids.clone(), [BATCH, SEQ]), &FlexDevice);
    let score = vec![true; BATCH * SEQ];
    let loss_of = |m: &Llama<A>| m.token_logprobs(tokens(), None, &score, adapter).mean().neg();

    // The whole step, in three segments.
    let mut optim = AdamConfig::new().init();
    let mut slot = Some(model);
    let (mut f, mut b, mut o) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..=reps {
        let m = slot.take().unwrap();
        sync();
        let t = Instant::now();
        let loss = loss_of(&m);
        sync();
        let t_f = t.elapsed();
        let t = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        sync();
        let t_b = t.elapsed();
        let t = Instant::now();
        slot = Some(optim.step(1e-4, m, grads));
        sync();
        let t_o = t.elapsed();
        if rep > 0 {
            f.push(t_f);
            b.push(t_b);
            o.push(t_o);
        }
    }
    for v in [&mut f, &mut b, &mut o] {
        v.sort();
    }
    let (step_f, step_b, step_o) = (f[reps / 2], b[reps / 2], o[reps / 2]);
    let model = slot.take().unwrap();

    let mut table = Table { rows: Vec::new() };
    // Outside the layers.
    let vocab = config.vocab_size;
    table.row(
        "embedding lookup (frozen)",
        fwd_bwd(reps, tokens, |t| model.model.embed_tokens.forward(t).sum()),
        1.0,
    );
    table.row(
        "output head: [1024 x 576] x [576 x 49152]",
        fwd_bwd(reps, || random([BATCH, SEQ, d]), |h| model.head(h).sum()),
        1.0,
    );
    let next = || tokens().narrow(1, 1, SEQ - 1).unsqueeze_dim::<3>(2);
    table.row(
        "log-softmax over 49,152 + gather + mean",
        fwd_bwd(
            reps,
            || (random([BATCH, SEQ - 1, vocab]), next()),
            |(logits, next)| log_softmax(logits, 2).gather(2, next).mean().neg(),
        ),
        1.0,
    );
    table.row(
        "final RMSNorm",
        fwd_bwd(
            reps,
            || random([BATCH, SEQ, d]),
            |x| model.model.norm.forward(x).sum(),
        ),
        1.0,
    );
    // One decoder layer's parts, times the number of layers.
    let l = &model.model.layers[0];
    let n = layers as f64;
    table.row(
        "MLP: gate, up, down projections, SiLU, product",
        fwd_bwd(
            reps,
            || random([BATCH, SEQ, d]),
            |x| {
                let g = silu(l.mlp.gate_proj.forward(x.clone(), adapter));
                l.mlp
                    .down_proj
                    .forward(g * l.mlp.up_proj.forward(x, adapter), adapter)
                    .sum()
            },
        ),
        n,
    );
    let attn = &l.self_attn;
    let (h, kv, hd) = (attn.heads, attn.kv_heads, attn.head_dim);
    table.row(
        "attention projections q, k, v, o (+ LoRA on q, v)",
        fwd_bwd(
            reps,
            || random([BATCH, SEQ, d]),
            |x| {
                let q = attn.q_proj.forward(x.clone(), adapter);
                let k = attn.k_proj.forward(x.clone(), adapter);
                let v = attn.v_proj.forward(x.clone(), adapter);
                let o = attn.o_proj.forward(x, adapter);
                q.sum() + k.sum() + v.sum() + o.sum()
            },
        ),
        n,
    );
    // The core as the model computes it (see Attention::forward): rotary
    // tables as wide as the heads, the half turn as one matrix product,
    // then the fused attention operation.
    let table_of = |n: usize| {
        Tensor::<A, 3>::random(
            [BATCH, SEQ, n * hd],
            Distribution::Uniform(-1.0, 1.0),
            &FlexDevice,
        )
    };
    let (cos_q, sin_q, cos_k, sin_k) = (table_of(h), table_of(h), table_of(kv), table_of(kv));
    let half = hd / 2;
    let mut turn = vec![0.0f32; hd * hd];
    for i in 0..half {
        turn[(i + half) * hd + i] = -1.0;
        turn[i * hd + i + half] = 1.0;
    }
    let half_turn = Tensor::<A, 2>::from_data(TensorData::new(turn, [hd, hd]), &FlexDevice);
    let rope = |x: Tensor<A, 3>, cos: &Tensor<A, 3>, sin: &Tensor<A, 3>| {
        let width = x.dims()[2];
        let turned = x
            .clone()
            .reshape([BATCH * SEQ * (width / hd), hd])
            .matmul(half_turn.clone())
            .reshape([BATCH, SEQ, width]);
        x * cos.clone() + turned * sin.clone()
    };
    let rep = h / kv;
    let mut bias = vec![0.0f32; rep * SEQ * SEQ];
    for r in 0..rep * SEQ {
        for j in r % SEQ + 1..SEQ {
            bias[r * SEQ + j] = -1.0e30;
        }
    }
    let bias = Tensor::<A, 4>::from_data(TensorData::new(bias, [1, 1, rep * SEQ, SEQ]), &FlexDevice)
        .repeat_dim(0, BATCH);
    table.row(
        "attention core: rotary, fused attention (scores, softmax, PV)",
        fwd_bwd(
            reps,
            || {
                (
                    random([BATCH, SEQ, h * hd]),
                    random([BATCH, SEQ, kv * hd]),
                    random([BATCH, SEQ, kv * hd]),
                )
            },
            |(q, k, v)| {
                let heads = |t: Tensor<A, 3>, n: usize| t.reshape([BATCH, SEQ, n, hd]).swap_dims(1, 2);
                let (q, k) = (rope(q, &cos_q, &sin_q), rope(k, &cos_k, &sin_k));
                let (q, k, v) = (heads(q, h), heads(k, kv), heads(v, kv));
                let q = q.reshape([BATCH, kv, rep * SEQ, hd]);
                attention(q, k, v, bias.clone(), 1.0 / (hd as f64).sqrt())
                    .reshape([BATCH, h, SEQ, hd])
                    .swap_dims(1, 2)
                    .reshape([BATCH, SEQ, h * hd])
                    .sum()
            },
        ),
        n,
    );
    table.row(
        "two RMSNorms and residual additions",
        fwd_bwd(
            reps,
            || (random([BATCH, SEQ, d]), random([BATCH, SEQ, d])),
            |(x, a)| {
                let y = l.input_layernorm.forward(x.clone()) + a.clone();
                let x = x + y;
                let z = l.post_attention_layernorm.forward(x.clone()) + a;
                (x + z).sum()
            },
        ),
        n,
    );
    // The layers as a whole: the step's forward minus the forward of the
    // same model without layers; the step's backward minus the head's and
    // the log-softmax's (the model without layers has nothing to train, so
    // its own backward is empty).
    let mut bare = model.clone();
    bare.model.layers.clear();
    let (bare_f, _) = fwd_bwd(reps, || (), |()| loss_of(&bare));
    let outside_b: f64 = table.rows[1].2 + table.rows[2].2;
    let layers_f = ms(step_f) - ms(bare_f);
    let layers_b = ms(step_b) - outside_b;

    let total = ms(step_f) + ms(step_b) + ms(step_o);
    println!(
        "\nwhole step: {total:.0} ms = forward {:.0} + backward {:.0} + Adam {:.1}",
        ms(step_f),
        ms(step_b),
        ms(step_o)
    );
    println!(
        "the {layers} decoder layers: forward {layers_f:.0} ms (the step's minus the model's without layers, {:.0} ms) + backward {layers_b:.0} ms (the step's minus the head's and the log-softmax's): {:.0}% of the step",
        ms(bare_f),
        100.0 * (layers_f + layers_b) / total
    );
    println!("\n| part | x | forward ms | backward ms | share of the step |");
    println!("|---|---|---|---|---|");
    let mut covered = 0.0;
    for (name, f, b, times) in &table.rows {
        if !name.contains("flattened") {
            covered += f + b;
        }
        println!(
            "| {name} | {times} | {f:.0} | {b:.0} | {:.0}% |",
            100.0 * (f + b) / total
        );
    }
    println!(
        "| Adam (adapters only) | 1 | {:.1} | | {:.1}% |",
        ms(step_o),
        100.0 * ms(step_o) / total
    );
    covered += ms(step_o);
    println!(
        "\nthe parts add up to {covered:.0} ms, {:.0}% of the step",
        100.0 * covered / total
    );
}
