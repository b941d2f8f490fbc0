//! The ablation panel: final test metrics per group and method (mean ±
//! std over seeds, n) through the core's `compare`, with only the settings
//! that differ between groups; export as CSV, Markdown or LaTeX; and the
//! safety-accuracy plane with the Pareto front.

use std::collections::{BTreeMap, BTreeSet};

use eframe::egui::{self, Color32};
use egui_plot::{ColorConflictHandling, Legend, Line, MarkerShape, Plot, Points};
use rxalign_core::run::aggregate::render_table;
use rxalign_core::run::{Comparison, FinishedRun, Format, GROUND_TRUTH, compare, pareto_front};

use crate::app::Selection;
use crate::panels::palette;
use crate::store::{ExperimentData, RunStore};

/// Which DDI rate the plane's x axis shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaneMode {
    /// The mean over visits of each visit's share of interacting pairs (`ddi_rate`).
    PerVisit,
    /// Interacting pairs over all pairs of all visits (`ddi_rate_pooled`).
    Pooled,
}

impl PlaneMode {
    pub fn metric(self) -> &'static str {
        match self {
            Self::PerVisit => "ddi_rate",
            Self::Pooled => "ddi_rate_pooled",
        }
    }
}

/// The table of an experiment's finished runs.
#[derive(Debug)]
pub struct AblationTable {
    pub comparison: Comparison,
    /// The settings (ablation paths) whose value differs between groups,
    /// and each group's values.
    pub settings: Vec<String>,
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// The split every number is on (from the summaries).
    pub split: String,
}

impl AblationTable {
    pub fn of(runs: &[FinishedRun]) -> Self {
        let comparison = compare(runs);
        let mut per_group: BTreeMap<String, Vec<&BTreeMap<String, String>>> = BTreeMap::new();
        for r in runs {
            per_group
                .entry(r.record.group.clone())
                .or_default()
                .push(&r.record.overrides);
        }
        let keys: BTreeSet<&String> = runs.iter().flat_map(|r| r.record.overrides.keys()).collect();
        let mut values: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut settings = Vec::new();
        for key in keys {
            // Constant within each group (the seed is not) and different between groups.
            let mut per: BTreeMap<&String, BTreeSet<Option<&String>>> = BTreeMap::new();
            for (g, os) in &per_group {
                per.insert(g, os.iter().map(|o| o.get(key)).collect());
            }
            let constant = per.values().all(|s| s.len() == 1);
            let distinct: BTreeSet<_> = per.values().flatten().collect();
            if constant && distinct.len() > 1 {
                settings.push(key.clone());
                for (g, s) in per {
                    let v = s
                        .into_iter()
                        .next()
                        .flatten()
                        .cloned()
                        .unwrap_or_else(|| "(default)".into());
                    values.entry(g.clone()).or_default().insert(key.clone(), v);
                }
            }
        }
        let split = runs
            .first()
            .map_or_else(|| "test".into(), |r| r.summary.split.clone());
        Self {
            comparison,
            settings,
            values,
            split,
        }
    }

    /// Header and rows: group, method, the differing settings, seeds, then
    /// each column as `mean ± std` (CSV: `_mean` and `_std` columns).
    pub fn cells(&self, separate: bool) -> (Vec<String>, Vec<Vec<String>>) {
        let mut header: Vec<String> = vec!["group".into(), "method".into()];
        header.extend(self.settings.iter().cloned());
        header.push("seeds".into());
        for c in &self.comparison.columns {
            if separate {
                header.push(format!("{c}_mean"));
                header.push(format!("{c}_std"));
            } else {
                header.push(c.clone());
            }
        }
        let rows = self
            .comparison
            .rows
            .iter()
            .map(|(g, m, cells)| {
                let mut row = vec![g.clone(), m.clone()];
                for s in &self.settings {
                    row.push(
                        self.values
                            .get(g)
                            .and_then(|v| v.get(s))
                            .cloned()
                            .unwrap_or_default(),
                    );
                }
                row.push(self.comparison.seeds.get(g).map_or(0, Vec::len).to_string());
                for c in cells {
                    match (separate, c) {
                        (true, Some(c)) => row.extend([c.mean.to_string(), c.std.to_string()]),
                        (true, None) => row.extend([String::new(), String::new()]),
                        (false, Some(c)) if c.n > 1 => row.push(format!("{:.4} ± {:.4}", c.mean, c.std)),
                        (false, Some(c)) => row.push(format!("{:.4}", c.mean)),
                        (false, None) => row.push("n/a".into()),
                    }
                }
                row
            })
            .collect();
        (header, rows)
    }

    pub fn csv(&self) -> String {
        let (h, r) = self.cells(true);
        render_table(&h, &r, Format::Csv)
    }

    pub fn markdown(&self) -> String {
        let (h, r) = self.cells(false);
        render_table(&h, &r, Format::Markdown)
    }

    pub fn latex(&self) -> String {
        let (h, r) = self.cells(false);
        latex_table(
            &h,
            &r,
            &format!(
                "Final metrics on the {} split, mean ± sample std over seeds; ddi_rate is per visit, ddi_rate_pooled pooled over all pairs.",
                self.split
            ),
        )
    }
}

/// A `tabular` in a `table` with a caption; `&`, `%`, `_`, `#` and `±`
/// escaped.
pub fn latex_table(header: &[String], rows: &[Vec<String>], caption: &str) -> String {
    let esc = |s: &str| {
        s.replace('\\', "\\textbackslash{}")
            .replace('&', "\\&")
            .replace('%', "\\%")
            .replace('_', "\\_")
            .replace('#', "\\#")
            .replace('±', "$\\pm$")
    };
    let mut out = String::from("\\begin{table}\n\\centering\n");
    out.push_str(&format!(
        "\\begin{{tabular}}{{{}}}\n\\hline\n",
        "l".repeat(header.len())
    ));
    out.push_str(&header.iter().map(|h| esc(h)).collect::<Vec<_>>().join(" & "));
    out.push_str(" \\\\\n\\hline\n");
    for r in rows {
        out.push_str(&r.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" & "));
        out.push_str(" \\\\\n");
    }
    out.push_str(&format!(
        "\\hline\n\\end{{tabular}}\n\\caption{{{}}}\n\\end{{table}}\n",
        esc(caption)
    ));
    out
}

/// A renderer of the table in one format.
type Render = fn(&AblationTable) -> String;

/// The ablation panel's own state.
#[derive(Debug)]
pub struct AblationPanel {
    pub experiment: Option<String>,
    pub plane: PlaneMode,
    /// Leave the ground truth (Jaccard 1) out of the plane.
    pub hide_ground_truth: bool,
    /// Where "Save" writes the export (the format by its extension).
    pub path: String,
    /// The last export, as text (also what "Copy" put on the clipboard).
    pub last_export: Option<String>,
    pub message: Option<String>,
}

impl Default for AblationPanel {
    fn default() -> Self {
        Self {
            experiment: None,
            plane: PlaneMode::PerVisit,
            hide_ground_truth: true,
            path: "ablation.csv".into(),
            last_export: None,
            message: None,
        }
    }
}

fn finished(store: &RunStore, exp: &ExperimentData) -> Vec<FinishedRun> {
    store.runs_of(exp).filter_map(|r| r.finished()).collect()
}

impl AblationPanel {
    pub fn show(&mut self, ui: &mut egui::Ui, store: &RunStore, sel: &mut Selection) {
        if store.experiments.is_empty() {
            ui.label("No experiments.");
            return;
        }
        if self
            .experiment
            .as_ref()
            .is_none_or(|e| store.experiment(e).is_none())
        {
            self.experiment = sel
                .current()
                .map(|id| id.experiment.clone())
                .or_else(|| store.experiments.first().map(|e| e.name.clone()));
        }
        ui.horizontal(|ui| {
            egui::ComboBox::from_label("experiment")
                .selected_text(self.experiment.clone().unwrap_or_default())
                .show_ui(ui, |ui| {
                    for e in &store.experiments {
                        ui.selectable_value(&mut self.experiment, Some(e.name.clone()), &e.name);
                    }
                });
        });
        let Some(exp) = self.experiment.as_ref().and_then(|e| store.experiment(e)) else {
            return;
        };
        let runs = finished(store, exp);
        let total = exp.runs.len();
        if runs.is_empty() {
            ui.label(format!("No finished run yet ({total} run(s) in the experiment)."));
            return;
        }
        let table = AblationTable::of(&runs);
        ui.label(format!(
            "{} of {total} run(s) finished; final metrics on the `{}` split, mean ± sample std over seeds (n = seeds). ddi_rate: per visit; ddi_rate_pooled: pooled over all pairs.",
            runs.len(),
            table.split
        ));
        // Why DDI rates are n/a: runs whose data had no DDI graph.
        let without: Vec<&str> = store
            .runs_of(exp)
            .filter_map(|r| r.drugs.value.as_ref())
            .filter(|d| d.ddi.is_empty())
            .map(|d| d.ddi_origin.as_str())
            .collect();
        if let Some(origin) = without.first() {
            ui.colored_label(
                Color32::from_rgb(200, 120, 0),
                format!(
                    "ddi_rate and ddi_rate_pooled are n/a for {} run(s): their dataset has no DDI graph ({origin}), so no list's interactions are measured.",
                    without.len()
                ),
            );
        }
        ui.horizontal(|ui| {
            let exports: [(&str, Render); 3] = [
                ("CSV", AblationTable::csv),
                ("Markdown", AblationTable::markdown),
                ("LaTeX", AblationTable::latex),
            ];
            for (name, render) in exports {
                if ui.button(format!("Copy {name}")).clicked() {
                    let text = render(&table);
                    ui.ctx().copy_text(text.clone());
                    self.message = Some(format!("{name} copied to the clipboard"));
                    self.last_export = Some(text);
                }
            }
            ui.separator();
            let label = ui.label("file:");
            ui.add(egui::TextEdit::singleline(&mut self.path).desired_width(200.0))
                .labelled_by(label.id);
            if ui.button("Save").clicked() {
                let text = match std::path::Path::new(&self.path)
                    .extension()
                    .and_then(|e| e.to_str())
                {
                    Some("md") => table.markdown(),
                    Some("tex") => table.latex(),
                    _ => table.csv(),
                };
                self.message = Some(match std::fs::write(&self.path, &text) {
                    Ok(()) => format!("written to {}", self.path),
                    Err(e) => format!("could not write {}: {e}", self.path),
                });
                self.last_export = Some(text);
            }
            ui.label("(.csv, .md or .tex)");
        });
        if let Some(m) = &self.message {
            ui.label(m);
        }
        // Group and method make the pinned first column; the others scroll.
        let (header, rows) = table.cells(false);
        let definitions = rxalign_core::metrics::definitions();
        let definition = |name: &str| {
            definitions
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, d)| d.as_str())
                .or_else(|| rxalign_core::metrics::edit_definition(name))
        };
        super::pinned_table(
            ui,
            "ablation grid",
            rows.len() + 1,
            header.len() - 1,
            |ui, row, col| match (row, col) {
                (0, 0) => {
                    ui.strong("group · method");
                }
                (0, c) => {
                    let h = &header[c + 1];
                    let r = ui.strong(h);
                    if let Some(d) = definition(h) {
                        r.on_hover_text(d);
                    }
                }
                (r, 0) => {
                    ui.label(format!("{} · {}", rows[r - 1][0], rows[r - 1][1]));
                }
                (r, c) => {
                    ui.label(&rows[r - 1][c + 1]);
                }
            },
        );
        ui.label("Hover a column's title for its definition; the edit/... columns are the edits of the methods that start from a list (see `rxalign compare`).");
        ui.separator();
        self.plane(ui, &runs);
    }

    /// Jaccard against the DDI rate: a point per seed, each group's mean
    /// with ± std bars, and the Pareto front of the means.
    fn plane(&mut self, ui: &mut egui::Ui, runs: &[FinishedRun]) {
        ui.horizontal(|ui| {
            ui.strong("Safety-accuracy plane:");
            ui.radio_value(&mut self.plane, PlaneMode::PerVisit, "DDI rate per visit");
            ui.radio_value(&mut self.plane, PlaneMode::Pooled, "DDI rate pooled");
            ui.checkbox(&mut self.hide_ground_truth, "hide the ground truth");
        });
        let ddi = self.plane.metric();
        let mut seeds: BTreeMap<(String, String), Vec<[f64; 2]>> = BTreeMap::new();
        for r in runs {
            for m in &r.methods {
                if self.hide_ground_truth && m == GROUND_TRUTH {
                    continue;
                }
                if let (Some(d), Some(j)) = (r.summary.metric(m, ddi), r.summary.metric(m, "jaccard")) {
                    seeds
                        .entry((r.record.group.clone(), m.clone()))
                        .or_default()
                        .push([d, j]);
                }
            }
        }
        let mean = |v: &[[f64; 2]], k: usize| v.iter().map(|p| p[k]).sum::<f64>() / v.len() as f64;
        let means: Vec<(String, [f64; 2], [f64; 2])> = seeds
            .iter()
            .map(|((g, m), v)| {
                let c = [mean(v, 0), mean(v, 1)];
                let sd = |k: usize| {
                    if v.len() < 2 {
                        0.0
                    } else {
                        (v.iter().map(|p| (p[k] - c[k]).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
                    }
                };
                (format!("{g} · {m}"), c, [sd(0), sd(1)])
            })
            .collect();
        let front = pareto_front(&means.iter().map(|(_, c, _)| (c[0], c[1])).collect::<Vec<_>>());
        ui.label(format!(
            "x: {ddi} (lower is safer), y: jaccard; small dots are seeds, large ones group means with ± std bars; the dashed line joins the Pareto front of the means ({} point(s)).",
            front.len()
        ));
        Plot::new("plane")
            .legend(Legend::default().color_conflict_handling(ColorConflictHandling::PickFirst))
            .x_axis_label(ddi)
            .y_axis_label("jaccard")
            .height(ui.available_height().max(240.0))
            .show(ui, |p| {
                for (i, ((_, pts), (name, c, sd))) in seeds.iter().zip(&means).enumerate() {
                    let colour = palette(i);
                    p.points(
                        Points::new(name.as_str(), pts.clone())
                            .color(colour)
                            .radius(2.5)
                            .id((name, "seeds")),
                    );
                    p.points(
                        Points::new(name.as_str(), vec![*c])
                            .color(colour)
                            .radius(6.0)
                            .shape(MarkerShape::Diamond)
                            .filled(true)
                            .id((name, "mean")),
                    );
                    p.line(
                        Line::new(name.as_str(), vec![[c[0] - sd[0], c[1]], [c[0] + sd[0], c[1]]])
                            .color(colour)
                            .id((name, "xbar")),
                    );
                    p.line(
                        Line::new(name.as_str(), vec![[c[0], c[1] - sd[1]], [c[0], c[1] + sd[1]]])
                            .color(colour)
                            .id((name, "ybar")),
                    );
                }
                if front.len() > 1 {
                    p.line(
                        Line::new(
                            "Pareto front",
                            front.iter().map(|&(d, j)| [d, j]).collect::<Vec<_>>(),
                        )
                        .color(Color32::GRAY)
                        .style(egui_plot::LineStyle::dashed_dense()),
                    );
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latex_escapes_and_keeps_every_cell() {
        let t = latex_table(
            &["group".into(), "ddi_rate".into()],
            &[vec!["a&b".into(), "0.1 ± 0.02".into()]],
            "50% of it",
        );
        assert!(t.contains("group & ddi\\_rate \\\\"), "{t}");
        assert!(t.contains("a\\&b & 0.1 $\\pm$ 0.02 \\\\"), "{t}");
        assert!(t.contains("\\caption{50\\% of it}"), "{t}");
    }
}
