//! Every command the README and the guide (`docs/*.md`) show is run, so that
//! none can rot.
//!
//! Commands are read from fenced code blocks, which must each name their
//! language: every line of a `sh` block (a line ending in `\` continues on
//! the next; `#` after a space starts a comment), and in any other block the
//! lines that start with `$ `, whose following lines (up to the next `$ ` or
//! the block's end) are the output that command must print. Each command is
//! then either
//!
//! - **run here for real** ([`runs_here`]: the cheap subcommands, on the
//!   repository's own files or on the stand-ins of [`ON_STAND_INS`] for
//!   data a clone may not hold), in page order, in one temporary folder per page
//!   holding copies of `experiments/`, `examples/` and `tests/data/`, with
//!   the test's `rxalign` first on `PATH`, through `bash` (so redirections
//!   work as a reader's shell runs them); it must succeed and print what the
//!   page shows after it, if anything;
//! - **run elsewhere**: listed in [`ELSEWHERE`] with the test or `.ci/run`
//!   step that runs it (both checked to exist), and every `--flag` it passes
//!   checked here against the subcommand's `--help`;
//! - **not ours**: a program of someone else's shown in a workflow
//!   ([`NOT_OURS`], with why it is not run).
//!
//! A command in none of these fails the test, naming its page and line; so
//! does an entry of [`ELSEWHERE`] that no page shows any more.

#![cfg(unix)] // the pages' commands are shell commands, run by `bash`

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Who runs a command that is not run here.
enum Runner {
    /// A test function in a file of the repository.
    Test {
        file: &'static str,
        function: &'static str,
    },
    /// A step of `.ci/run`, by a text its command line holds.
    Ci { holds: &'static str },
}

/// A command that is run elsewhere: the command exactly as a page shows it
/// (whitespace collapsed, comment dropped), who runs it, and what differs
/// between the page's command and theirs.
struct Elsewhere {
    command: &'static str,
    runners: &'static [Runner],
    note: &'static str,
}

/// Commands too long, too big or needing what a clone lacks (credentialed
/// data, a converted language model, a display, a cluster) to run here.
const ELSEWHERE: &[Elsewhere] = &[
    Elsewhere {
        command: "cargo run --release -p rxalign-cli -- run experiments/quickstart.ron",
        runners: &[Runner::Test {
            file: "tests/quickstart.rs",
            function: "the_quickstart_learns_more_than_the_baselines_and_aligned_editors_improve_on_sft_for_unseen_patients",
        }],
        note: "runs `rxalign run experiments/quickstart.ron --out TMP` from the repository root in the test profile (about a minute); the metrics are the same in release",
    },
    Elsewhere {
        command: "cargo test --workspace",
        runners: &[Runner::Ci {
            holds: "cargo test --workspace --locked",
        }],
        note: "CI runs it in a bare clone of the committed tree",
    },
    Elsewhere {
        command: "cargo run --release -p rxalign-cli -- lm generate --model DIR --prompt \"The capital of France is\" --max-tokens 32",
        runners: &[
            Runner::Test {
                file: "tests/lm_generate.rs",
                function: "smollm2_greedy_text_equals_transformers",
            },
            Runner::Ci {
                holds: "--test lm_generate --locked -- --nocapture --exact smollm2_greedy_text_equals_transformers",
            },
            Runner::Test {
                file: "tests/lm_generate.rs",
                function: "max_tokens_bounds_the_completion",
            },
        ],
        note: "with DIR the SmolLM2-135M-Instruct folder that .ci/run converts (the test's plain prompt and budget are these); the other test runs it on a tiny folder it writes",
    },
    Elsewhere {
        command: "cargo build --release --locked -p rxalign-cli --features cuda",
        runners: &[Runner::Ci {
            holds: "cargo build --release --locked -p rxalign-cli --features cuda",
        }],
        note: "CI builds it (it compiles burn's CUDA backend; nothing runs it on a GPU)",
    },
    Elsewhere {
        command: "scripts/gpu-check.sh --out gpu-check target/release/rxalign ~/.cache/rxalign/smollm2-135m-instruct",
        runners: &[Runner::Test {
            file: "tests/lm_generate.rs",
            function: "gpu_check_dry_run_passes_every_step_on_cpu",
        }],
        note: "needs an NVIDIA GPU and has never run on one; the test runs the same script with --dry-run (every step on cpu, smaller sizes) on a tiny model it writes",
    },
    Elsewhere {
        command: "rxalign dashboard runs",
        runners: &[Runner::Test {
            file: "tests/guide.rs",
            function: "the_dashboard_command_accepts_its_arguments_and_needs_only_a_display",
        }],
        note: "opens a window: that test runs it without a display and checks that only the display is missing; scripts/dashboard-screenshots.sh renders the panels under Xvfb (not in CI)",
    },
    Elsewhere {
        command: "rxalign status /shared/runs",
        runners: &[Runner::Test {
            file: "examples/my-plugins/tests/end_to_end.rs",
            function: "its_experiment_plans_runs_compares_and_reports_status",
        }],
        note: "the cluster's shared folder: `status` on a runs folder is run here too (docs/plugins.md) and by the test",
    },
    Elsewhere {
        command: "rxalign compare /shared/runs/stepwise-vs-grpo",
        runners: &[Runner::Test {
            file: "examples/my-plugins/tests/end_to_end.rs",
            function: "its_experiment_plans_runs_compares_and_reports_status",
        }],
        note: "needs the cluster's finished runs of that experiment: `compare` on an experiment folder is run here too (docs/experiments.md) and by the test",
    },
    Elsewhere {
        command: "rxalign run experiments/mimic-flame.ron --out runs --jobs 2",
        runners: &[Runner::Test {
            file: "tests/real_data.rs",
            function: "the_flame_list_policy_file_runs_on_the_demo_over_the_dream_seeds",
        }],
        note: "on the MIMIC-III demo import, with the file's stages cut to a smoke size",
    },
    Elsewhere {
        command: "rxalign status runs/mimic-flame",
        runners: &[Runner::Test {
            file: "tests/real_data.rs",
            function: "the_flame_list_policy_file_runs_on_the_demo_over_the_dream_seeds",
        }],
        note: "on the MIMIC-III demo import, with the file's stages cut to a smoke size",
    },
    Elsewhere {
        command: "rxalign compare runs/mimic-flame",
        runners: &[Runner::Test {
            file: "tests/real_data.rs",
            function: "the_flame_list_policy_file_runs_on_the_demo_over_the_dream_seeds",
        }],
        note: "on the MIMIC-III demo import, with the file's stages cut to a smoke size",
    },
    Elsewhere {
        command: "rxalign compare runs/mimic-flame --mean per-patient",
        runners: &[Runner::Test {
            file: "tests/real_data.rs",
            function: "the_flame_list_policy_file_runs_on_the_demo_over_the_dream_seeds",
        }],
        note: "on the MIMIC-III demo import, with the file's stages cut to a smoke size",
    },
    Elsewhere {
        command: "cargo run -p my-plugins --bin my-rxalign -- run examples/my-plugins/experiments/my-experiment.ron",
        runners: &[Runner::Test {
            file: "examples/my-plugins/tests/end_to_end.rs",
            function: "its_experiment_plans_runs_compares_and_reports_status",
        }],
        note: "the test runs its binary `my-rxalign run examples/my-plugins/experiments/my-experiment.ron --out runs`; the flags are checked against `rxalign`'s, which `my-rxalign` shares",
    },
];

/// Programs that are not rxalign's, shown in a workflow and not run: the
/// program's name and why.
const NOT_OURS: &[(&str, &str)] = &[
    ("mkdir", "a shell's own command, on the cluster's shared folder"),
    ("sbatch", "Slurm submits the job array on a cluster"),
];

/// Whether a command is cheap enough, and needs only the repository's own
/// files, to be run here for real: every `--help`, and these subcommands on
/// the folders the pages make (`data/`, `runs/`) or the repository's files.
fn runs_here(command: &str) -> bool {
    const CHEAP: &[&str] = &[
        "rxalign plan experiments/",
        "rxalign data synth ",
        "rxalign data stats data/",
        "rxalign data mimic3 --root tests/data/",
        "rxalign baseline ",
        "rxalign eval --data data/",
        "rxalign plugins",
        "rxalign compare runs/",
        "rxalign status runs",
        "rxalign plot runs/",
        // The references and baselines alone: a few seconds.
        "rxalign run experiments/baselines.ron",
    ];
    command.ends_with(" --help") || CHEAP.iter().any(|p| command.starts_with(p))
}

/// Commands on data a clone may not hold (PhysioNet's credentialed tables,
/// the WHO ATC index), run here on small stand-ins that the function writes
/// at the paths the command names: (command prefix, writer of the folder).
const ON_STAND_INS: &[(&str, StandIns)] = &[
    (
        "rxalign data mimic3 --root mimic-iii-clinical-database-1.4 ",
        mimic3_stand_ins,
    ),
    ("rxalign data mimic4 --root mimic-iv-3.1 ", mimic4_stand_ins),
];

/// Writes a command's stand-ins into the page's working folder.
type StandIns = fn(&Path);

fn stand_ins(command: &str) -> Option<StandIns> {
    ON_STAND_INS
        .iter()
        .find(|(prefix, _)| command.starts_with(prefix))
        .map(|&(_, write)| write)
}

fn write_lines(path: &Path, lines: &[&str]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// The full MIMIC-III's place: the public demo's tables (the same format),
/// the NDC map and DDI graph of `tests/data` under the names the page uses,
/// and an ATC index of the WHO's columns naming a few of the demo's classes.
fn mimic3_stand_ins(dir: &Path) {
    let data = root().join("tests/data");
    copy_dir(
        &data.join("mimic-iii-demo-1.4"),
        &dir.join("mimic-iii-clinical-database-1.4"),
    );
    for (from, to) in [
        (
            "code-maps-gamenet-safedrug/ndc2atc3_molerec.csv",
            "ndc2atc3_molerec.csv",
        ),
        (
            "ddi-atc3-twosides/gamenet_ddi_atc3_edges.csv",
            "gamenet_ddi_atc3_edges.csv",
        ),
    ] {
        std::fs::copy(data.join(from), dir.join(to)).unwrap();
    }
    write_lines(
        &dir.join("WHO_ATC-DDD.csv"),
        &[
            "atc_code,atc_name,ddd,uom,adm_r,note",
            "A12C,OTHER MINERAL SUPPLEMENTS (stand-in),,,,",
            "N06B,PSYCHOSTIMULANTS (stand-in),,,,",
        ],
    );
}

/// MIMIC-IV's hosp module and MIMIC-IV-Note's discharge summaries, made
/// up: three patients, two of them in the anchor year group "2017 - 2019"
/// with two admissions each (the import's default `--min-visits 2`), NDCs
/// that `tests/data`'s map sends to A12C and N06B.
fn mimic4_stand_ins(dir: &Path) {
    let hosp = dir.join("mimic-iv-3.1/hosp");
    write_lines(
        &hosp.join("patients.csv"),
        &[
            "subject_id,gender,anchor_age,anchor_year,anchor_year_group,dod",
            "1,F,60,2150,2008 - 2010,",
            "2,M,40,2160,2017 - 2019,",
            "3,F,70,2170,2017 - 2019,",
        ],
    );
    write_lines(
        &hosp.join("admissions.csv"),
        &[
            "subject_id,hadm_id,admittime,dischtime",
            "1,10,2152-01-01 00:00:00,",
            "1,11,2153-01-01 00:00:00,",
            "2,20,2160-06-01 00:00:00,",
            "2,21,2161-02-01 00:00:00,",
            "3,30,2170-03-01 00:00:00,",
            "3,31,2170-09-01 00:00:00,",
        ],
    );
    let mut dx = vec!["subject_id,hadm_id,seq_num,icd_code,icd_version".to_string()];
    let mut px = vec!["subject_id,hadm_id,seq_num,chartdate,icd_code,icd_version".to_string()];
    let mut rx = vec!["subject_id,hadm_id,drug_type,drug,ndc".to_string()];
    for (subject, hadm) in [(1, 10), (1, 11), (2, 20), (2, 21), (3, 30), (3, 31)] {
        dx.push(format!("{subject},{hadm},1,I10,10"));
        dx.push(format!("{subject},{hadm},2,4019,9"));
        px.push(format!("{subject},{hadm},1,,02HV33Z,10"));
        rx.push(format!("{subject},{hadm},MAIN,calcium,00002202402"));
        rx.push(format!("{subject},{hadm},MAIN,methylphenidate,00002322930"));
    }
    for (name, rows) in [
        ("diagnoses_icd.csv", dx),
        ("procedures_icd.csv", px),
        ("prescriptions.csv", rx),
    ] {
        write_lines(
            &hosp.join(name),
            &rows.iter().map(String::as_str).collect::<Vec<_>>(),
        );
    }
    write_lines(
        &hosp.join("d_icd_diagnoses.csv"),
        &[
            "icd_code,icd_version,long_title",
            "I10,10,Essential (primary) hypertension",
            "4019,9,Unspecified essential hypertension",
        ],
    );
    write_lines(
        &dir.join("mimic-iv-note-2.2/note/discharge.csv"),
        &[
            "note_id,subject_id,hadm_id,note_type,note_seq,charttime,storetime,text",
            "n1,2,20,DS,1,,,\"History of Present Illness:\n40M with hypertension.\nDischarge Medications:\n1. Lisinopril\"",
        ],
    );
    std::fs::copy(
        root().join("tests/data/code-maps-gamenet-safedrug/ndc2atc3_molerec.csv"),
        dir.join("ndc2atc3_molerec.csv"),
    )
    .unwrap();
}

/// A command a page shows.
#[derive(Debug, Clone)]
struct Shown {
    page: String,
    line: usize,
    command: String,
    /// The output the page shows after a `$ ` command (None for `sh` lines).
    output: Option<Vec<String>>,
}

/// The commands of one page's fenced blocks, or the page's problems (a
/// fence without a language, a block left open).
fn commands(page: &str, text: &str) -> Result<Vec<Shown>, Vec<String>> {
    let mut shown = Vec::new();
    let mut problems = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let open = lines[i].trim_start();
        if !open.starts_with("```") {
            i += 1;
            continue;
        }
        let lang = open.trim_start_matches('`').trim().to_string();
        let start = i + 1;
        if lang.is_empty() {
            problems.push(format!(
                "{page}:{start}: a fenced block names no language (```sh, ```text, ...)"
            ));
        }
        let Some(end) = (start..lines.len()).find(|&j| lines[j].trim_start().starts_with("```")) else {
            problems.push(format!("{page}:{start}: a fenced block is never closed"));
            break;
        };
        let block = &lines[start..end];
        if lang == "sh" || lang == "bash" || lang == "shell" {
            let mut j = 0;
            while j < block.len() {
                let first = j;
                let mut joined = String::new();
                loop {
                    let l = block[j];
                    j += 1;
                    match l.trim_end().strip_suffix('\\') {
                        Some(cont) if j < block.len() => joined.push_str(cont),
                        _ => {
                            joined.push_str(l);
                            break;
                        }
                    }
                }
                let command = normalise(&joined);
                if !command.is_empty() {
                    shown.push(Shown {
                        page: page.into(),
                        line: start + first + 1,
                        command,
                        output: None,
                    });
                }
            }
        } else {
            let mut j = 0;
            while j < block.len() {
                if let Some(cmd) = block[j].strip_prefix("$ ") {
                    let first = j;
                    j += 1;
                    let mut output = Vec::new();
                    while j < block.len() && !block[j].starts_with("$ ") {
                        output.push(block[j].trim_end().to_string());
                        j += 1;
                    }
                    shown.push(Shown {
                        page: page.into(),
                        line: start + first + 1,
                        command: normalise(cmd),
                        output: Some(output),
                    });
                } else {
                    j += 1;
                }
            }
        }
        i = end + 1;
    }
    if problems.is_empty() {
        Ok(shown)
    } else {
        Err(problems)
    }
}

/// A shell line without its comment, whitespace collapsed (outside quotes
/// as inside: the pages' quoted arguments hold single spaces).
fn normalise(line: &str) -> String {
    let mut out = String::new();
    let mut quote = None;
    let mut prev_space = true;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && prev_space => break,
            None => {}
        }
        prev_space = c.is_whitespace();
        out.push(c);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The README and every guide page, as (path from the root, text).
fn pages() -> Vec<(String, String)> {
    let mut pages = vec![("README.md".to_string(), read(&root().join("README.md")))];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    for p in docs {
        let name = format!("docs/{}", p.file_name().unwrap().to_string_lossy());
        pages.push((name, read(&p)));
    }
    pages
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// How a command is covered, or None.
enum Cover {
    Here,
    Elsewhere(&'static Elsewhere),
    NotOurs(&'static str),
}

fn cover(command: &str) -> Option<Cover> {
    if let Some(e) = ELSEWHERE.iter().find(|e| e.command == command) {
        return Some(Cover::Elsewhere(e));
    }
    if command.starts_with("rxalign ") && (runs_here(command) || stand_ins(command).is_some()) {
        return Some(Cover::Here);
    }
    let program = command.split_whitespace().next().unwrap_or("");
    NOT_OURS
        .iter()
        .find(|(p, _)| *p == program)
        .map(|(_, why)| Cover::NotOurs(why))
}

/// The `rxalign` arguments of a command: after `rxalign`, or after `--` of
/// a `cargo run` of the command (or of a plugin crate's binary, which shares
/// its subcommands).
fn rxalign_args(command: &str) -> Option<Vec<String>> {
    let words: Vec<String> = command.split_whitespace().map(String::from).collect();
    if words.first().map(String::as_str) == Some("rxalign") {
        return Some(words[1..].to_vec());
    }
    if command.starts_with("cargo run ") {
        let dashes = words.iter().position(|w| w == "--")?;
        return Some(words[dashes + 1..].to_vec());
    }
    None
}

fn rxalign() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rxalign"))
}

/// Every `--flag` the command passes is one its subcommand's `--help` names.
fn flags_are_known(args: &[String]) -> Result<(), String> {
    let path: Vec<&str> = args
        .iter()
        .take_while(|a| !a.starts_with('-'))
        .map(String::as_str)
        .collect();
    let out = rxalign().args(&path).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "`rxalign {} --help` failed: {}",
            path.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let unknown: Vec<&str> = args
        .iter()
        .filter(|a| a.starts_with("--"))
        .map(|a| a.split('=').next().unwrap_or(a))
        .filter(|flag| {
            !help.match_indices(flag).any(|(at, _)| {
                let next = help[at + flag.len()..].chars().next();
                !next.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_')
            })
        })
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "`rxalign {} --help` does not name {}",
            path.join(" "),
            unknown.join(", ")
        ))
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A page's working folder: copies of the repository files its commands
/// read, and a `bin/` with this test's `rxalign`.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["experiments", "examples", "tests/data"] {
            copy_dir(&root().join(sub), &dir.path().join(sub));
        }
        let bin = dir.path().join(".bin");
        std::fs::create_dir(&bin).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_rxalign"), bin.join("rxalign")).unwrap();
        Self { dir }
    }

    fn run(&self, command: &str) -> Output {
        let path = format!(
            "{}:{}",
            self.dir.path().join(".bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new("bash")
            .args(["-e", "-o", "pipefail", "-c", command])
            .current_dir(self.dir.path())
            .env("PATH", path)
            .env_remove("RXALIGN_SHARED_DATA")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

#[test]
fn every_command_the_guide_shows_is_run() {
    let mut problems = Vec::new();
    let mut shown = Vec::new();
    for (page, text) in pages() {
        match commands(&page, &text) {
            Ok(c) => shown.extend(c),
            Err(p) => problems.extend(p),
        }
    }
    assert!(shown.len() >= 10, "too few commands found: {shown:?}");
    let mut used = BTreeSet::new();
    let mut workspace: Option<(String, Workspace)> = None;
    let started = Instant::now();
    for s in &shown {
        let at = format!("{}:{}", s.page, s.line);
        match cover(&s.command) {
            None => problems.push(format!(
                "{at}: `{}` is neither run here (tests/guide.rs, runs_here) nor listed with the test or CI step that runs it (ELSEWHERE)",
                s.command
            )),
            Some(Cover::NotOurs(why)) => eprintln!("{at}: {} (not run: {why})", s.command),
            Some(Cover::Elsewhere(e)) => {
                used.insert(e.command);
                if let Some(args) = rxalign_args(&s.command)
                    && let Err(e) = flags_are_known(&args)
                {
                    problems.push(format!("{at}: `{}`: {e}", s.command));
                }
            }
            Some(Cover::Here) => {
                if workspace.as_ref().is_none_or(|(page, _)| *page != s.page) {
                    workspace = Some((s.page.clone(), Workspace::new()));
                }
                let (_, ws) = workspace.as_ref().unwrap();
                if let Some(write) = stand_ins(&s.command) {
                    write(ws.dir.path());
                }
                let t = Instant::now();
                let out = ws.run(&s.command);
                eprintln!("{at}: {} ({:.1} s)", s.command, t.elapsed().as_secs_f64());
                let stdout = String::from_utf8_lossy(&out.stdout);
                if !out.status.success() {
                    problems.push(format!(
                        "{at}: `{}` failed ({}):\n{stdout}\n{}",
                        s.command,
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    ));
                } else if let Some(want) = &s.output
                    && !want.is_empty()
                {
                    let got: Vec<&str> = stdout.lines().map(str::trim_end).collect();
                    let want: Vec<&str> = want.iter().map(String::as_str).collect();
                    if got != want {
                        problems.push(format!(
                            "{at}: `{}` printed\n{}\nbut the page shows\n{}",
                            s.command,
                            got.join("\n"),
                            want.join("\n")
                        ));
                    }
                }
            }
        }
    }
    for e in ELSEWHERE {
        if !used.contains(e.command) {
            problems.push(format!(
                "tests/guide.rs: ELSEWHERE lists `{}`, which no page shows any more",
                e.command
            ));
        }
        for r in e.runners {
            match r {
                Runner::Test { file, function } => {
                    if !read(&root().join(file)).contains(&format!("fn {function}(")) {
                        problems.push(format!(
                            "tests/guide.rs: `{}`: {file} has no fn {function}",
                            e.command
                        ));
                    }
                }
                Runner::Ci { holds } => {
                    if !read(&root().join(".ci/run")).contains(holds) {
                        problems.push(format!(
                            "tests/guide.rs: `{}`: .ci/run has no step running `{holds}`",
                            e.command
                        ));
                    }
                }
            }
        }
        assert!(!e.note.is_empty());
    }
    eprintln!(
        "{} commands in {:.1} s",
        shown.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// `rxalign dashboard runs` opens a window, which a test cannot look at:
/// without a display it must get past its arguments (no usage error) and
/// fail naming what it lacks, quickly, rather than hang.
#[test]
fn the_dashboard_command_accepts_its_arguments_and_needs_only_a_display() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("runs")).unwrap();
    let mut child = rxalign()
        .args(["dashboard", "runs"])
        .current_dir(tmp.path())
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("WAYLAND_SOCKET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("`rxalign dashboard runs` without a display still runs after 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(2), "a usage error: {stderr}");
    assert!(
        !out.status.success(),
        "it opened a window without a display?\n{stderr}"
    );
    assert!(
        stderr.contains("the dashboard on runs") && stderr.contains("window could not be opened"),
        "{stderr}"
    );
}

/// Every guide page is linked from the README; every relative link of the
/// README, the guide and `experiments/README.md` (which points into the
/// guide) reaches a file, and its `#anchor` a heading there.
#[test]
fn every_page_is_linked_from_the_readme_and_every_link_resolves() {
    let pages = pages();
    let readme = &pages[0].1;
    let mut problems = Vec::new();
    for (page, _) in &pages[1..] {
        let link = format!("]({page}");
        if !readme.contains(&link) {
            problems.push(format!("README.md does not link {page}"));
        }
    }
    let mut checked = pages.clone();
    let experiments = "experiments/README.md";
    checked.push((experiments.into(), read(&root().join(experiments))));
    for (page, text) in &checked {
        let base = root().join(page).parent().unwrap().to_path_buf();
        for (line, target) in links(text) {
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let path = if file.is_empty() {
                root().join(page)
            } else {
                base.join(file)
            };
            if !path.exists() {
                problems.push(format!("{page}:{line}: link to {target}: no such file"));
                continue;
            }
            if !anchor.is_empty() && path.extension().is_some_and(|e| e == "md") {
                let anchors = anchors(&read(&path));
                if !anchors.contains(anchor) {
                    problems.push(format!(
                        "{page}:{line}: link to {target}: no heading with that anchor"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// The targets of a page's inline links and images outside code, with
/// their lines.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut in_block = false;
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            found.push((n + 1, after[..end].to_string()));
            rest = &after[end..];
        }
    }
    found
}

/// GitHub's anchors of a page's headings: lower case, spaces as hyphens,
/// punctuation but hyphens and underscores dropped.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut in_block = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim();
        let slug: String = title
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        out.insert(slug);
    }
    out
}

/// The README stays a front page: the guide holds the reference.
#[test]
fn the_readme_stays_under_250_lines() {
    let lines = read(&root().join("README.md")).lines().count();
    assert!(
        lines < 250,
        "README.md has {lines} lines; move reference text to docs/"
    );
}

/// The extractor finds what a page shows and reports what it cannot read.
#[test]
fn commands_are_read_from_fenced_blocks_and_unknown_ones_are_named() {
    let page = "x\n```sh\nrxalign data stats data/c   # sizes\nrxalign frobnicate --fast \\\n    --now\n\n```\n\
                ```text\n$ rxalign plugins tensorboard\nline one\nline two\n```\n`rxalign inline` is prose\n";
    let shown = commands("p.md", page).unwrap();
    let got: Vec<(usize, &str)> = shown.iter().map(|s| (s.line, s.command.as_str())).collect();
    assert_eq!(
        got,
        [
            (3, "rxalign data stats data/c"),
            (4, "rxalign frobnicate --fast --now"),
            (9, "rxalign plugins tensorboard"),
        ]
    );
    assert_eq!(
        shown[2].output.as_deref(),
        Some(&["line one".to_string(), "line two".to_string()][..])
    );
    assert!(matches!(cover(&shown[0].command), Some(Cover::Here)));
    assert!(
        cover(&shown[1].command).is_none(),
        "an unknown command must not pass"
    );
    assert!(
        cover("rxalign run experiments/icu.ron").is_none(),
        "a long run must be listed, not run"
    );
    assert!(matches!(cover("sbatch job.sh"), Some(Cover::NotOurs(_))));
    assert_eq!(
        normalise("rxalign x --a \"2017 - 2019\"  # why"),
        "rxalign x --a \"2017 - 2019\""
    );
    let err = commands("p.md", "```\nrxalign x\n```\n").unwrap_err();
    assert!(
        err[0].contains("p.md:1: a fenced block names no language"),
        "{err:?}"
    );
    assert!(flags_are_known(&["plan".into(), "--emit".into()]).is_ok());
    let e = flags_are_known(&["plan".into(), "--emitt".into()]).unwrap_err();
    assert!(e.contains("--emitt"), "{e}");
}

/// The workspace's `rxalign-*` and example crates with the workspace crates
/// each links as a normal dependency, from `cargo metadata`.
fn workspace_edges() -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let members: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    packages
        .iter()
        .map(|p| {
            let links = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_string())
                .filter(|name| members.contains(name))
                .collect();
            (p["name"].as_str().unwrap().to_string(), links)
        })
        .collect()
}

/// The crate table of `docs/architecture.md`: each row's floor (`None` for
/// an example), crate and the crates it says it links.
fn crate_table() -> Vec<(Option<u32>, String, BTreeSet<String>)> {
    let text = read(&root().join("docs/architecture.md"));
    let ticked =
        |cell: &str| -> Vec<String> { cell.split('`').skip(1).step_by(2).map(str::to_string).collect() };
    text.lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| floor") && !l.starts_with("| ---"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            assert_eq!(cells.len(), 4, "docs/architecture.md: a row of 4 cells: {l}");
            let name = ticked(cells[1])
                .into_iter()
                .next()
                .unwrap_or_else(|| panic!("no crate in {l}"));
            (
                cells[0].parse().ok(),
                name,
                ticked(cells[3]).into_iter().collect(),
            )
        })
        .collect()
}

#[test]
fn the_crate_table_holds_every_dependency_edge() {
    let edges = workspace_edges();
    let table = crate_table();
    let listed: BTreeSet<&String> = table.iter().map(|(_, name, _)| name).collect();
    let members: BTreeSet<&String> = edges.keys().collect();
    assert_eq!(
        listed, members,
        "docs/architecture.md's crates against the workspace's"
    );
    let floor_of: std::collections::BTreeMap<&String, Option<u32>> =
        table.iter().map(|(floor, name, _)| (name, *floor)).collect();
    let mut last = 0;
    for (floor, name, links) in &table {
        assert_eq!(
            links, &edges[name],
            "docs/architecture.md: `{name}` links these workspace crates (cargo metadata)"
        );
        match floor {
            Some(floor) => {
                assert!(
                    *floor >= last,
                    "docs/architecture.md: `{name}` out of floor order"
                );
                last = *floor;
                for link in links {
                    let below = floor_of[link].is_some_and(|f| f < *floor);
                    assert!(
                        below,
                        "`{name}` (floor {floor}) links `{link}`, not on a floor below"
                    );
                }
            }
            None => assert!(
                links.iter().all(|l| floor_of[l].is_some()),
                "an example links only floors"
            ),
        }
    }
}
