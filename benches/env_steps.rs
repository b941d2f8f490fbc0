//! Decision-process steps per second with the Jaccard, DDI-rate and
//! overprescription terms on, at 151 drugs (the size of the ATC-3 vocabulary
//! of GAMENet and FLAME) and at 1,000 drugs. One step is an add or remove
//! with its incremental statistics, potentials and per-term breakdown.
//!
//! Run: `cargo bench -p rxalign-env --bench env_steps`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::Rng as _;
use rxalign_core::{Action, DdiGraph, DrugSet, seeded_rng};
use rxalign_env::{Episode, RewardConfig, RewardTermSpec};

const STEPS: usize = 4096;

fn bench(c: &mut Criterion) {
    let reward = RewardConfig {
        terms: vec![
            RewardTermSpec::new("jaccard", 1.0),
            RewardTermSpec::new("ddi_rate", 0.2),
            RewardTermSpec::new("overprescription", 0.5),
        ],
    }
    .init()
    .unwrap();
    let mut group = c.benchmark_group("env_steps");
    group.throughput(Throughput::Elements(STEPS as u64));
    for drugs in [151usize, 1000] {
        let mut rng = seeded_rng(0, "bench");
        // About 3% of pairs interact, as in the TWOSIDES ATC-3 graph.
        let edges: Vec<(usize, usize)> = (0..drugs * drugs * 3 / 200)
            .map(|_| (rng.random_range(0..drugs), rng.random_range(0..drugs)))
            .filter(|(a, b)| a != b)
            .collect();
        let ddi = DdiGraph::from_pairs(drugs, edges, "random").unwrap();
        let truth = DrugSet::from_indices(drugs, (0..20).map(|_| rng.random_range(0..drugs)));
        // A fixed sequence of drugs to toggle: adds and removes in about equal
        // numbers, keeping lists of realistic size (tens of drugs).
        let toggles: Vec<usize> = (0..STEPS).map(|_| rng.random_range(0..drugs.min(60))).collect();
        group.bench_with_input(BenchmarkId::from_parameter(drugs), &drugs, |b, _| {
            b.iter(|| {
                let mut ep = Episode::new(&reward, &truth, &ddi, DrugSet::empty(drugs), usize::MAX);
                let mut total = 0.0;
                for &d in &toggles {
                    let action = if ep.list().contains(d) {
                        Action::Remove(d)
                    } else {
                        Action::Add(d)
                    };
                    total += ep.step(action).unwrap().total;
                }
                std::hint::black_box(total)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
