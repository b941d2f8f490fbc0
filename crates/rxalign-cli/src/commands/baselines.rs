//! `rxalign baseline` and `rxalign baselines` (the main job for now).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use rxalign_core::metrics::MetricReport;
use rxalign_core::run::{MetricsRecord, RunFolder, Summary};
use rxalign_core::{Cohort, DrugSet, Predictions, SplitConfig, SplitName};
use rxalign_data::SyntheticConfig;
use rxalign_data::synthetic::REFERENCES;
use rxalign_env::baseline::{self, Recommender};
use rxalign_env::trajectory::replay_edits;
use rxalign_env::{Episode, Reward, RewardConfig, RewardTermSpec};
use serde::Serialize;
use serde_json::Value;

use super::{DataArgs, GROUND_TRUTH, SplitArgs, load, load_folder, truth_report};
use crate::table;

#[derive(Debug, Args)]
pub struct BaselineArgs {
    /// Which baseline: most_frequent, cooccurrence or everything_indicated.
    kind: String,
    /// The dataset folder.
    #[arg(long)]
    data: PathBuf,
    /// Where to write the predictions (JSONL).
    #[arg(long)]
    out: PathBuf,
    /// Which visits to predict (the baseline always fits on the train split).
    #[arg(long, default_value = "all")]
    split: SplitName,
    #[command(flatten)]
    split_seed: SplitArgs,
}

pub fn run_one(a: &BaselineArgs) -> anyhow::Result<()> {
    let cohort = load_folder(&a.data)?;
    let split = a.split_seed.split(&cohort);
    let mut r = baseline::registry().build(&a.kind, &Value::Null, &())?;
    r.fit(&cohort, &split.train);
    let visits = split.indices(a.split, cohort.visits.len());
    let records = baseline::records(r.as_ref(), &cohort, &visits);
    Predictions::write(&a.out, &records)?;
    println!(
        "wrote {} predictions of {} (fit on {} train visits; {}) to {}",
        records.len(),
        a.kind,
        split.train.len(),
        a.split_seed.describe(),
        a.out.display()
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct BaselinesArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    split: SplitArgs,
    /// Folder of run folders; this job writes OUT/baselines/<run>.
    #[arg(long, default_value = "runs")]
    out: PathBuf,
    /// Test visits per method whose step-by-step trajectory is kept.
    #[arg(long, default_value_t = 5)]
    trajectories: usize,
}

/// Everything that decides the numbers of a `baselines` run, written to
/// `resolved.ron`.
#[derive(Debug, Serialize)]
struct ResolvedBaselines {
    job: &'static str,
    rxalign_version: &'static str,
    data: ResolvedData,
    split: SplitConfig,
    /// The potential that scores each step of the kept trajectories.
    reward: RewardConfig,
    baselines: Vec<&'static str>,
    trajectories: usize,
}

#[derive(Debug, Serialize)]
enum ResolvedData {
    Synthetic(SyntheticConfig),
    Folder(PathBuf),
}

/// The potential of the design's example: Jaccard, DDI rate and
/// overprescription.
fn default_reward() -> RewardConfig {
    RewardConfig {
        terms: vec![
            RewardTermSpec::new("jaccard", 1.0),
            RewardTermSpec::new("ddi_rate", 0.2),
            RewardTermSpec::new("overprescription", 0.5),
        ],
    }
}

struct Method {
    name: String,
    lists: Vec<(usize, DrugSet)>,
    predictions: Predictions,
}

pub fn run_all(a: &BaselinesArgs) -> anyhow::Result<()> {
    let (cohort, clinic) = load(&a.data)?;
    let split = a.split.split(&cohort);
    let reward_config = default_reward();
    let reward = reward_config.init()?;
    let resolved = ResolvedBaselines {
        job: "baselines",
        rxalign_version: env!("CARGO_PKG_VERSION"),
        data: match (&clinic, &a.data.data) {
            (Some(c), _) => ResolvedData::Synthetic(c.config.clone()),
            (None, Some(dir)) => ResolvedData::Folder(dir.clone()),
            (None, None) => unreachable!("without --data the synthetic clinic is generated"),
        },
        split: split.config.clone(),
        reward: reward_config,
        baselines: baseline::BUILTIN.to_vec(),
        trajectories: a.trajectories,
    };
    let run_name = match &clinic {
        Some(c) => format!(
            "synthetic-p{}-seed{}-split{}",
            c.config.patients, c.config.seed, a.split.split_seed
        ),
        None => format!("{}-split{}", cohort.name, a.split.split_seed),
    };
    let root = a.out.join("baselines").join(run_name);
    if root.exists() {
        std::fs::remove_dir_all(&root)
            .with_context(|| format!("clearing the earlier run {}", root.display()))?;
    }
    let run = RunFolder::create(&root)?;
    run.write_resolved(&ron::ser::to_string_pretty(
        &resolved,
        ron::ser::PrettyConfig::default(),
    )?)?;

    let evaluated: Vec<usize> = split.val.iter().chain(&split.test).copied().collect();
    let mut methods = Vec::new();
    if let Some(c) = &clinic {
        for ((name, _), lists) in REFERENCES.iter().zip(c.reference_lists()) {
            let lists: Vec<(usize, DrugSet)> = evaluated.iter().map(|&i| (i, lists[i].clone())).collect();
            let predictions = Predictions {
                by_visit: lists
                    .iter()
                    .map(|(i, l)| {
                        (
                            *i,
                            rxalign_core::Prediction {
                                drugs: l.clone(),
                                scores: None,
                            },
                        )
                    })
                    .collect(),
            };
            methods.push(Method {
                name: name.to_string(),
                lists,
                predictions,
            });
        }
    }
    let registry = baseline::registry();
    for kind in baseline::BUILTIN {
        let mut r: Box<dyn Recommender> = registry.build(kind, &Value::Null, &())?;
        r.fit(&cohort, &split.train);
        let predictions = baseline::predict(r.as_ref(), &cohort, &evaluated);
        let lists = evaluated
            .iter()
            .map(|&i| (i, predictions.by_visit[&i].drugs.clone()))
            .collect();
        methods.push(Method {
            name: kind.to_string(),
            lists,
            predictions,
        });
    }

    let in_split = |name: SplitName| -> std::collections::HashSet<usize> {
        split.indices(name, cohort.visits.len()).into_iter().collect()
    };
    let (val, test) = (in_split(SplitName::Val), in_split(SplitName::Test));
    let mut records = Vec::new();
    let mut summary = Summary::new();
    let mut rows: Vec<(String, MetricReport)> =
        vec![(GROUND_TRUTH.to_string(), truth_report(&cohort, &split.test))];
    let mut trajectories = Vec::new();
    let mut outcome = Vec::new();
    for m in &methods {
        for (name, set) in [(SplitName::Val, &val), (SplitName::Test, &test)] {
            let report = m.predictions.evaluate(&cohort, |i| set.contains(&i));
            records.push(MetricsRecord {
                step: 0,
                split: name.to_string(),
                method: m.name.clone(),
                metrics: report.values.iter().map(|v| (v.name.clone(), v.value)).collect(),
            });
            if name == SplitName::Test {
                summary.insert(m.name.clone(), report.to_json());
                rows.push((m.name.clone(), report));
            }
        }
        let test_lists: Vec<&(usize, DrugSet)> = m.lists.iter().filter(|(i, _)| test.contains(i)).collect();
        outcome.push(mean_outcome(&cohort, &reward, &test_lists));
        for (i, list) in test_lists.iter().take(a.trajectories) {
            trajectories.push(replay_edits(
                &cohort,
                *i,
                &reward,
                DrugSet::empty(cohort.drug_count()),
                list,
                &m.name,
                "test",
            )?);
        }
    }
    run.append_metrics(&records)?;
    run.write_trajectories(&trajectories)?;
    run.write_summary(&summary)?;

    println!(
        "{} visits of {} patients ({}); {}",
        cohort.visits.len(),
        cohort.patient_count(),
        match &clinic {
            Some(c) => format!("embedded synthetic clinic, seed {}", c.config.seed),
            None => format!("dataset {}", cohort.name),
        },
        a.split.describe()
    );
    println!(
        "test split: {} visits; baselines fit on {} train visits\n",
        split.test.len(),
        split.train.len()
    );
    print!("{}", table::render(&rows));
    println!(
        "\nmean outcome reward from the empty list on the test split, Phi = {}:",
        reward
            .names()
            .iter()
            .zip(reward.weights())
            .map(|(n, w)| format!("{w} {n}"))
            .collect::<Vec<_>>()
            .join(" + ")
    );
    for (m, r) in methods.iter().zip(&outcome) {
        println!("  {:28} {r:+.4}", m.name);
    }
    println!("\nrun folder: {}", root.display());
    Ok(())
}

/// The mean of `Phi(list) − Phi(empty)` over the visits.
fn mean_outcome(cohort: &Cohort, reward: &Reward, lists: &[&(usize, DrugSet)]) -> f64 {
    let empty = DrugSet::empty(cohort.drug_count());
    let total: f64 = lists
        .iter()
        .map(|(i, list)| {
            let truth = &cohort.visits[*i].drugs;
            Episode::new(reward, truth, &cohort.ddi, list.clone(), 0).potential()
                - Episode::new(reward, truth, &cohort.ddi, empty.clone(), 0).potential()
        })
        .sum();
    total / lists.len().max(1) as f64
}
