//! The drugs panel: for a run and method, one row per drug of its test
//! predictions against the ground truth: prescribed, recommended, right,
//! added wrongly, missed, removed rightly and wrongly (the net edits from
//! the start lists that `summary.json` records), its share of the false
//! positives and of the interacting pairs; sortable; a click opens a visit
//! where it went wrong, or one where the method edited it (added or
//! removed), from the trajectories the run kept of that method.

use std::collections::{BTreeMap, HashMap, HashSet};

use eframe::egui;
use rxalign_core::run::{DrugsRecord, EditCounts, GROUND_TRUTH};
use rxalign_core::{PredictionRecord, Trajectory};

use crate::app::{OpenVisit, Selection};
use crate::store::{RunData, RunId, RunStore};

/// One drug's counts over the visits of a predictions file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DrugRow {
    pub code: String,
    pub name: String,
    /// Visits whose ground truth has it.
    pub prescribed: usize,
    /// Visits whose prediction has it.
    pub recommended: usize,
    pub right: usize,
    /// Recommended, not prescribed (false positives).
    pub wrongly_added: usize,
    /// Prescribed, not recommended.
    pub missed: usize,
    /// Not in the start list, in the final list, prescribed (`None`: the
    /// run records no edits).
    pub added_right: Option<usize>,
    /// Not in the start list, in the final list, not prescribed.
    pub added_wrong: Option<usize>,
    /// In the start list, not in the final list, not prescribed (`None`:
    /// the run records no edits).
    pub removed_right: Option<usize>,
    /// In the start list, not in the final list, but prescribed.
    pub removed_wrong: Option<usize>,
    /// Its share of all false positives of the method.
    pub fp_share: f64,
    /// Its share of the interacting pairs in the predicted lists (a pair
    /// counts for both of its drugs).
    pub ddi_share: f64,
    /// Visits where it was added wrongly or missed.
    pub wrong_visits: Vec<String>,
    /// The recorded visits where the method edited it, and how.
    pub edit_visits: Vec<(String, EditKind)>,
}

impl DrugRow {
    /// Edits counted by the summary (`None`: the run records no edits).
    pub fn edits(&self) -> Option<usize> {
        Some(self.added_right? + self.added_wrong? + self.removed_right? + self.removed_wrong?)
    }

    /// FLAME's per-drug figure: the share of its edits that were right.
    pub fn edits_right(&self) -> Option<f64> {
        let n = self.edits()?;
        let right = self.added_right? + self.removed_right?;
        (n > 0).then(|| right as f64 / n as f64)
    }
}

/// How a method edited a drug in a visit's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditKind {
    AddedRight,
    AddedWrong,
    RemovedRight,
    RemovedWrong,
}

impl EditKind {
    pub fn words(self) -> &'static str {
        match self {
            Self::AddedRight => "added rightly",
            Self::AddedWrong => "added wrongly",
            Self::RemovedRight => "removed rightly",
            Self::RemovedWrong => "removed wrongly",
        }
    }
}

/// Per drug (by code), the visits of `method`'s recorded trajectories
/// where its final list differs from its start list in that drug, judged
/// against the ground truth, in the trajectories' order.
pub fn edit_visits(trajectories: &[Trajectory], method: &str) -> BTreeMap<String, Vec<(String, EditKind)>> {
    let mut out: BTreeMap<String, Vec<(String, EditKind)>> = BTreeMap::new();
    for t in trajectories.iter().filter(|t| t.method == method) {
        let start: HashSet<&String> = t.start.iter().collect();
        let end: HashSet<&String> = t.final_list.iter().collect();
        let truth: HashSet<&String> = t.ground_truth.iter().collect();
        for &d in end.difference(&start) {
            let kind = if truth.contains(d) {
                EditKind::AddedRight
            } else {
                EditKind::AddedWrong
            };
            out.entry(d.clone()).or_default().push((t.visit_id.clone(), kind));
        }
        for &d in start.difference(&end) {
            let kind = if truth.contains(d) {
                EditKind::RemovedWrong
            } else {
                EditKind::RemovedRight
            };
            out.entry(d.clone()).or_default().push((t.visit_id.clone(), kind));
        }
    }
    out
}

/// The per-drug rows of `predicted` against `truth` (by visit id; visits
/// without a ground truth line are skipped), with names and DDI pairs from
/// `drugs`.
pub fn drug_rows(
    predicted: &[PredictionRecord],
    truth: &[PredictionRecord],
    drugs: Option<&DrugsRecord>,
) -> Vec<DrugRow> {
    let truth: HashMap<&str, HashSet<&str>> = truth
        .iter()
        .map(|t| (t.visit_id.as_str(), t.drugs.iter().map(String::as_str).collect()))
        .collect();
    let ddi: HashSet<(&str, &str)> = drugs
        .map(|d| {
            d.ddi
                .iter()
                .flat_map(|p| [(p.a.as_str(), p.b.as_str()), (p.b.as_str(), p.a.as_str())])
                .collect()
        })
        .unwrap_or_default();
    let mut rows: BTreeMap<String, DrugRow> = BTreeMap::new();
    let (mut fp_total, mut pairs_total) = (0usize, 0usize);
    let mut pairs_of: HashMap<String, usize> = HashMap::new();
    for p in predicted {
        let Some(gt) = truth.get(p.visit_id.as_str()) else {
            continue;
        };
        let list: HashSet<&str> = p.drugs.iter().map(String::as_str).collect();
        for &code in list.iter().chain(gt.iter()) {
            let row = rows.entry(code.to_string()).or_default();
            if row.code.is_empty() {
                row.code = code.to_string();
            }
        }
        for &code in gt {
            let row = rows.get_mut(code).expect("inserted above");
            row.prescribed += 1;
            if !list.contains(code) {
                row.missed += 1;
                row.wrong_visits.push(p.visit_id.clone());
            }
        }
        for &code in &list {
            let row = rows.get_mut(code).expect("inserted above");
            row.recommended += 1;
            if gt.contains(code) {
                row.right += 1;
            } else {
                row.wrongly_added += 1;
                fp_total += 1;
                row.wrong_visits.push(p.visit_id.clone());
            }
        }
        let sorted: Vec<&str> = {
            let mut v: Vec<&str> = list.iter().copied().collect();
            v.sort_unstable();
            v
        };
        for (i, a) in sorted.iter().enumerate() {
            for b in &sorted[i + 1..] {
                if ddi.contains(&(a, b)) {
                    pairs_total += 1;
                    *pairs_of.entry(a.to_string()).or_default() += 1;
                    *pairs_of.entry(b.to_string()).or_default() += 1;
                }
            }
        }
    }
    rows.into_values()
        .map(|mut r| {
            r.name = drugs
                .and_then(|d| d.drugs.iter().find(|e| e.code == r.code))
                .map(|e| e.name.clone())
                .unwrap_or_default();
            r.fp_share = if fp_total > 0 {
                r.wrongly_added as f64 / fp_total as f64
            } else {
                0.0
            };
            r.ddi_share = if pairs_total > 0 {
                pairs_of.get(&r.code).copied().unwrap_or(0) as f64 / pairs_total as f64
            } else {
                0.0
            };
            r
        })
        .collect()
}

/// Adds the net edits of `edits` to the rows (a drug only ever removed
/// gets a row of its own); every row gets a count (0 where never edited).
pub fn add_edits(rows: &mut Vec<DrugRow>, edits: &EditCounts, drugs: Option<&DrugsRecord>) {
    for (code, e) in &edits.drugs {
        if !rows.iter().any(|r| &r.code == code) && e.removed_right + e.removed_wrong > 0 {
            rows.push(DrugRow {
                code: code.clone(),
                name: drugs
                    .and_then(|d| d.drugs.iter().find(|x| &x.code == code))
                    .map(|x| x.name.clone())
                    .unwrap_or_default(),
                ..DrugRow::default()
            });
        }
    }
    for r in rows {
        let e = edits.drugs.get(&r.code);
        r.added_right = Some(e.map_or(0, |e| e.added_right));
        r.added_wrong = Some(e.map_or(0, |e| e.added_wrong));
        r.removed_right = Some(e.map_or(0, |e| e.removed_right));
        r.removed_wrong = Some(e.map_or(0, |e| e.removed_wrong));
    }
}

const HEADERS: [&str; 15] = [
    "drug",
    "prescribed",
    "recommended",
    "right",
    "wrongly added",
    "missed",
    "added rightly",
    "added wrongly",
    "removed rightly",
    "removed wrongly",
    "edits right",
    "share of false positives",
    "share of interacting pairs",
    "visits",
    "edited visits",
];

/// What the rows are of: the store's generation, the run and the method.
type RowsKey = (u64, RunId, String);

/// The rows, and what their removal counts are of.
type Rows = (Vec<DrugRow>, String);

/// The drugs panel's own state.
#[derive(Debug)]
pub struct DrugsPanel {
    pub run: Option<RunId>,
    pub method: Option<String>,
    /// The column sorted by, and whether descending.
    pub sort: (usize, bool),
    cache: Option<(RowsKey, Result<Rows, String>)>,
}

impl Default for DrugsPanel {
    fn default() -> Self {
        Self {
            run: None,
            method: None,
            sort: (4, true),
            cache: None,
        }
    }
}

fn sort_rows(rows: &mut [DrugRow], (col, desc): (usize, bool)) {
    rows.sort_by(|a, b| {
        let o = match col {
            0 => a.code.cmp(&b.code),
            1 => a.prescribed.cmp(&b.prescribed),
            2 => a.recommended.cmp(&b.recommended),
            3 => a.right.cmp(&b.right),
            4 => a.wrongly_added.cmp(&b.wrongly_added),
            5 => a.missed.cmp(&b.missed),
            6 => a.added_right.cmp(&b.added_right),
            7 => a.added_wrong.cmp(&b.added_wrong),
            8 => a.removed_right.cmp(&b.removed_right),
            9 => a.removed_wrong.cmp(&b.removed_wrong),
            10 => a
                .edits_right()
                .unwrap_or(-1.0)
                .total_cmp(&b.edits_right().unwrap_or(-1.0)),
            11 => a.fp_share.total_cmp(&b.fp_share),
            12 => a.ddi_share.total_cmp(&b.ddi_share),
            13 => a.wrong_visits.len().cmp(&b.wrong_visits.len()),
            _ => a.edit_visits.len().cmp(&b.edit_visits.len()),
        };
        if desc { o.reverse() } else { o }.then_with(|| a.code.cmp(&b.code))
    });
}

impl DrugsPanel {
    pub fn show(&mut self, ui: &mut egui::Ui, store: &RunStore, sel: &mut Selection) {
        let with: Vec<&RunData> = store
            .all_runs()
            .filter(|r| !r.prediction_methods().is_empty())
            .collect();
        if with.is_empty() {
            ui.label("No run has written predictions yet (they come with the summary, when a run finishes).");
            return;
        }
        if self
            .run
            .as_ref()
            .is_none_or(|id| !with.iter().any(|r| &r.id == id))
        {
            let current = sel
                .current()
                .filter(|id| with.iter().any(|r| &r.id == *id))
                .cloned();
            self.run = current.or_else(|| Some(with[0].id.clone()));
        }
        let Some(run) = self.run.as_ref().and_then(|id| store.run(id)) else {
            return;
        };
        let methods = run.prediction_methods();
        if self.method.as_ref().is_none_or(|m| !methods.contains(m)) {
            self.method = methods.last().cloned();
        }
        let split = run
            .summary
            .value
            .as_ref()
            .map_or_else(|| "test".into(), |s| s.split.clone());
        ui.horizontal(|ui| {
            egui::ComboBox::from_label("run")
                .selected_text(run.id.to_string())
                .show_ui(ui, |ui| {
                    for r in &with {
                        ui.selectable_value(&mut self.run, Some(r.id.clone()), r.id.to_string());
                    }
                });
            egui::ComboBox::from_label("method")
                .selected_text(self.method.clone().unwrap_or_default())
                .show_ui(ui, |ui| {
                    for m in &methods {
                        ui.selectable_value(&mut self.method, Some(m.clone()), m);
                    }
                });
            ui.label(format!("split: {split} (the run's predictions files)"));
        });
        let (Some(run), Some(method)) = (
            self.run.as_ref().and_then(|id| store.run(id)),
            self.method.clone(),
        ) else {
            return;
        };
        let key = (store.generation(), run.id.clone(), method.clone());
        if self.cache.as_ref().is_none_or(|(k, _)| *k != key) {
            let rows = run.read_predictions(&method).and_then(|p| {
                let truth = run.read_predictions(GROUND_TRUTH)?;
                let drugs = run.drugs.value.as_ref();
                let mut rows = drug_rows(&p, &truth, drugs);
                let mut recorded = edit_visits(trajectories_of(run), &method);
                for r in &mut rows {
                    r.edit_visits = recorded.remove(&r.code).unwrap_or_default();
                }
                let edits = run
                    .summary
                    .value
                    .as_ref()
                    .and_then(|s| s.methods.get(&method))
                    .and_then(|m| m.edits.as_ref());
                let population = match edits {
                    Some(e) => {
                        add_edits(&mut rows, e, drugs);
                        for r in &mut rows {
                            if r.edit_visits.is_empty() {
                                r.edit_visits = recorded.remove(&r.code).unwrap_or_default();
                            }
                        }
                        format!(
                            "added / removed rightly / wrongly: net edits (added: in the final list, not in the start list; removed: in the start list, not in the final list; rightly when that agrees with the prescription) over all {} {} visits, counted from {}; edits right: the share of a drug's edits that were right",
                            e.visits, e.split, e.starts
                        )
                    }
                    None => "added / removed rightly / wrongly: n/a, the run's summary records no edits (runs of format 1.0)".into(),
                };
                Ok((rows, population))
            });
            self.cache = Some((key, rows));
        }
        let (rows, population) = match self.cache.as_ref().map(|(_, r)| r) {
            Some(Ok(rows)) => rows.clone(),
            Some(Err(e)) => {
                ui.colored_label(ui.visuals().warn_fg_color, format!("notice: {e}"));
                return;
            }
            None => return,
        };
        let mut rows = rows;
        sort_rows(&mut rows, self.sort);
        let summary = run.summary.value.as_ref().and_then(|s| s.methods.get(&method));
        if let Some(m) =
            summary.filter(|m| m.metrics.keys().any(|k| rxalign_core::metrics::is_edit_metric(k)))
        {
            egui::CollapsingHeader::new(format!(
                "How {method} edits: its edit metrics on the {split} split"
            ))
            .id_salt(("edit metrics", &run.id, &method))
            .default_open(true)
            .show(ui, |ui| {
                // The definitions are long: the table scrolls sideways, the
                // metric's name in place.
                let metrics = rxalign_core::metrics::EDIT_METRICS;
                super::pinned_table(ui, "edit metrics grid", metrics.len() + 1, 3, |ui, row, col| {
                    if row == 0 {
                        ui.strong(["metric", "value", "definition"][col]);
                        return;
                    }
                    let (name, definition) = metrics[row - 1];
                    match col {
                        0 => {
                            ui.label(name);
                        }
                        1 => {
                            let value = m.metrics.get(name).copied().flatten();
                            // Counts as counts, shares and sums to four places.
                            ui.label(value.map_or_else(
                                || "n/a".into(),
                                |v| {
                                    if v.fract() == 0.0 {
                                        format!("{v:.0}")
                                    } else {
                                        format!("{v:.4}")
                                    }
                                },
                            ));
                        }
                        _ => {
                            ui.label(definition);
                        }
                    }
                });
                if let Some(kept) = &m.trajectories {
                    ui.label(kept.describe());
                }
            });
        }
        ui.label("Click a column's title to sort by it; `open` shows a visit where the drug went wrong, and `edits` one where the method edited it, in the Trajectory panel (where the run recorded one).");
        ui.label(format!(
            "counts: the {split} predictions of {method} against the ground truth; {population}"
        ));
        let ts = trajectories_of(run);
        let has_own = |v: &str| ts.iter().any(|t| t.visit_id == v && t.method == method);
        let traj: HashSet<&str> = ts.iter().map(|t| t.visit_id.as_str()).collect();
        let open = |v: &str| OpenVisit {
            run: run.id.clone(),
            visit: v.to_string(),
            method: has_own(v).then(|| method.clone()),
        };
        let count = |n: Option<usize>| n.map_or_else(|| "n/a".into(), |n| n.to_string());
        egui::ScrollArea::vertical()
            .auto_shrink([false, false])
            .show(ui, |ui| {
                super::pinned_table(ui, "drugs grid", rows.len() + 1, HEADERS.len(), |ui, row, col| {
                    if row == 0 {
                        let arrow = match self.sort {
                            (c, true) if c == col => " (v)",
                            (c, false) if c == col => " (^)",
                            _ => "",
                        };
                        if ui.button(format!("{}{arrow}", HEADERS[col])).clicked() {
                            self.sort = if self.sort.0 == col {
                                (col, !self.sort.1)
                            } else {
                                (col, true)
                            };
                        }
                        return;
                    }
                    let r = &rows[row - 1];
                    match col {
                        0 => {
                            ui.label(if r.name.is_empty() {
                                r.code.clone()
                            } else {
                                format!("{} ({})", r.code, r.name)
                            });
                        }
                        1..=5 => {
                            let n =
                                [r.prescribed, r.recommended, r.right, r.wrongly_added, r.missed][col - 1];
                            ui.label(n.to_string());
                        }
                        6..=9 => {
                            ui.label(count(
                                [r.added_right, r.added_wrong, r.removed_right, r.removed_wrong][col - 6],
                            ));
                        }
                        10 => {
                            ui.label(
                                r.edits_right()
                                    .map_or_else(|| "-".into(), |x| format!("{:.0}%", 100.0 * x)),
                            );
                        }
                        11 => {
                            ui.label(format!("{:.1}%", 100.0 * r.fp_share));
                        }
                        12 => {
                            ui.label(format!("{:.1}%", 100.0 * r.ddi_share));
                        }
                        13 => match r.wrong_visits.iter().find(|v| traj.contains(v.as_str())) {
                            Some(v) => {
                                if ui
                                    .button(format!("open {v}"))
                                    .on_hover_text(format!("{} visit(s) went wrong", r.wrong_visits.len()))
                                    .clicked()
                                {
                                    sel.open_visit = Some(open(v));
                                }
                            }
                            None => {
                                ui.label(format!("{} wrong", r.wrong_visits.len()));
                            }
                        },
                        _ => {
                            if r.edit_visits.is_empty() {
                                ui.label("-");
                                return;
                            }
                            let counted = r.edits().map_or_else(String::new, |n| format!(" of {n}"));
                            ui.menu_button(format!("edits ({}{counted})", r.edit_visits.len()), |ui| {
                                for (v, kind) in &r.edit_visits {
                                    if ui.button(format!("open {v}: {}", kind.words())).clicked() {
                                        sel.open_visit = Some(OpenVisit {
                                            run: run.id.clone(),
                                            visit: v.clone(),
                                            method: Some(method.clone()),
                                        });
                                        ui.close();
                                    }
                                }
                            })
                            .response
                            .on_hover_text(format!(
                                "{} recorded visit(s) where {method} edited this drug, of the edits counted",
                                r.edit_visits.len()
                            ));
                        }
                    }
                });
            });
    }
}

fn trajectories_of(run: &RunData) -> &[Trajectory] {
    run.trajectories.value.as_deref().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use rxalign_core::run::{DdiPair, DrugEntry, RUN_FORMAT};

    use super::*;

    fn p(visit: &str, drugs: &[&str]) -> PredictionRecord {
        PredictionRecord {
            visit_id: visit.into(),
            drugs: drugs.iter().map(|s| s.to_string()).collect(),
            scores: None,
        }
    }

    #[test]
    fn counts_and_shares_per_drug() {
        let drugs = DrugsRecord {
            format: RUN_FORMAT,
            source: "t".into(),
            drugs: vec![DrugEntry {
                index: 0,
                code: "A".into(),
                name: "alpha".into(),
            }],
            ddi_origin: "t".into(),
            ddi_sha256: None,
            ddi: vec![DdiPair {
                a: "A".into(),
                b: "C".into(),
                severity: None,
            }],
        };
        let truth = [p("1", &["A", "B"]), p("2", &["B"])];
        let pred = [p("1", &["A", "C"]), p("2", &["A", "C"]), p("3", &["A"])];
        let rows = drug_rows(&pred, &truth, Some(&drugs));
        let get = |c: &str| rows.iter().find(|r| r.code == c).unwrap();
        let a = get("A");
        assert_eq!(
            (a.prescribed, a.recommended, a.right, a.wrongly_added, a.missed),
            (1, 2, 1, 1, 0)
        );
        assert_eq!(a.name, "alpha");
        assert_eq!(a.wrong_visits, vec!["2".to_string()]);
        let b = get("B");
        assert_eq!((b.prescribed, b.missed), (2, 2));
        let c = get("C");
        assert_eq!(c.wrongly_added, 2);
        // 3 false positives: A once, C twice.
        assert!((a.fp_share - 1.0 / 3.0).abs() < 1e-12 && (c.fp_share - 2.0 / 3.0).abs() < 1e-12);
        // Two interacting pairs (A, C), each drug in both.
        assert_eq!((a.ddi_share, c.ddi_share, b.ddi_share), (1.0, 1.0, 0.0));
        assert_eq!(a.removed_right, None);
        // The net edits of the summary: B removed wrongly twice, D (in no
        // list) removed rightly once.
        let mut rows = rows;
        let mut edits = EditCounts::new("test", "the start lists the policy decoded from");
        edits.drugs.insert(
            "B".into(),
            rxalign_core::run::DrugEditCounts {
                removed_wrong: 2,
                ..Default::default()
            },
        );
        edits.drugs.insert(
            "D".into(),
            rxalign_core::run::DrugEditCounts {
                removed_right: 1,
                ..Default::default()
            },
        );
        add_edits(&mut rows, &edits, Some(&drugs));
        let get = |c: &str| rows.iter().find(|r| r.code == c).unwrap();
        assert_eq!(
            (get("B").removed_right, get("B").removed_wrong),
            (Some(0), Some(2))
        );
        assert_eq!((get("D").removed_right, get("D").prescribed), (Some(1), 0));
        assert_eq!(get("A").removed_wrong, Some(0));
    }
}
