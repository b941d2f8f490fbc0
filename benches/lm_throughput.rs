//! Throughput of the language model on the CPU (`flex`), against the same
//! work in PyTorch (`benches/lm_torch_reference.py`, threads matched):
//!
//! - `lm/prefill_128`: one 128-token prompt through SmolLM2-135M into a
//!   fresh KV cache, last-position logits (tokens per second);
//! - `lm/decode_32`: 32 greedy decode steps with the KV cache after a
//!   16-token prompt (tokens per second, the prefill not counted);
//! - `lm/lora_step_8x128`: one LoRA training step (rank 8 on q_proj and
//!   v_proj, PEFT's default targets for Llama): forward of 8 x 128 tokens,
//!   mean token NLL, backward, Adam (tokens per second).
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
use burn::tensor::{Int, Tensor, TensorData};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rxalign_lm::generate::{GenerateConfig, Sampling, generate};
use rxalign_lm::{Adapter, KvCache, LoraConfig, load_pretrained};

#[path = "lm_common.rs"]
mod lm_common;

use lm_common::{model_dir, threads};

/// Seeded token ids from the ordinary part of the vocabulary.
fn tokens(rng: &mut ChaCha8Rng, n: usize) -> Vec<u32> {
    (0..n).map(|_| rng.random_range(100..40_000)).collect()
}

fn bench(c: &mut Criterion) {
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
    let batch: Vec<i64> = tokens(&mut rng, 8 * 128).into_iter().map(i64::from).collect();
    let score = vec![true; 8 * 128];
    let mut optim = AdamConfig::new().init();
    // `optim.step` takes the model by value and gives it back.
    let mut slot = Some(train);
    group.throughput(Throughput::Elements(8 * 128));
    group.bench_function("lora_step_8x128", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let t = Tensor::<A, 2, Int>::from_data(TensorData::new(batch.clone(), [8, 128]), &FlexDevice);
                let m = slot.take().unwrap();
                let loss = m.token_logprobs(t, None, &score, adapter).mean().neg();
                let grads = GradientsParams::from_grads(loss.backward(), &m);
                slot = Some(optim.step(1e-4, m, grads));
            }
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
