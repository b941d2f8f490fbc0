//! The runs panel: experiments and their runs grouped by configuration
//! without the seed, with status, stage and progress, and a text filter.

use eframe::egui::{self, Color32, RichText};
use rxalign_core::run::RunState;

use crate::app::Selection;
use crate::store::{RunData, RunStore};

/// The runs panel's own state.
#[derive(Debug, Default)]
pub struct RunsPanel {
    /// Shows the runs whose name, group, status or stage contains it.
    pub filter: String,
}

/// A run's state as the panel shows it, `unreadable` for a `run.json`
/// that cannot be read (a newer major format, a damaged file).
pub fn state_label(run: &RunData) -> &'static str {
    match run.state() {
        None => "unreadable",
        Some(RunState::Planned) => "planned",
        Some(RunState::Running) => "running",
        Some(RunState::Interrupted) => "interrupted",
        Some(RunState::Finished) => "finished",
        Some(RunState::Failed) => "failed",
    }
}

fn state_colour(run: &RunData) -> Color32 {
    match run.state() {
        None | Some(RunState::Failed) => Color32::from_rgb(200, 40, 40),
        Some(RunState::Planned) => Color32::GRAY,
        Some(RunState::Running) => Color32::from_rgb(40, 110, 210),
        Some(RunState::Interrupted) => Color32::from_rgb(220, 130, 0),
        Some(RunState::Finished) => Color32::from_rgb(30, 150, 60),
    }
}

/// `2/4 sft`, from the stage running now (or the last one of a finished run).
fn stage_text(run: &RunData) -> String {
    let Some(r) = run.record() else {
        return String::new();
    };
    match &r.current {
        Some(c) => format!("{}/{} {}", c.index + 1, r.stages.len(), c.method),
        None if r.status == rxalign_core::run::RunStatus::Finished => {
            format!("{} stages done", r.stages.len())
        }
        None => format!("{} stages", r.stages.len()),
    }
}

/// The share of the run done: stages done plus the running stage's share.
fn progress(run: &RunData) -> Option<(f32, String)> {
    let r = run.record()?;
    if r.status == rxalign_core::run::RunStatus::Finished {
        return Some((1.0, "done".into()));
    }
    let c = r.current.as_ref()?;
    let stages = r.stages.len().max(1) as f32;
    let within = if c.total > 0 {
        c.step as f32 / c.total as f32
    } else {
        0.0
    };
    let text = if c.total > 0 {
        format!("step {}/{}", c.step, c.total)
    } else {
        c.kind.clone()
    };
    Some(((c.index as f32 + within) / stages, text))
}

impl RunsPanel {
    fn matches(&self, run: &RunData) -> bool {
        let f = self.filter.trim().to_lowercase();
        f.is_empty()
            || [
                run.id.run.as_str(),
                run.id.experiment.as_str(),
                run.group(),
                state_label(run),
                &stage_text(run),
            ]
            .iter()
            .any(|s| s.to_lowercase().contains(&f))
    }

    pub fn show(&mut self, ui: &mut egui::Ui, store: &RunStore, sel: &mut Selection) {
        ui.horizontal(|ui| {
            let label = ui.label("Filter:");
            ui.add(egui::TextEdit::singleline(&mut self.filter).hint_text("name, group, status or stage"))
                .labelled_by(label.id);
            ui.label(format!("{} run(s) ticked", sel.runs.len()));
            if ui.button("Clear selection").clicked() {
                sel.runs.clear();
                sel.focus = None;
            }
        });
        ui.separator();
        egui::ScrollArea::vertical()
            .auto_shrink([false, false])
            .show(ui, |ui| {
                for exp in &store.experiments {
                    let runs: Vec<&RunData> = store.runs_of(exp).collect();
                    let count = |s: &str| runs.iter().filter(|r| state_label(r) == s).count();
                    let mut counts = format!("{} run(s)", runs.len());
                    for s in [
                        "finished",
                        "running",
                        "planned",
                        "failed",
                        "interrupted",
                        "unreadable",
                    ] {
                        let n = count(s);
                        if n > 0 {
                            counts.push_str(&format!(", {n} {s}"));
                        }
                    }
                    ui.heading(format!("Experiment {}", exp.name));
                    ui.label(counts);
                    if let Some(r) = &exp.record {
                        ui.label(RichText::new(format!("from {}", r.file)).weak());
                    }
                    if let Some(p) = &exp.problem {
                        ui.colored_label(Color32::from_rgb(200, 40, 40), format!("notice: {p}"));
                    }
                    // Groups in plan order.
                    let mut groups: Vec<(&str, Vec<&RunData>)> = Vec::new();
                    for r in runs.iter().copied().filter(|r| self.matches(r)) {
                        let group = if r.entry.problem.is_some() {
                            "(unreadable run.json)"
                        } else {
                            r.group()
                        };
                        match groups.iter_mut().find(|(g, _)| *g == group) {
                            Some((_, v)) => v.push(r),
                            None => groups.push((group, vec![r])),
                        }
                    }
                    for (group, members) in groups {
                        let title = format!(
                            "{} ({} run{})",
                            if group.is_empty() { "(no group)" } else { group },
                            members.len(),
                            if members.len() == 1 { "" } else { "s" }
                        );
                        egui::CollapsingHeader::new(title)
                            .id_salt((&exp.name, group))
                            .default_open(true)
                            .show(ui, |ui| {
                                if ui.small_button(format!("Tick all of {group}")).clicked() {
                                    sel.runs.extend(members.iter().map(|r| r.id.clone()));
                                }
                                egui::Grid::new((&exp.name, group, "grid"))
                                    .striped(true)
                                    .num_columns(6)
                                    .show(ui, |ui| {
                                        for run in &members {
                                            run_row(ui, run, sel);
                                        }
                                    });
                            });
                    }
                    ui.add_space(8.0);
                }
            });
    }
}

fn run_row(ui: &mut egui::Ui, run: &RunData, sel: &mut Selection) {
    let mut ticked = sel.runs.contains(&run.id);
    if ui.checkbox(&mut ticked, &run.id.run).changed() {
        if ticked {
            sel.runs.insert(run.id.clone());
            sel.focus = Some(run.id.clone());
        } else {
            sel.runs.remove(&run.id);
            if sel.focus.as_ref() == Some(&run.id) {
                sel.focus = None;
            }
        }
    }
    ui.colored_label(state_colour(run), state_label(run));
    ui.label(stage_text(run));
    match progress(run) {
        Some((share, text)) => {
            ui.add(egui::ProgressBar::new(share).desired_width(140.0).text(text));
        }
        None => {
            ui.label("");
        }
    }
    match run.record().and_then(|r| r.elapsed_seconds()) {
        Some(s) => ui.label(format!("{s:.1} s")),
        None => ui.label(""),
    };
    let seed = run.seed().map(|s| format!("seed {s}")).unwrap_or_default();
    ui.label(seed);
    ui.end_row();
    if let Some(problem) = &run.entry.problem {
        ui.label("");
        ui.colored_label(Color32::from_rgb(200, 40, 40), format!("notice: {problem}"));
        ui.end_row();
    }
    if let Some(error) = run.record().and_then(|r| r.error.as_ref()) {
        ui.label("");
        ui.colored_label(Color32::from_rgb(200, 40, 40), format!("error: {error}"));
        ui.end_row();
    }
    for p in [
        &run.metrics.problem,
        &run.summary.problem,
        &run.drugs.problem,
        &run.trajectories.problem,
    ]
    .into_iter()
    .flatten()
    {
        ui.label("");
        ui.colored_label(Color32::from_rgb(220, 130, 0), format!("notice: {p}"));
        ui.end_row();
    }
}
