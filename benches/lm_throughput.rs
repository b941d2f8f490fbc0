//! Throughput of the language model on the CPU (`flex`), against the same
//! work in PyTorch (`benches/lm_torch_reference.py`, threads matched):
//!
//! - `lm/prefill_128`: one 128-token prompt through SmolLM2-135M into a
//!   fresh KV cache, last-position logits (tokens per second);
//! - `lm/decode_32`: 32 greedy decode steps with the KV cache after a
//!   16-token prompt (tokens per second, the prefill not counted);
//! - `lm/lora_step_8x128`, `lm/lora_step_2x512`, `lm/lora_step_1x1024`: one
//!   LoRA training step (rank 8 on q_proj and v_proj, PEFT's default targets
//!   for Llama) on 1,024 tokens in rows of 128, 512 and 1,024: forward, mean
//!   token NLL, backward, Adam (tokens per second);
//! - `lm/attention_128`, `_512`, `_1024`: the attention core alone at
//!   SmolLM2-135M's shape (9 query heads in 3 groups, head dim 64), one causal
//!   row of that many tokens, forward and backward of the queries, keys and
//!   values (`rxalign_lm::attention`, the fused operation; tokens per second).
//!
//! Needs the converted model (see `.ci/run`):
//!
//! ```sh
//! RXALIGN_LM_DIR=~/.cache/rxalign/smollm2-135m-instruct cargo bench -p rxalign-lm --bench lm_throughput
//! ~/.cache/rxalign/lm-venv/bin/python benches/lm_torch_reference.py --model ~/.cache/rxalign/smollm2-135m-instruct
//! ```

use std::time::{Duration, Instant};

use burn::backend::flex::FlexDevice;
use burn::backend::{Autodiff, Flex};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rxalign_lm::attention::attention;
use rxalign_lm::generate::{GenerateConfig, Sampling, generate};
use rxalign_lm::{Adapter, KvCache, LoraConfig, load_pretrained};

#[path = "lm_common.rs"]
mod lm_common;

use lm_common::{join_cpu_pool, model_dir, threads};

/// Seeded token ids from the ordinary part of the vocabulary.
fn tokens(rng: &mut ChaCha8Rng, n: usize) -> Vec<u32> {
    (0..n).map(|_| rng.random_range(100..40_000)).collect()
}

fn bench(c: &mut Criterion) {
    join_cpu_pool();
    let Some(dir) = model_dir("lm_throughput") else {
        return;
    };
    eprintln!("lm_throughput: flex on {} thread(s)", threads());
    let model = load_pretrained::<Flex>(&dir, &FlexDevice).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut group = c.benchmark_group("lm");
    group.sample_size(10).warm_up_time(Duration::from_secs(1));

    let prompt = tokens(&mut rng, 128);
    group.throughput(Throughput::Elements(128));
    group.bench_function("prefill_128", |b| {
        b.iter(|| {
            let v: Vec<i64> = prompt.iter().map(|&t| t as i64).collect();
            let t = Tensor::<Flex, 2, Int>::from_data(TensorData::new(v, [1, 128]), &FlexDevice);
            let mut cache = KvCache::new(model.config.num_hidden_layers);
            let h = model.hidden(t, None, Some(&mut cache), Adapter::Off);
            model.head(h.narrow(1, 127, 1)).into_data()
        })
    });

    let short = vec![tokens(&mut rng, 16)];
    let config = GenerateConfig {
        max_new_tokens: 33,
        sampling: Sampling::Greedy,
        stop_tokens: vec![],
        pad_token: 0,
    };
    group.throughput(Throughput::Elements(32));
    group.bench_function("decode_32", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (_, stats) = generate(&model, &short, 1, &config, Adapter::Off, &mut rng).unwrap();
                assert_eq!(stats.decode_tokens, 32);
                total += stats.decode_time;
            }
            total
        })
    });

    type A = Autodiff<Flex>;
    let lora = LoraConfig {
        rank: 8,
        alpha: 16.0,
        dropout: 0.0,
        targets: vec!["q_proj".into(), "v_proj".into()],
    };
    let train = load_pretrained::<A>(&dir, &FlexDevice)
        .unwrap()
        .freeze()
        .add_adapter("bench", lora)
        .unwrap();
    let adapter = train.adapter("bench").unwrap();
    let mut optim = AdamConfig::new().init();
    // `optim.step` takes the model by value and gives it back.
    let mut slot = Some(train);
    // Seconds a step: ten samples of one step each, not criterion's
    // default ramp of 1 + 2 + ... + 10 steps.
    group.sampling_mode(SamplingMode::Flat);
    for (rows, seq) in [(8, 128), (2, 512), (1, 1024)] {
        let batch: Vec<i64> = tokens(&mut rng, rows * seq).into_iter().map(i64::from).collect();
        let score = vec![true; rows * seq];
        group.throughput(Throughput::Elements((rows * seq) as u64));
        group.bench_function(format!("lora_step_{rows}x{seq}"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let t = Tensor::<A, 2, Int>::from_data(
                        TensorData::new(batch.clone(), [rows, seq]),
                        &FlexDevice,
                    );
                    let m = slot.take().unwrap();
                    let loss = m.token_logprobs(t, None, &score, adapter).mean().neg();
                    let grads = GradientsParams::from_grads(loss.backward(), &m);
                    slot = Some(optim.step(1e-4, m, grads));
                }
                start.elapsed()
            })
        });
    }

    // The attention core alone: SmolLM2-135M's 3 key/value heads with 3
    // query heads each, head dim 64, one causal row.
    group.sampling_mode(SamplingMode::Auto);
    let (groups, rep, dim) = (3, 3, 64);
    for seq in [128, 512, 1024] {
        let normal = Distribution::Normal(0.0, 1.0);
        let q = Tensor::<Flex, 4>::random([1, groups, rep * seq, dim], normal, &FlexDevice);
        let k = Tensor::<Flex, 4>::random([1, groups, seq, dim], normal, &FlexDevice);
        let v = Tensor::<Flex, 4>::random([1, groups, seq, dim], normal, &FlexDevice);
        let w = Tensor::<Flex, 4>::random([1, groups, rep * seq, dim], normal, &FlexDevice);
        let causal: Vec<f32> = (0..rep * seq)
            .flat_map(|r| (0..seq).map(move |key| if key <= r % seq { 0.0 } else { -1.0e30 }))
            .collect();
        let bias = Tensor::<A, 4>::from_data(TensorData::new(causal, [1, 1, rep * seq, seq]), &FlexDevice);
        group.throughput(Throughput::Elements(seq as u64));
        group.bench_function(format!("attention_{seq}"), |b| {
            b.iter(|| {
                let track = |t: &Tensor<Flex, 4>| Tensor::<A, 4>::from_inner(t.clone()).require_grad();
                let (q, k, v) = (track(&q), track(&k), track(&v));
                let out = attention(
                    q.clone(),
                    k.clone(),
                    v.clone(),
                    bias.clone(),
                    1.0 / (dim as f64).sqrt(),
                );
                let grads = (out * Tensor::from_inner(w.clone())).sum().backward();
                [q.grad(&grads), k.grad(&grads), v.grad(&grads)].map(|g| g.unwrap().into_data())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
