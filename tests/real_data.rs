//! The real-data experiment files (issue #24) on the MIMIC-III demo import
//! of `tests/data`, as a credentialed researcher runs them on the full
//! database: `experiments/mimic-flame.ron` (FLAME's pipeline, list policy)
//! over the DREAM benchmark's five seeds with `plan`, `run`, `status` and
//! `compare` (both means); `experiments/mimic-flame-lm.ron` (the language-
//! model editor) and `experiments/mimic-lamo.ron` (LAMO's grouped
//! classifier) with a tiny random Llama folder built here in place of the
//! base model, on CPU, every stage cut to a few steps by text replacement
//! (as tests/lm_smollm2.rs shrinks its file). And the split diagnostics on a
//! generated folder where one patient holds most of a split: `plan` warns,
//! and `compare --mean per-patient` shows the per-patient mean, checked
//! against one computed here by hand.
//!
//! docs/real-data.md shows these commands; each says which test runs it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

mod common;

use burn::backend::Flex;
use burn::backend::flex::FlexDevice;
use burn::tensor::backend::Backend;
use rxalign_lm::config::TokenIds;
use rxalign_lm::{LlamaConfig, save_pretrained};
use serde_json::Value;
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, ModelWrapper};

/// Standard output and standard error of a command that must succeed.
fn ok(args: &[&str]) -> (String, String) {
    let out = common::rxalign_at_root(args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "rxalign {args:?} failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The MIMIC-III demo imported as the files' header says (every patient
/// and drug kept, as tests/mimic.rs imports it).
fn import_demo(out: &Path) {
    let args = common::mimic3_demo_import_args(out);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&args);
}

/// The demo imported smaller, for the language-model smoke runs: its 10
/// most frequent drugs (`--top-drugs 20`; LAMO asks a question per visit
/// and drug) and the diagnosis and procedure codes of at least 5 visits
/// (`--min-code-count 5`; shorter prompts).
fn import_small_demo(out: &Path) {
    let mut args = common::mimic3_demo_import_args(out);
    let at = args.iter().position(|a| a == "--top-drugs").unwrap();
    args[at + 1] = "10".into();
    args.extend(["--min-code-count".into(), "5".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&args);
}

/// An experiment file of `experiments/` with each `(from, to)` replaced
/// (each `from` must occur), written into `dir`.
fn shrunk(name: &str, dir: &Path, replacements: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(common::root().join("experiments").join(name)).unwrap();
    for (from, to) in replacements {
        assert!(text.contains(from), "{name} has no `{from}`");
        text = text.replace(from, to);
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The run folders of an experiment folder.
fn run_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("run.json").is_file())
        .collect();
    runs.sort();
    runs
}

/// Rows of a CSV table by header, read with the csv crate.
fn csv_rows(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    reader
        .records()
        .map(|r| {
            headers
                .iter()
                .cloned()
                .zip(r.unwrap().iter().map(String::from))
                .collect()
        })
        .collect()
}

/// FLAME's list-policy file on the demo over DREAM's five seeds: `plan`
/// lists five runs and five splits with their fingerprints; every run
/// records its split (66/17/17 of the patients, a fingerprint of its own
/// per seed); `compare` prints every method over the five seeds with their
/// spread, per visit and per patient.
#[test]
fn the_flame_list_policy_file_runs_on_the_demo_over_the_dream_seeds() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data/mimic3-atc3");
    import_demo(&data);
    let data_text = s(&data).to_string();
    let data_path = format!("path: {data_text:?}");
    let file = shrunk(
        "mimic-flame.ron",
        tmp.path(),
        &[
            ("path: \"data/mimic3-atc3\"", &data_path),
            ("epochs: 20", "epochs: 2"),
            ("eval_every: 2", "eval_every: 1"),
            ("iterations: 40", "iterations: 2"),
            ("eval_every: 10", "eval_every: 1"),
            ("hidden: 128", "hidden: 32"),
        ],
    );
    let (stats, _) = ok(&[
        "data",
        "stats",
        &data_text,
        "--split-train",
        "0.66",
        "--split-val",
        "0.17",
        "--split-seed",
        "1203",
    ]);
    for part in ["train: ", "val: ", "test: "] {
        assert!(
            stats
                .lines()
                .any(|l| l.trim_start().starts_with(part) && l.contains("visits per patient median")),
            "{stats}"
        );
    }
    assert!(
        stats.contains("split seed 1203: patients 0.6600 train, 0.1700 val"),
        "{stats}"
    );

    let (plan, _) = ok(&["plan", s(&file)]);
    assert!(plan.contains("5 run(s) of experiment `mimic-flame`"), "{plan}");
    for seed in rxalign_core::DREAM_SEEDS {
        assert!(plan.contains(&format!("base.seed={seed}")), "{plan}");
        assert!(
            plan.contains(&format!("  seed {seed}, shares train 0.6600 / val 0.1700")),
            "{plan}"
        );
    }
    assert!(plan.contains("splits by patient (5 distinct"), "{plan}");

    let out = tmp.path().join("runs");
    let started = std::time::Instant::now();
    let (ran, _) = ok(&["run", s(&file), "--out", s(&out), "--jobs", "2"]);
    eprintln!(
        "mimic-flame.ron on the demo: {:.1} s for the five runs",
        started.elapsed().as_secs_f64()
    );
    assert!(ran.contains("per-visit mean on the test split"), "{ran}");
    let dir = out.join("mimic-flame");

    // Each run's split: DREAM's shares of the patients, no patient in two
    // parts (the parts' patients add up), a fingerprint per seed.
    let mut fingerprints = BTreeSet::new();
    let mut patients = None;
    for run in run_dirs(&dir) {
        let record = json(&run.join("run.json"));
        let split = &record["split"];
        assert_eq!(split["seed"], record["seed"], "the run's seed draws its split");
        assert_eq!(
            (split["train"].as_f64(), split["val"].as_f64()),
            (Some(0.66), Some(0.17))
        );
        let count = |part: usize| split["parts"][part]["patients"].as_u64().unwrap() as f64;
        let n = count(0) + count(1) + count(2);
        assert_eq!(*patients.get_or_insert(n), n);
        assert!(
            (count(0) - 0.66 * n).abs() <= 0.5 && (count(1) - 0.17 * n).abs() <= 0.5,
            "{split}"
        );
        fingerprints.insert(split["fingerprint"].as_str().unwrap().to_string());
    }
    assert_eq!(fingerprints.len(), 5, "five seeds, five splits");

    let (status, _) = ok(&["status", s(&dir)]);
    assert!(status.contains("5 run(s): 5 finished"), "{status}");

    let (table, _) = ok(&["compare", s(&dir)]);
    let methods = [
        "ground_truth",
        "most_frequent",
        "cooccurrence",
        "everything_indicated",
        "classifier",
        "sft",
        "grpo",
        "step_grpo",
    ];
    for method in methods {
        let row = table
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(method))
            .unwrap_or_else(|| panic!("no row of {method} in\n{table}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[2], "5", "{method} over the five seeds: {row}");
        assert!(row.contains(" ± "), "{method} with its spread: {row}");
    }
    assert!(table.contains("per-visit mean on the test split"), "{table}");
    let (per_patient, _) = ok(&["compare", s(&dir), "--mean", "per-patient"]);
    assert!(per_patient.contains("per_patient/jaccard"), "{per_patient}");
    assert!(
        per_patient.contains("per-patient mean on the test split"),
        "{per_patient}"
    );
    for method in methods {
        assert!(
            per_patient
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(method) && l.contains(" ± ")),
            "{method}: {per_patient}"
        );
    }
}

/// burn's initialiser draws from one process-wide generator: one folder at
/// a time.
static INIT: Mutex<()> = Mutex::new(());

/// A tiny random Llama as a Hugging Face folder (as tests/lm_generate.rs
/// writes one): two layers, a byte-level BPE trained on the import's
/// code names and a few words, with ChatML's special tokens (the editor's chat
/// template) and `Yes` and `No` as whole tokens (LAMO's answers).
fn tiny_llama(dir: &Path, data: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let bpe = BPE::builder().build().unwrap();
    let mut tok = tokenizers::Tokenizer::new(ModelWrapper::from(bpe));
    tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tok.with_decoder(Some(ByteLevel::default()));
    let special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        .map(|t| AddedToken::from(t, true))
        .to_vec();
    let mut trainer = TrainerWrapper::from(
        BpeTrainerBuilder::new()
            .vocab_size(1500)
            .min_frequency(1)
            .show_progress(false)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .special_tokens(special)
            .build(),
    );
    // The names of the import's codes, so that prompts are short.
    let mut text =
        vec!["Which drugs should be added? Which removed? Patient diagnoses procedures".to_string()];
    for vocab in ["drugs.csv", "diagnoses.csv", "procedures.csv"] {
        if let Ok(names) = std::fs::read_to_string(data.join(vocab)) {
            text.extend(names.lines().map(String::from));
        }
    }
    tok.train(
        &mut trainer,
        text.iter().map(String::as_str).cycle().take(4 * text.len()),
    )
    .unwrap();
    tok.add_tokens(&[AddedToken::from("Yes", false), AddedToken::from("No", false)]);
    tok.save(dir.join("tokenizer.json"), false).unwrap();
    let mut config = LlamaConfig::tiny(tok.get_vocab_size(true), 2, 4, 2, 8);
    config.bos_token_id = None;
    config.eos_token_id = Some(TokenIds::One(tok.token_to_id("<|endoftext|>").unwrap()));
    let _guard = INIT.lock().unwrap_or_else(|p| p.into_inner());
    Flex::seed(&FlexDevice, 5);
    let model = config.init::<Flex>(&FlexDevice);
    save_pretrained(&model, dir).unwrap();
}

/// Runs `file` of `experiments/` on the smaller demo import with a tiny
/// Llama folder as its base (the setting `model` names, written
/// `model: "DIR"` or `dir: "DIR"`), on CPU, one seed, with `cuts`: `plan`,
/// then `run`. Returns the temporary folder (kept while it lives) and the
/// run's folder.
fn smoke_run_with_a_tiny_llama(
    file: &str,
    model: (&str, &str),
    cuts: &[(&str, &str)],
) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data/mimic3-atc3");
    import_small_demo(&data);
    let llama = tmp.path().join("tiny-llama");
    tiny_llama(&llama, &data);
    let data_path = format!("path: {:?}", s(&data));
    let (setting, placeholder) = model;
    let model_from = format!("{setting}: {placeholder:?}");
    let model_to = format!("{setting}: {:?}", s(&llama));
    let mut replacements = vec![
        ("path: \"data/mimic3-atc3\"", data_path.as_str()),
        (model_from.as_str(), model_to.as_str()),
        ("device: \"cuda:0\"", "device: \"cpu\""),
        ("{\"seed\": \"dream\"}", "{\"seed\": [1203]}"),
    ];
    replacements.extend_from_slice(cuts);
    let path = shrunk(file, tmp.path(), &replacements);
    let (plan, _) = ok(&["plan", s(&path)]);
    assert!(plan.contains("1 run(s) of experiment"), "{plan}");
    let out = tmp.path().join("runs");
    let started = std::time::Instant::now();
    ok(&["run", s(&path), "--out", s(&out)]);
    eprintln!(
        "{file} on the demo (tiny Llama, cut): {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let name = file.trim_end_matches(".ron");
    let run = run_dirs(&out.join(name)).remove(0);
    (tmp, run)
}

/// FLAME's pipeline with the language-model editor, at the file's
/// settings but for the base (a tiny random Llama folder), the device (CPU)
/// and the sizes (a step or two of each stage, one seed; the seed set is
/// checked above): every stage runs on the demo and records its method.
#[test]
fn the_flame_language_model_file_runs_on_the_demo_with_a_tiny_llama() {
    let (_tmp, run) = smoke_run_with_a_tiny_llama(
        "mimic-flame-lm.ron",
        ("model", "models/flame-base"),
        &[
            ("rank: 32", "rank: 4"),
            ("alpha: 64.0", "alpha: 8.0"),
            ("max_lines: 10", "max_lines: 2"),
            ("max_line_tokens: 16", "max_line_tokens: 6"),
            ("note_chars: 2000", "note_chars: 40"),
            ("epochs: 2, batch_size: 16", "epochs: 1, batch_size: 64"),
            (
                "iterations: 12500, visits: 8, group: 8",
                "iterations: 1, visits: 2, group: 2",
            ),
            ("warmup: 200", "warmup: 0"),
            ("eval_every: 500", "eval_every: 1"),
            ("trajectories: 5", "trajectories: 1"),
            ("loggers: [(kind: \"tensorboard\")],", ""),
        ],
    );
    let summary = json(&run.join("summary.json"));
    for method in ["classifier", "sft", "grpo", "step_grpo"] {
        let jaccard = summary["methods"][method]["metrics"]["jaccard"].as_f64();
        assert!(
            jaccard.is_some_and(|j| (0.0..=1.0).contains(&j)),
            "{method}: {summary}"
        );
        let per_patient = summary["methods"][method]["per_patient"]["jaccard"].as_f64();
        assert!(
            per_patient.is_some_and(|j| (0.0..=1.0).contains(&j)),
            "{method}: {summary}"
        );
    }
    assert_eq!(json(&run.join("run.json"))["split"]["seed"], 1203);
}

/// LAMO's grouped classifier file, with the tiny Llama folder as its base
/// (its `Yes` and `No` one token each), on CPU, one epoch, one seed.
#[test]
fn the_lamo_file_runs_on_the_demo_with_a_tiny_llama() {
    let (_tmp, run) = smoke_run_with_a_tiny_llama(
        "mimic-lamo.ron",
        ("dir", "models/lamo-base"),
        &[
            ("max_note_chars: 2000", "max_note_chars: 40"),
            ("epochs: 2", "epochs: 1"),
            ("batch_size: 32", "batch_size: 256"),
            ("negatives_per_positive: 1.0", "negatives_per_positive: 0.2"),
            ("trajectories: 5", "trajectories: 1"),
        ],
    );
    let summary = json(&run.join("summary.json"));
    let prauc = summary["methods"]["lamo"]["metrics"]["prauc"].as_f64();
    assert!(prauc.is_some_and(|p| p > 0.0 && p <= 1.0), "{summary}");
    assert!(summary["methods"]["classifier"]["metrics"]["jaccard"].is_number());
}

/// A generated dataset folder where one patient holds most visits: `plan`
/// and `run` warn, naming the split and the patient's share; `compare
/// --mean per-patient` shows per-patient means that differ from the
/// per-visit ones, each as computed here by hand from the run's test
/// predictions.
#[test]
fn one_dominant_patient_is_warned_of_and_the_per_patient_mean_differs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("skewed");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("drugs.csv"), "code,name\nA,a\nB,b\nC,c\nD,d\n").unwrap();
    // Patient `big` has 40 visits of A and B; 29 others one visit each, of
    // C and D, or A and C.
    let mut lines = Vec::new();
    for v in 0..40 {
        lines.push(format!(
            r#"{{"patient_id": "big", "visit_id": "big-{v}", "diagnoses": ["d1"], "procedures": [], "drugs": ["A", "B"]}}"#
        ));
    }
    for p in 0..29 {
        let drugs = if p % 2 == 0 { r#""C", "D""# } else { r#""A", "C""# };
        lines.push(format!(
            r#"{{"patient_id": "p{p}", "visit_id": "p{p}-1", "diagnoses": ["d2"], "procedures": [], "drugs": [{drugs}]}}"#
        ));
    }
    std::fs::write(data.join("visits.jsonl"), lines.join("\n") + "\n").unwrap();
    // A split seed that puts `big` in the test split.
    let cohort = rxalign_data::load_dataset(&data).unwrap();
    let seed = (0..100u64)
        .find(|&seed| {
            let split = cohort.split(&rxalign_core::SplitConfig::with_seed(seed));
            split.test.iter().any(|&i| cohort.visits[i].patient_id == "big")
        })
        .expect("some seed puts the big patient in test");
    let file = tmp.path().join("skewed.ron");
    std::fs::write(
        &file,
        format!(
            r#"(
    schema_version: 1,
    name: "skewed",
    data: (kind: "folder", path: {:?}),
    split: (seed: {seed}),
    reward: [(kind: "jaccard", weight: 1.0)],
    stages: [(kind: "baselines", methods: ["most_frequent"])],
    ablations: (grid: {{"seed": [1, 2]}}),
)"#,
            s(&data)
        ),
    )
    .unwrap();
    let (plan, warned) = ok(&["plan", s(&file)]);
    assert!(plan.contains("splits by patient (1 distinct"), "{plan}");
    assert!(
        warned.contains(&format!("warning: split `test` (seed {seed}): one patient holds")),
        "{warned}"
    );
    let out = tmp.path().join("runs");
    let (ran, ran_err) = ok(&["run", s(&file), "--out", s(&out)]);
    assert!(
        ran.contains("warning: split `test`") || ran_err.contains("warning: split `test`"),
        "{ran}\n{ran_err}"
    );
    let dir = out.join("skewed");

    // By hand, from one run's test predictions and the ground truth.
    let run = &run_dirs(&dir)[0];
    let truth: BTreeMap<String, (String, BTreeSet<String>)> = lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let drugs = v["drugs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_string());
            (
                v["visit_id"].as_str().unwrap().to_string(),
                (v["patient_id"].as_str().unwrap().to_string(), drugs.collect()),
            )
        })
        .collect();
    let predictions = std::fs::read_to_string(run.join("predictions/most_frequent.jsonl")).unwrap();
    let mut per_visit = Vec::new();
    let mut by_patient: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for line in predictions.lines() {
        let p: Value = serde_json::from_str(line).unwrap();
        let predicted: BTreeSet<String> = p["drugs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap().to_string())
            .collect();
        let (patient, truth) = &truth[p["visit_id"].as_str().unwrap()];
        let union = predicted.union(truth).count();
        let jaccard = if predicted.is_empty() || truth.is_empty() {
            0.0
        } else {
            predicted.intersection(truth).count() as f64 / union as f64
        };
        per_visit.push(jaccard);
        by_patient.entry(patient.clone()).or_default().push(jaccard);
    }
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    let visit_mean = mean(&per_visit);
    let patient_mean = mean(&by_patient.values().map(|v| mean(v)).collect::<Vec<_>>());
    assert!(
        (visit_mean - patient_mean).abs() > 0.05,
        "the big patient moves the per-visit mean: {visit_mean} against {patient_mean}"
    );
    let cell = |args: &[&str], column: &str| -> f64 {
        let (csv, _) = ok(args);
        let rows = csv_rows(&csv);
        let row = rows.iter().find(|r| r["method"] == "most_frequent").unwrap();
        row[column].parse().unwrap()
    };
    // Both seeds share the split (the split seed is fixed): each run's means
    // are the same, and so is their mean over seeds.
    let shown_visit = cell(&["compare", s(&dir), "--format", "csv"], "jaccard_mean");
    let shown_patient = cell(
        &["compare", s(&dir), "--format", "csv", "--mean", "per-patient"],
        "per_patient/jaccard_mean",
    );
    assert!(
        (shown_visit - visit_mean).abs() < 1e-9,
        "{shown_visit} against {visit_mean}"
    );
    assert!(
        (shown_patient - patient_mean).abs() < 1e-9,
        "{shown_patient} against {patient_mean}"
    );
    let (text, _) = ok(&["compare", s(&dir), "--mean", "per-patient"]);
    assert!(text.contains(&format!("{patient_mean:.4}")), "{text}");
    assert!(text.contains("per-patient mean on the test split"), "{text}");
}
