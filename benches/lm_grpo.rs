//! One GRPO iteration of FLAME's list editor on the real
//! SmolLM2-135M-Instruct on the CPU (`flex`), against the same work in
//! PyTorch with transformers and peft (`benches/lm_grpo_torch.py`, threads
//! matched).
//!
//! The policy is `experiments/lm-smollm2.ron`'s: the `llama` family with
//! `model:` SmolLM2-135M-Instruct, its base frozen, LoRA adapters of rank 32
//! (alpha 64) on all seven projections (q, k, v, o, gate, up, down; FLAME's
//! release), FLAME's two prompts (which drugs to add, then which to remove,
//! both against the empty start), at most 3 lines of at most 8 tokens per
//! answer, notes cut to 60 characters; the synthetic clinic of 12 patients
//! (seed 0), its training visits; reward Jaccard plus refusal (0.2).
//!
//! - `lm_grpo/collect_2x4`: one rollout collection as GRPO does it
//!   ([`rxalign_train::grpo::collect`]): 2 visits x a group of 4, sampled at
//!   temperature 1, all 8 episodes in lockstep, one line per call per
//!   episode. Throughput: rollouts (episodes) per second; the generated
//!   tokens (every sampled token, the end-of-answer ones included; forced
//!   ends, which sample nothing, left out) are printed, so tokens per
//!   second = that count / the time.
//! - `lm_grpo/update_2x4`: one GRPO update ([`rxalign_train::grpo::update`],
//!   one PPO epoch) on those rollouts' samples (every generated line and
//!   end of answer is one sample): the reference forward (the model GRPO
//!   starts from, adapter on; a fresh adapter here, so the same numbers as
//!   the base, which the PyTorch replay reads with the adapters off; k3 KL,
//!   weight 0.02), the forward with LoRA, the PPO-clipped loss
//!   (clip 0.2) summed over each line's tokens, backward, Adam (lr 1e-5,
//!   gradients clipped to norm 1, as `train_grpo` builds it). Throughput:
//!   answer tokens scored per second; the context tokens the forwards read
//!   (each sample's prompt, earlier lines and line, without the padding)
//!   and the padded batch are printed.
//!
//! Every iteration of a benchmark does the same work: the collection starts
//! from the same seeded generator (the same visits and samples), the update
//! from the same model and a fresh optimizer.
//!
//! It writes the work (each answer's prompt tokens and the generated
//! lengths of its group; each sample's full token sequence, which tokens
//! are its answer, its advantage) to `target/lm-grpo-workload.json` (or
//! `$RXALIGN_LM_GRPO_WORKLOAD`) for the PyTorch replay:
//!
//! ```sh
//! RXALIGN_LM_DIR=~/.cache/rxalign/smollm2-135m-instruct cargo bench -p rxalign-train --bench lm_grpo
//! ~/.cache/rxalign/lm-venv/bin/python benches/lm_grpo_torch.py \
//!     --model ~/.cache/rxalign/smollm2-135m-instruct target/lm-grpo-workload.json
//! ```
//!
//! Without `RXALIGN_LM_DIR` it says so and skips.

use std::path::PathBuf;
use std::time::Duration;

use burn::backend::flex::FlexDevice;
use burn::grad_clipping::GradientClippingConfig;
use burn::module::AutodiffModule;
use burn::optim::AdamConfig;
use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use rxalign_core::{DrugSet, SplitConfig, seeded_rng};
use rxalign_data::synthetic::{SyntheticClinic, SyntheticConfig};
use rxalign_env::{RewardConfig, RewardTermSpec};
use rxalign_llama::{Line, LlamaPolicy, LlamaPolicyConfig};
use rxalign_lm::LoraConfig;
use rxalign_lm::lora::TARGETS;
use rxalign_policy::CpuTrainBackend;
use rxalign_policy::family::{Effect, PolicyFamily, State};
use rxalign_train::episodes::EpisodeResult;
use rxalign_train::grpo::{GrpoJob, GrpoSettings, Sample, advantages, collect, update};
use rxalign_train::observer::EvalPlan;

const VISITS: usize = 2;
const GROUP: usize = 4;
const LR: f64 = 1e-5;

#[path = "lm_common.rs"]
mod lm_common;

use lm_common::{join_cpu_pool, model_dir, threads};

fn workload_path() -> PathBuf {
    std::env::var_os("RXALIGN_LM_GRPO_WORKLOAD")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/lm-grpo-workload.json")
        })
}

fn bench(c: &mut Criterion) {
    join_cpu_pool();
    let Some(dir) = model_dir("lm_grpo") else { return };
    let cohort = SyntheticClinic::generate(&SyntheticConfig {
        patients: 12,
        seed: 0,
        ..SyntheticConfig::default()
    })
    .unwrap()
    .cohort;
    let split = cohort.split(&SplitConfig::with_seed(0));
    let family = LlamaPolicyConfig {
        model: Some(dir),
        lora: Some(LoraConfig {
            rank: 32,
            alpha: 64.0,
            dropout: 0.0,
            targets: TARGETS.map(String::from).to_vec(),
        }),
        max_lines: 3,
        max_line_tokens: 8,
        note_chars: 60,
        ..LlamaPolicyConfig::default()
    }
    .build(&cohort)
    .unwrap();
    let reward = RewardConfig {
        terms: vec![
            RewardTermSpec::new("jaccard", 1.0),
            RewardTermSpec::new("refusal", 0.2),
        ],
    }
    .init()
    .unwrap();
    let settings = GrpoSettings {
        iterations: 1,
        visits: VISITS,
        group: GROUP,
        lr: LR,
        warmup: 0,
        ppo_epochs: 1,
        ..GrpoSettings::default()
    };
    let drugs = cohort.drug_count();
    let empty = move |_: usize, _: &mut rxalign_core::Rng| Ok(DrugSet::empty(drugs));
    let no_eval = EvalPlan::default();
    let job = GrpoJob {
        cohort: &cohort,
        reward: &reward,
        train: &split.train,
        starts: &empty,
        settings: &settings,
        budget: family.config().budget(),
        seed: 0,
        checkpoint: None,
        eval: &no_eval,
    };
    let device = FlexDevice;
    let model = family
        .init::<CpuTrainBackend>(&mut seeded_rng(0, "lm_grpo init"), &device)
        .unwrap();
    let reference = model.valid();
    let fresh_rng = || seeded_rng(0, "lm_grpo collect");

    // The work, once, for the counts and the replay.
    let rollouts = collect(&family, &reference, &job, &mut fresh_rng(), &device).unwrap();
    let samples = advantages(&rollouts, &settings);
    let work = write_workload(&family, &cohort, &rollouts, &samples);
    println!(
        "lm_grpo: flex on {} thread(s); one collection = {} rollouts, {} generated tokens; one update = {} samples, {} answer tokens scored, {} context tokens read ({} with padding); workload in {}",
        threads(),
        rollouts.len(),
        work.generated,
        samples.len(),
        work.answer,
        work.context,
        work.padded,
        workload_path().display()
    );

    let mut group = c.benchmark_group("lm_grpo");
    // Ten samples of one iteration each, not criterion's default ramp of
    // 1 + 2 + ... + 10 iterations (55 updates of about a minute).
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(rollouts.len() as u64));
    group.bench_function(format!("collect_{VISITS}x{GROUP}"), |b| {
        b.iter_batched(
            fresh_rng,
            |mut rng| {
                let r = collect(&family, &reference, &job, &mut rng, &device).unwrap();
                assert_eq!(r.len(), rollouts.len());
                r
            },
            BatchSize::PerIteration,
        )
    });
    group.throughput(Throughput::Elements(work.answer as u64));
    group.bench_function(format!("update_{VISITS}x{GROUP}"), |b| {
        b.iter_batched(
            || {
                let optim = AdamConfig::new()
                    .with_grad_clipping(Some(GradientClippingConfig::Norm(settings.grad_norm as f32)))
                    .init();
                (model.clone(), optim)
            },
            |(m, mut optim)| {
                let (m, stats) =
                    update(&family, m, &mut optim, &reference, &samples, &job, LR, &device).unwrap();
                assert!(stats.loss.is_finite());
                m
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// The counts of one iteration's work.
struct Work {
    generated: usize,
    answer: usize,
    context: usize,
    padded: usize,
}

/// The effects of a rollout's steps before step `t`.
fn earlier(rollout: &EpisodeResult<Line>, t: usize) -> Vec<Effect> {
    rollout.steps[..t].iter().map(|s| s.effect.clone()).collect()
}

/// Writes the replay of `rollouts` and `samples` and returns its counts.
///
/// `answers`: per visit and prompt (add, then remove), the prompt's tokens
/// (the chat up to the assistant's turn) and, per rollout of the group, how
/// many tokens it sampled in that answer. `samples`: per update sample, the
/// full sequence (context then answer), the answer's length (its last
/// tokens), the advantage and the sampled log-probabilities.
fn write_workload(
    family: &LlamaPolicy,
    cohort: &rxalign_core::Cohort,
    rollouts: &[EpisodeResult<Line>],
    samples: &[Sample<Line>],
) -> Work {
    let mut answers = Vec::new();
    let mut generated = 0;
    for group in rollouts.chunks(GROUP) {
        // Per answer: the prompt, and each rollout's sampled tokens.
        let mut prompts: Vec<(String, Vec<u32>, Vec<usize>)> = Vec::new();
        for rollout in group {
            let mut answer = 0;
            let mut begins = true;
            for (t, step) in rollout.steps.iter().enumerate() {
                if begins {
                    let earlier = earlier(rollout, t);
                    let state = State {
                        visit: rollout.visit,
                        list: &step.list_before,
                        start: &rollout.start,
                        earlier: &earlier,
                    };
                    let prompt = family.context(cohort, &state).unwrap();
                    let kind = format!("{:?}", family.position(&state).kind);
                    if prompts.len() <= answer {
                        prompts.push((kind, prompt, Vec::new()));
                    } else {
                        assert_eq!(prompts[answer].1, prompt, "a group shares its prompts");
                    }
                    prompts[answer].2.push(0);
                    begins = false;
                }
                let n = step.acted.parts.len();
                if let Some(last) = prompts[answer].2.last_mut() {
                    *last += n;
                }
                generated += n;
                if matches!(step.effect, Effect::NextPrompt) {
                    answer += 1;
                    begins = true;
                }
            }
        }
        for (kind, prompt, lengths) in prompts {
            answers.push(serde_json::json!({
                "visit": group[0].visit,
                "prompt_kind": kind,
                "prompt": prompt,
                "new_tokens": lengths,
            }));
        }
    }
    let mut rows = Vec::new();
    let (mut answer, mut context, mut width) = (0, 0, 0);
    for s in samples {
        let state = State {
            visit: s.visit,
            list: &s.list,
            start: &s.start,
            earlier: &s.earlier,
        };
        let mut seq = family.context(cohort, &state).unwrap();
        seq.extend(&s.decision.tokens);
        answer += s.decision.tokens.len();
        context += seq.len();
        width = width.max(seq.len());
        rows.push(serde_json::json!({
            "tokens": seq,
            "answer": s.decision.tokens.len(),
            "advantage": s.advantage,
            "old_logp": s.old_parts,
        }));
    }
    let settings = GrpoSettings::default();
    let workload = serde_json::json!({
        "threads": threads(),
        "visits": VISITS,
        "group": GROUP,
        "rollouts": rollouts.len(),
        "lora": {"rank": 32, "alpha": 64.0,
                 "targets": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]},
        "temperature": settings.temperature,
        "kl": settings.kl,
        "clip": settings.clip,
        "lr": LR,
        "grad_norm": settings.grad_norm,
        "eos": family.eos(),
        "generated_tokens": generated,
        "answer_tokens": answer,
        "context_tokens": context,
        "answers": answers,
        "samples": rows,
    });
    let path = workload_path();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, workload.to_string()).unwrap();
    Work {
        generated,
        answer,
        context,
        padded: samples.len() * width,
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
