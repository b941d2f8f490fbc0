//! Progress where people look: runs done of planned, each running run's
//! stage, step of total and rate. On a terminal, bars drawn with
//! `indicatif` on standard error; otherwise (a log file, a pipe, a cluster
//! job) plain lines, at most one per run every few seconds.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::runner::Outcome;

/// What the runner tells as it goes. Every method has a silent default.
pub trait Reporter: Send + Sync + std::fmt::Debug {
    /// A run begins (before its folder is looked at).
    fn run_started(&self, _run: &str) {}
    /// A stage begins: `index` of `count`, with its method name.
    fn stage(&self, _run: &str, _index: usize, _count: usize, _method: &str) {}
    /// The running stage has done `step` of `total`.
    fn progress(&self, _run: &str, _step: u64, _total: u64) {}
    /// Something worth a line: why a run is redone, resumed or kept.
    fn note(&self, _run: &str, _message: &str) {}
    /// A run ended.
    fn run_ended(&self, _run: &str, _outcome: &Outcome) {}
}

/// Tells nothing.
#[derive(Debug, Default)]
pub struct Silent;

impl Reporter for Silent {}

/// How often plain progress lines are printed per run.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct RunLine {
    bar: Option<ProgressBar>,
    stage: String,
    stage_started: Instant,
    last_line: Instant,
}

/// Progress on the terminal: bars on standard error when it is a terminal,
/// plain lines on standard output otherwise. Outcomes are always lines on
/// standard output (`finished RUN in S s`, `FAILED RUN: ...` on standard
/// error).
#[derive(Debug)]
pub struct TerminalReporter {
    multi: Option<MultiProgress>,
    overall: Option<ProgressBar>,
    runs: Mutex<HashMap<String, RunLine>>,
    total: usize,
    done: Mutex<usize>,
}

impl TerminalReporter {
    /// A reporter for `total` planned runs; bars when standard error is a
    /// terminal.
    pub fn new(total: usize) -> Self {
        Self::with_bars(total, std::io::stderr().is_terminal())
    }

    /// A reporter with or without bars.
    pub fn with_bars(total: usize, bars: bool) -> Self {
        let (multi, overall) = if bars {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4));
            let overall = multi.add(ProgressBar::new(total as u64));
            overall.set_style(
                ProgressStyle::with_template("runs {pos}/{len} [{bar:30}] {elapsed_precise} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            (Some(multi), Some(overall))
        } else {
            (None, None)
        };
        Self {
            multi,
            overall,
            runs: Mutex::new(HashMap::new()),
            total,
            done: Mutex::new(0),
        }
    }

    /// A line on standard output, above the bars. A closed standard
    /// output (`rxalign run ... | head -1`) loses the line, not the runs.
    fn line(&self, text: &str) {
        use std::io::Write as _;
        let plain = || {
            let _ = writeln!(std::io::stdout(), "{text}");
        };
        match &self.multi {
            Some(m) => m.suspend(plain),
            None => plain(),
        }
    }

    /// A line on standard error, above the bars.
    fn error_line(&self, text: &str) {
        use std::io::Write as _;
        let plain = || {
            let _ = writeln!(std::io::stderr(), "{text}");
        };
        match &self.multi {
            Some(m) => m.suspend(plain),
            None => plain(),
        }
    }

    fn runs(&self) -> std::sync::MutexGuard<'_, HashMap<String, RunLine>> {
        // A panic elsewhere never leaves this map half-updated.
        self.runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Reporter for TerminalReporter {
    fn run_started(&self, run: &str) {
        let bar = self.multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template("  {prefix} {msg} [{bar:24}] {pos}/{len} {per_sec} eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(run.to_string());
            bar.set_message("starting");
            bar
        });
        let now = Instant::now();
        self.runs().insert(
            run.to_string(),
            RunLine {
                bar,
                stage: String::new(),
                stage_started: now,
                last_line: now,
            },
        );
    }

    fn stage(&self, run: &str, index: usize, count: usize, method: &str) {
        let label = format!("stage {}/{count} {method}", index + 1);
        let mut runs = self.runs();
        if let Some(r) = runs.get_mut(run) {
            r.stage = label.clone();
            r.stage_started = Instant::now();
            match &r.bar {
                Some(bar) => {
                    bar.reset();
                    bar.set_length(0);
                    bar.set_message(label);
                }
                None => {
                    r.last_line = Instant::now();
                    drop(runs);
                    self.line(&format!("  {run}: {label}"));
                }
            }
        }
    }

    fn progress(&self, run: &str, step: u64, total: u64) {
        let mut runs = self.runs();
        let Some(r) = runs.get_mut(run) else { return };
        match &r.bar {
            Some(bar) => {
                bar.set_length(total);
                bar.set_position(step);
            }
            None => {
                if r.last_line.elapsed() < PLAIN_EVERY && step < total {
                    return;
                }
                r.last_line = Instant::now();
                let seconds = r.stage_started.elapsed().as_secs_f64();
                let rate = if seconds > 0.0 { step as f64 / seconds } else { 0.0 };
                let text = format!("  {run}: {} step {step}/{total} ({rate:.2} steps/s)", r.stage);
                drop(runs);
                self.line(&text);
            }
        }
    }

    fn note(&self, run: &str, message: &str) {
        self.line(&format!("  {run}: {message}"));
    }

    fn run_ended(&self, run: &str, outcome: &Outcome) {
        if let Some(r) = self.runs().remove(run)
            && let (Some(bar), Some(m)) = (r.bar, &self.multi)
        {
            bar.finish_and_clear();
            m.remove(&bar);
        }
        let done = {
            let mut d = self
                .done
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *d += 1;
            *d
        };
        if let Some(o) = &self.overall {
            o.set_position(done as u64);
        }
        match outcome {
            Outcome::Finished { seconds } => self.line(&format!(
                "  finished {run} in {seconds:.1} s ({done}/{} runs)",
                self.total
            )),
            Outcome::AlreadyFinished => self.line(&format!("  {run} already finished; not run again")),
            Outcome::Failed(e) => self.error_line(&format!("  FAILED {run}: {e}")),
            Outcome::Refused(e) => self.error_line(&format!("  REFUSED {run}: {e}")),
        }
        if done == self.total
            && let Some(o) = &self.overall
        {
            o.finish_and_clear();
        }
    }
}
