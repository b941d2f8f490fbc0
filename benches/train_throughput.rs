//! Training throughput of the shared trainer on the list policy
//! (`set_encoder`) on the CPU (`flex`): SFT in
//! visits per second (one epoch over 256 training visits: corrupted starts,
//! every state of their expert edit sequences, batches of 256 states, Adam)
//! and GRPO in rollouts per second (one iteration: 32 visits x 8 rollouts
//! sampled in lockstep from empty lists with a step budget of 30, then one
//! PPO-clipped update with the KL to the frozen reference, gradient
//! clipping, Adam). The policy is the one the quickstart trains: an
//! embedding bag of the visit's codes, previous drugs and note tokens, an
//! embedding bag of the list, one hidden layer of 128, masked action logits.
//!
//! It also writes the workload (every visit's feature indices and drugs) to
//! `target/train-throughput-workload.json` for the PyTorch reference of the
//! same policy and updates, `benches/torch_reference.py`:
//!
//! ```sh
//! cargo bench -p rxalign-train --bench train_throughput
//! python3 benches/torch_reference.py target/train-throughput-workload.json
//! ```

use std::time::Duration;

use burn::backend::flex::FlexDevice;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rxalign_core::{DrugSet, SplitConfig, seeded_rng};
use rxalign_data::synthetic::{SyntheticClinic, SyntheticConfig};
use rxalign_env::{RewardConfig, RewardTermSpec};
use rxalign_policy::CpuTrainBackend;
use rxalign_policy::family::PolicyFamily;
use rxalign_policy::features::VisitFeatures;
use rxalign_set_encoder::SetEncoderConfig;
use rxalign_set_encoder::notes::NoteTokenizer;
use rxalign_train::grpo::{GrpoJob, GrpoSettings, train_grpo};
use rxalign_train::observer::{EvalPlan, Silent};
use rxalign_train::sft::{SftJob, SftSettings, train_sft};

/// SFT in the benchmark trains on corrupted ground truths only.
fn no_run_starts(_: usize, _: &mut rxalign_core::Rng) -> Result<DrugSet, String> {
    Err("corrupted starts only".into())
}

const SFT_VISITS: usize = 256;
const HIDDEN: usize = 128;
const BUDGET: usize = 30;

fn bench(c: &mut Criterion) {
    // Train on this thread as one of flex's threads, as `rxalign run` does.
    rxalign_policy::device::join_cpu_pool().unwrap();
    let clinic = SyntheticClinic::generate(&SyntheticConfig {
        patients: 1500,
        ..SyntheticConfig::default()
    })
    .unwrap();
    let cohort = clinic.cohort;
    let split = cohort.split(&SplitConfig::with_seed(0));
    let notes: Vec<&str> = split
        .train
        .iter()
        .filter_map(|&v| cohort.visits[v].note.as_deref())
        .collect();
    let tokenizer = NoteTokenizer::train(notes.into_iter(), 2000, 2).unwrap();
    let features = tokenizer.visit_features(&cohort).unwrap();
    let train: Vec<usize> = split.train.iter().copied().take(SFT_VISITS).collect();
    write_workload(&cohort, &features, &train);

    let threads = rayon_threads();
    println!(
        "train_throughput: flex on {threads} thread(s); {} features, {} drugs",
        features.size(),
        cohort.drug_count()
    );
    let mut group = c.benchmark_group("train_throughput");
    group.sample_size(10).measurement_time(Duration::from_secs(20));

    let family = SetEncoderConfig {
        hidden: HIDDEN,
        budget: BUDGET,
        ..SetEncoderConfig::default()
    }
    .build(&features)
    .unwrap();
    let reward = RewardConfig {
        terms: vec![RewardTermSpec::new("jaccard", 1.0)],
    }
    .init()
    .unwrap();
    let no_eval = EvalPlan::default();
    let sft = SftSettings {
        epochs: 1,
        batch_size: 256,
        ..SftSettings::default()
    };
    let sft_job = SftJob {
        cohort: &cohort,
        reward: &reward,
        train: &train,
        settings: &sft,
        starts: &no_run_starts,
        budget: BUDGET,
        seed: 0,
        checkpoint: None,
        eval: &no_eval,
    };
    group.throughput(Throughput::Elements(train.len() as u64));
    group.bench_function("sft_visits", |b| {
        b.iter(|| train_sft::<_, CpuTrainBackend>(&family, &sft_job, &mut Silent, &FlexDevice).unwrap())
    });

    let grpo = GrpoSettings {
        iterations: 1,
        visits: 32,
        group: 8,
        warmup: 0,
        ..GrpoSettings::default()
    };
    let drugs = cohort.drug_count();
    let empty = move |_: usize, _: &mut rxalign_core::Rng| Ok(DrugSet::empty(drugs));
    let grpo_job = GrpoJob {
        cohort: &cohort,
        reward: &reward,
        train: &split.train,
        starts: &empty,
        settings: &grpo,
        budget: BUDGET,
        seed: 0,
        checkpoint: None,
        eval: &no_eval,
    };
    group.throughput(Throughput::Elements((grpo.visits * grpo.group) as u64));
    group.bench_function("grpo_rollouts", |b| {
        b.iter_batched(
            || {
                // The set encoder's init draws from the generator only.
                family
                    .init::<CpuTrainBackend>(&mut seeded_rng(0, "bench"), &FlexDevice)
                    .unwrap()
            },
            |policy| {
                train_grpo::<_, CpuTrainBackend>(&family, policy, &grpo_job, &mut Silent, &FlexDevice)
                    .unwrap()
            },
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The visits the reference trains on: feature indices and drugs of the
/// SFT visits and of every training visit (GRPO samples from them).
fn write_workload(cohort: &rxalign_core::Cohort, features: &VisitFeatures, sft: &[usize]) {
    let visit = |v: usize| {
        serde_json::json!({
            "bag": features.bag(cohort, v),
            "drugs": cohort.visits[v].drugs.iter().collect::<Vec<_>>(),
        })
    };
    let split = cohort.split(&SplitConfig::with_seed(0));
    let workload = serde_json::json!({
        "features": features.size(),
        "drugs": cohort.drug_count(),
        "hidden": HIDDEN,
        "budget": BUDGET,
        "threads": rayon_threads(),
        "sft_visits": sft.iter().map(|&v| visit(v)).collect::<Vec<_>>(),
        "grpo_visits": split.train.iter().map(|&v| visit(v)).collect::<Vec<_>>(),
    });
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("train-throughput-workload.json"), workload.to_string()).unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
