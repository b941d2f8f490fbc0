//! Running the runs of an experiment: each writes its run folder; a
//! finished run is not run again, an unfinished one is run afresh, and one
//! run's failure leaves the others alone.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rxalign_core::run::{CHECKPOINTS, RunFolder, Summary};
use rxalign_core::{SplitConfig, seeded_rng};
use rxalign_env::Reward;
use rxalign_policy::classifier::VisitFeatures;

use crate::ExperimentError;
use crate::ablation::{ResolvedRun, RunPlan};
use crate::plugins::Plugins;
use crate::stage::RunContext;

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    Finished { seconds: f64 },
    AlreadyFinished,
    Failed(String),
}

/// The folder of an experiment's runs: `OUT/<experiment name>`.
pub fn experiment_dir(out: &Path, name: &str) -> PathBuf {
    out.join(name)
}

/// The text of a run's `resolved.ron`.
pub fn resolved_text(plan: &RunPlan) -> Result<String, ExperimentError> {
    let resolved = ResolvedRun {
        run: plan.name.clone(),
        group: plan.group.clone(),
        seed: plan.seed,
        overrides: plan.overrides.iter().cloned().collect(),
        experiment: plan.file.clone(),
    };
    let config = ron::ser::PrettyConfig::default().struct_names(false);
    ron::ser::to_string_pretty(&resolved, config).map_err(|e| ExperimentError::Invalid(e.to_string()))
}

/// Runs the plans, `jobs` at a time, each in `dir/<run name>`; calls
/// `progress` as each ends.
pub fn run_all(
    plans: &[RunPlan],
    plugins: &Plugins,
    dir: &Path,
    jobs: usize,
    progress: &(dyn Fn(&RunPlan, &Outcome) + Sync),
) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<Option<Outcome>>> = Mutex::new((0..plans.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, plans.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(plan) = plans.get(i) else { break };
                    let outcome = run_one(plan, plugins, &dir.join(&plan.name))
                        .unwrap_or_else(|e| Outcome::Failed(e.to_string()));
                    progress(plan, &outcome);
                    outcomes.lock().expect("no run panics holding the lock")[i] = Some(outcome);
                }
            });
        }
    });
    outcomes
        .into_inner()
        .expect("threads joined")
        .into_iter()
        .map(|o| o.expect("every run ends"))
        .collect()
}

/// Runs one plan in `root`.
pub fn run_one(plan: &RunPlan, plugins: &Plugins, root: &Path) -> Result<Outcome, ExperimentError> {
    let resolved = resolved_text(plan)?;
    // A finished run with these settings is kept; an unfinished one resumes
    // from its checkpoints.
    let resumable = match RunFolder::open(root) {
        Ok(folder) if folder.is_finished() => {
            if folder.read_resolved()? == resolved {
                return Ok(Outcome::AlreadyFinished);
            }
            false
        }
        Ok(folder) => folder.read_resolved().is_ok_and(|r| r == resolved),
        Err(_) => false,
    };
    if root.exists() {
        clear_run_folder(root, resumable)?;
    }
    let started = std::time::Instant::now();
    let folder = RunFolder::create(root)?;
    folder.write_resolved(&resolved)?;
    let file = &plan.file;
    let device: rxalign_policy::device::TrainDevice = file
        .device
        .parse()
        .map_err(|e: rxalign_policy::PolicyError| ExperimentError::Invalid(e.to_string()))?;
    let data = plugins.data.build(&file.data, &())?.load()?;
    let split_config = SplitConfig {
        seed: file.split.seed,
        train: file.split.train,
        val: file.split.val,
    };
    split_config.validate()?;
    let split = data.cohort.split(&split_config);
    let terms = file
        .reward
        .iter()
        .map(|spec| {
            let weight = spec
                .param("weight")
                .and_then(|w| w.clone().into_rust::<f64>().ok())
                .unwrap_or(f64::NAN);
            Ok((weight, plugins.reward.build(spec, &())?))
        })
        .collect::<Result<Vec<_>, ExperimentError>>()?;
    let reward = Reward::from_terms(terms)?;
    let features = match file.notes.tokenizer(&data.cohort, &split.train)? {
        Some(tokenizer) => {
            let json = tokenizer
                .to_json()
                .map_err(|e| ExperimentError::Invalid(e.to_string()))?;
            rxalign_core::run::write_atomic(&folder.root().join(TOKENIZER_FILE), json.as_bytes())?;
            VisitFeatures::with_notes(&data.cohort, &tokenizer)
                .map_err(|e| ExperimentError::Invalid(format!("notes: {e}")))?
        }
        None => VisitFeatures::of(&data.cohort),
    };
    let policy = plugins
        .policy
        .build(&file.policy, &())?
        .build(&rxalign_train::plugin::FamilyContext {
            cohort: &data.cohort,
            features: &features,
        })?;
    let start = plugins.init_list.build(&file.init_list, &data.cohort)?;
    let loggers = file
        .loggers
        .iter()
        .map(|spec| plugins.logger.build(spec, &root.to_path_buf()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rng = seeded_rng(file.seed, "run");
    let mut ctx = RunContext {
        data: &data,
        split: &split,
        reward: &reward,
        features,
        start: std::sync::Arc::from(start),
        outputs: std::collections::HashMap::new(),
        eval: &file.eval,
        folder: &folder,
        rng: &mut rng,
        seed: file.seed,
        device,
        policy: std::sync::Arc::from(policy),
        sft: None,
        summary: Summary::new(),
        trajectories: Vec::new(),
        checkpoint: PathBuf::new(),
        loggers,
    };
    let truth = rxalign_core::Predictions {
        by_visit: data
            .cohort
            .visits
            .iter()
            .enumerate()
            .map(|(i, v)| {
                (
                    i,
                    rxalign_core::Prediction {
                        drugs: v.drugs.clone(),
                        scores: None,
                    },
                )
            })
            .collect(),
    };
    ctx.record_method(GROUND_TRUTH, 0, &truth)?;
    for (index, spec) in file.stages.iter().enumerate() {
        let stage = plugins.stage.build(spec, &())?;
        ctx.checkpoint = folder
            .checkpoints()
            .join(format!("{index:02}-{}.ckpt", spec.kind));
        stage.run(&mut ctx).map_err(|e| ExperimentError::Run {
            run: plan.name.clone(),
            message: format!("stage `{}`: {e}", spec.kind),
        })?;
        folder.write_trajectories(&ctx.trajectories)?;
        for logger in &mut ctx.loggers {
            logger.flush()?;
        }
    }
    if !ctx.loggers.is_empty() {
        // The run's settings and the tags of its final (test) metrics, for
        // TensorBoard's HParams view.
        let settings = serde_json::to_value(file).map_err(|e| ExperimentError::Invalid(e.to_string()))?;
        let mut hparams = crate::logger::flatten_settings(&settings);
        hparams.insert("run".into(), crate::logger::HParam::Text(plan.name.clone()));
        let mut tags: Vec<String> = folder
            .read_metrics()?
            .iter()
            .filter(|r| r.split == "test" && ctx.summary.contains_key(&r.method))
            .flat_map(|r| {
                r.metrics
                    .iter()
                    .filter(|(_, v)| v.is_some())
                    .map(|(m, _)| crate::logger::metric_tag(&r.method, "test", m))
            })
            .collect();
        tags.sort();
        tags.dedup();
        for logger in &mut ctx.loggers {
            logger.hparams(&hparams, &tags)?;
            logger.flush()?;
        }
    }
    folder.write_summary(&ctx.summary)?;
    Ok(Outcome::Finished {
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Empties an unfinished run's folder before it runs again. With the same
/// resolved settings its training checkpoints stay, so SFT and GRPO resume
/// where they stopped (everything else is recomputed: references,
/// baselines and the classifier take seconds); otherwise nothing stays.
fn clear_run_folder(root: &Path, keep_checkpoints: bool) -> Result<(), ExperimentError> {
    let io = |e| rxalign_core::CoreError::io(root, e);
    if !keep_checkpoints {
        return Ok(std::fs::remove_dir_all(root).map_err(io)?);
    }
    for entry in std::fs::read_dir(root).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.file_name().is_some_and(|n| n == CHECKPOINTS) {
            continue;
        }
        if path.is_dir() {
            std::fs::remove_dir_all(&path).map_err(io)?;
        } else {
            std::fs::remove_file(&path).map_err(io)?;
        }
    }
    Ok(())
}

/// The note tokenizer of a run (`tokenizer.json` in its folder), where the
/// learned methods read notes.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// The method name of the prescriptions scored against themselves: the
/// yardstick of every table (their list sizes and DDI rates).
pub const GROUND_TRUTH: &str = "ground_truth";

/// Its file in a run folder's `predictions/`.
pub const GROUND_TRUTH_FILE: &str = "ground_truth.jsonl";
