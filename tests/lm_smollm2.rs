//! FLAME's list editor on the real SmolLM2-135M-Instruct (issue #15): the
//! smoke run of `experiments/lm-smollm2.ron` end to end on CPU, with the
//! refusal rate of the pretrained model's greedy answers before SFT and of
//! the SFT model's after; and a GRPO checkpoint of the pretrained model
//! under LoRA (adapters and Adam's state only) resuming to the same next
//! loss. Both need the converted model folder in RXALIGN_LM_DIR (`.ci/run`'s
//! LM step prepares it); without it they say so and return.

use std::path::{Path, PathBuf};

use burn::backend::flex::FlexDevice;
use rxalign_core::{Action, Cohort, DrugSet, Rng, seeded_rng};
use rxalign_env::{Reward, RewardConfig, RewardTermSpec};
use rxalign_experiment::runner::run_one;
use rxalign_experiment::{Plugins, load};
use rxalign_llama::{LlamaPolicy, LlamaPolicyConfig};
use rxalign_lm::LoraConfig;
use rxalign_policy::CpuTrainBackend;
use rxalign_policy::checkpoint;
use rxalign_policy::family::{ActMode, Effect, PolicyFamily};
use rxalign_train::episodes::Episodes;
use rxalign_train::grpo::{GrpoJob, GrpoSettings, train_grpo};
use rxalign_train::observer::{EvalPlan, FinalList, ObserverError, StepLog, TrainObserver};
use rxalign_train::sft::{SftJob, SftSettings, SftStarts, train_sft};

type Inner = burn::backend::Flex;

fn lm_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("RXALIGN_LM_DIR").map(PathBuf::from);
    if dir.is_none() {
        eprintln!("skipped: RXALIGN_LM_DIR is not set (.ci/run converts SmolLM2-135M-Instruct and sets it)");
    }
    dir
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// An episode's lines (edits and refusals, not the ends of answers) and
/// refusals, per visit, acting in `mode`.
fn lines_and_refusals(
    family: &LlamaPolicy,
    model: &rxalign_lm::Llama<Inner>,
    cohort: &Cohort,
    reward: &Reward,
    visits: &[usize],
    mode: ActMode,
) -> Vec<(usize, usize)> {
    let episodes = Episodes {
        cohort,
        reward,
        budget: family.config().budget(),
        mode,
        max_batch: Some(8),
        record: None,
    };
    let starts = visits
        .iter()
        .map(|&v| (v, DrugSet::empty(cohort.drug_count())))
        .collect();
    episodes
        .run(family, model, starts, &mut seeded_rng(0, "greedy"), &FlexDevice)
        .unwrap()
        .iter()
        .map(|r| {
            let lines = r
                .steps
                .iter()
                .filter(|s| !matches!(s.effect, Effect::NextPrompt | Effect::Act(Action::Stop)))
                .count();
            (lines, r.steps.iter().filter(|s| s.refused).count())
        })
        .collect()
}

/// The run's refusal rate: the mean over visits of the share of a visit's
/// lines that name no valid edit (0 for a visit without lines).
fn refusal_rate(counts: &[(usize, usize)]) -> f64 {
    let per_visit = counts
        .iter()
        .map(|&(l, r)| if l == 0 { 0.0 } else { r as f64 / l as f64 });
    per_visit.sum::<f64>() / counts.len() as f64
}

/// A visit's answer is valid when at least one of its lines is a valid
/// edit (names a drug of the vocabulary that the list can take).
fn valid(counts: &[(usize, usize)]) -> usize {
    counts.iter().filter(|&&(l, r)| l > r).count()
}

/// The share of all lines that name a valid edit (0 without lines).
fn valid_line_share(counts: &[(usize, usize)]) -> f64 {
    let lines: usize = counts.iter().map(|c| c.0).sum();
    let refused: usize = counts.iter().map(|c| c.1).sum();
    if lines == 0 {
        0.0
    } else {
        (lines - refused) as f64 / lines as f64
    }
}

/// `experiments/lm-smollm2.ron` on the real model: every stage runs; the
/// test visits' greedy answers before SFT (the pretrained model, its fresh
/// adapters changing nothing) and after (the run's SFT checkpoint), with
/// the refusal rate as the run records it.
#[test]
fn lm_smollm2_smoke_run_writes_answers_before_and_after_sft() {
    let Some(dir) = lm_dir() else { return };
    let started = std::time::Instant::now();
    let text = std::fs::read_to_string(root().join("experiments/lm-smollm2.ron")).unwrap();
    let linked = "\"models/smollm2-135m-instruct\"";
    assert!(text.contains(linked));
    let text = text.replace(linked, &format!("{:?}", dir.display().to_string()));
    // Smaller still for CI: one GRPO iteration of 2 visits x 2 rollouts per
    // GRPO stage (the file's SFT and evaluation as they are).
    let grpo = "iterations: 2, visits: 2, group: 4";
    assert_eq!(text.matches(grpo).count(), 2);
    let text = text.replace(grpo, "iterations: 1, visits: 2, group: 2");
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("lm-smollm2.ron");
    std::fs::write(&file, text).unwrap();
    let plugins = Plugins::builtin();
    let (_, plans) = load(&file, &plugins).unwrap();
    assert_eq!(plans.len(), 1);
    let plan = &plans[0];
    let out = tmp.path().join("runs");
    // The run resolves relative paths from the working directory.
    std::env::set_current_dir(root()).unwrap();
    run_one(plan, &plugins, &out).unwrap();
    let ran = started.elapsed();
    let run_dir = find(&out, "run.json").parent().unwrap().to_path_buf();
    let metrics = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = metrics
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let recorded = |method: &str| {
        rows.iter()
            .rev()
            .find(|r| {
                r["method"] == method && r["split"] == "test" && r["metrics"]["refusal_rate"].is_number()
            })
            .map(|r| r["metrics"]["refusal_rate"].as_f64().unwrap())
            .unwrap_or_else(|| panic!("no test refusal_rate of {method} in {metrics}"))
    };
    for method in ["sft", "grpo", "step_grpo"] {
        let r = recorded(method);
        assert!((0.0..=1.0).contains(&r), "{method}: {r}");
    }
    // GRPO starts at its KL reference, the SFT policy with its adapter on:
    // the first iteration's k3 is 0 (against the base with the adapter
    // off it was 5.5 per line).
    for method in ["grpo", "step_grpo"] {
        let k3 = rows
            .iter()
            .find(|r| r["method"] == method && r["split"] == "train" && r["step"] == 1)
            .and_then(|r| r["metrics"]["kl/k3"].as_f64())
            .unwrap_or_else(|| panic!("no kl/k3 of {method}'s first iteration in {metrics}"));
        assert!(k3.abs() < 1e-6, "{method}: k3 {k3} at the first iteration");
    }
    // The same cohort and family as the run; the test visits as predicted.
    let data = plan.data.load().unwrap();
    let cohort = data.cohort;
    let config: LlamaPolicyConfig = ron::Value::Map(plan.plan.file.policy.params.clone())
        .into_rust()
        .unwrap();
    let family = config.build(&cohort).unwrap();
    let predictions = std::fs::read_to_string(run_dir.join("predictions/sft.jsonl")).unwrap();
    let visits: Vec<usize> = predictions
        .lines()
        .map(|l| {
            let row: serde_json::Value = serde_json::from_str(l).unwrap();
            let id = row["visit_id"].as_str().unwrap();
            cohort.visits.iter().position(|v| v.visit_id == id).unwrap()
        })
        .collect();
    assert!(!visits.is_empty());
    let reward = reward();
    let pretrained: rxalign_lm::Llama<Inner> = family
        .init(&mut seeded_rng(0, "pretrained"), &FlexDevice)
        .unwrap();
    let greedy = ActMode::Greedy;
    // Sampled at temperature 1, 4 answers per visit: what the policy has
    // learned to write, which greedy decoding hides at this size (see below).
    let sampled = ActMode::Sample { temperature: 1.0 };
    let visits4: Vec<usize> = visits.iter().flat_map(|&v| [v; 4]).collect();
    let before = lines_and_refusals(&family, &pretrained, &cohort, &reward, &visits, greedy);
    let before_sampled = lines_and_refusals(&family, &pretrained, &cohort, &reward, &visits4, sampled);
    let sft_checkpoint = find(&run_dir, "sft.ckpt");
    let sft = checkpoint::load_module(&sft_checkpoint, pretrained, &FlexDevice).unwrap();
    let after = lines_and_refusals(&family, &sft, &cohort, &reward, &visits, greedy);
    let after_sampled = lines_and_refusals(&family, &sft, &cohort, &reward, &visits4, sampled);
    let size = std::fs::metadata(&sft_checkpoint).unwrap().len();
    let base = std::fs::metadata(dir.join("model.safetensors")).unwrap().len();
    eprintln!(
        "lm-smollm2 smoke run: {:.0} s for the run; {} test visits; refusal rate (mean over visits of the share of lines naming no valid edit), greedy: before SFT {:.3} ({} lines, {} valid answers), after SFT {:.3} ({} lines, {} valid answers); recorded by the run: sft {:.3}, grpo {:.3}, step_grpo {:.3}; the SFT checkpoint {} bytes against the base's {} (adapters and Adam's state only); sampled at temperature 1, 4 answers per visit: valid lines {:.3} of {} before SFT, {:.3} of {} after",
        ran.as_secs_f64(),
        visits.len(),
        refusal_rate(&before),
        before.iter().map(|c| c.0).sum::<usize>(),
        valid(&before),
        refusal_rate(&after),
        after.iter().map(|c| c.0).sum::<usize>(),
        valid(&after),
        recorded("sft"),
        recorded("grpo"),
        recorded("step_grpo"),
        size,
        base,
        valid_line_share(&before_sampled),
        before_sampled.iter().map(|c| c.0).sum::<usize>(),
        valid_line_share(&after_sampled),
        after_sampled.iter().map(|c| c.0).sum::<usize>(),
    );
    assert!(
        (refusal_rate(&after) - recorded("sft")).abs() < 1e-9,
        "the run's evaluation and this decode agree"
    );
    // SFT teaches the answer's format: the lines the policy writes name
    // drugs of the vocabulary. Greedy answers do not show it at this size:
    // at the start of a line the end of the answer is one token, while the
    // drugs' first tokens share the rest of the probability, so after one
    // small SFT the argmax may end every answer at once (0 lines in CI on
    // the 7 test visits). Sampled lines show what was learned.
    let (before, after) = (
        valid_line_share(&before_sampled),
        valid_line_share(&after_sampled),
    );
    assert!(
        after >= 0.25 && after > before + 0.2,
        "sampled lines naming a valid edit: {before:.3} before SFT, {after:.3} after ({after_sampled:?})"
    );
    assert!(size * 4 < base, "the checkpoint keeps the adapters only");
}

fn reward() -> Reward {
    RewardConfig {
        terms: vec![
            RewardTermSpec::new("jaccard", 1.0),
            RewardTermSpec::new("refusal", 0.2),
        ],
    }
    .init()
    .unwrap()
}

/// The first file under `dir` whose name ends with `suffix`.
fn find(dir: &Path, suffix: &str) -> PathBuf {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                return p;
            }
        }
    }
    panic!("no {suffix} under {}", dir.display())
}

#[derive(Default)]
struct Keep(Vec<StepLog>);

impl TrainObserver for Keep {
    fn evaluate(
        &mut self,
        _: usize,
        _: rxalign_core::SplitName,
        _: &[FinalList],
    ) -> Result<std::collections::BTreeMap<String, Option<f64>>, ObserverError> {
        Ok(Default::default())
    }

    fn step(&mut self, log: &StepLog, _: usize) -> Result<(), ObserverError> {
        self.0.push(log.clone());
        Ok(())
    }
}

fn empty_starts(_: usize, _: &mut Rng) -> Result<DrugSet, String> {
    Ok(DrugSet::empty(6))
}

/// A GRPO checkpoint of SmolLM2 under LoRA holds the adapters and Adam's
/// state only, and a run resumed from it takes the same next steps (the
/// same losses) as the run that never stopped.
#[test]
fn a_smollm2_grpo_checkpoint_keeps_the_adapters_and_resumes_to_the_same_next_loss() {
    let Some(dir) = lm_dir() else { return };
    let cohort = rxalign_policy::test_support::tiny();
    let reward = reward();
    let family = LlamaPolicyConfig {
        model: Some(dir.clone()),
        lora: Some(LoraConfig {
            rank: 4,
            alpha: 8.0,
            dropout: 0.0,
            targets: vec!["q_proj".into(), "v_proj".into()],
        }),
        max_lines: 2,
        max_line_tokens: 4,
        note_chars: 0,
        ..LlamaPolicyConfig::default()
    }
    .build(&cohort)
    .unwrap();
    let budget = family.config().budget();
    let eval = EvalPlan::default();
    let tmp = tempfile::tempdir().unwrap();
    // One SFT epoch, checkpointed: the GRPO runs start from its file.
    let sft_path = tmp.path().join("sft.ckpt");
    let sft_settings = SftSettings {
        epochs: 1,
        batch_size: 8,
        lr: 1e-3,
        starts: SftStarts::Run,
        eval_every: 0,
        ..SftSettings::default()
    };
    let job = SftJob {
        cohort: &cohort,
        reward: &reward,
        train: &[0, 1],
        settings: &sft_settings,
        starts: &empty_starts,
        budget,
        seed: 1,
        checkpoint: Some(&sft_path),
        eval: &eval,
    };
    train_sft::<_, CpuTrainBackend>(&family, &job, &mut Keep::default(), &FlexDevice).unwrap();
    let size = std::fs::metadata(&sft_path).unwrap().len();
    let base = std::fs::metadata(dir.join("model.safetensors")).unwrap().len();
    assert!(size * 100 < base, "{size} bytes against the base's {base}");
    let settings = |stop_after| GrpoSettings {
        iterations: 2,
        visits: 2,
        group: 2,
        lr: 1e-3,
        warmup: 0,
        eval_every: 0,
        stop_after,
        ..GrpoSettings::default()
    };
    let run = |settings: &GrpoSettings, checkpoint: Option<&Path>| {
        let fresh = family
            .init::<CpuTrainBackend>(&mut seeded_rng(9, "other"), &FlexDevice)
            .unwrap();
        let start = checkpoint::load_module(&sft_path, fresh, &FlexDevice).unwrap();
        let job = GrpoJob {
            cohort: &cohort,
            reward: &reward,
            train: &[0, 1],
            settings,
            starts: &empty_starts,
            budget,
            seed: 2,
            checkpoint,
            eval: &eval,
        };
        let mut keep = Keep::default();
        train_grpo::<_, CpuTrainBackend>(&family, start, &job, &mut keep, &FlexDevice).unwrap();
        keep.0
    };
    let straight = run(&settings(None), None);
    assert_eq!(straight.len(), 2);
    let path = tmp.path().join("grpo.ckpt");
    assert_eq!(run(&settings(Some(1)), Some(&path)), straight[..1]);
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size * 100 < base, "{size} bytes against the base's {base}");
    assert_eq!(
        run(&settings(None), Some(&path)),
        straight,
        "iteration 2 repeats the uninterrupted run"
    );
    eprintln!(
        "GRPO checkpoint (rank-4 adapters on q and v, Adam's state): {size} bytes; the base: {base} bytes"
    );
}
