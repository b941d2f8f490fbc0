//! The trajectory panel: one inspected visit of a run, step by step, with
//! a per-drug timeline, and the same visit in another run (or method)
//! beside it with the differences marked.

use std::collections::{BTreeSet, HashSet};

use eframe::egui::{self, Color32, RichText};
use rxalign_core::Trajectory;
use rxalign_core::run::{DrugsRecord, GROUND_TRUTH, Mention, MentionKind, NamedCode, VisitDetails};
use rxalign_core::trajectory::ActionRecord;

use crate::app::Selection;
use crate::store::{RunData, RunId, RunStore};

/// A drug's state in a list, judged against the ground truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellState {
    /// In the list and in the ground truth.
    Right,
    /// In the list, not in the ground truth (overprescribed).
    Extra,
    /// In the ground truth, not in the list.
    Missing,
    /// In neither.
    Absent,
}

impl CellState {
    fn of(in_list: bool, in_truth: bool) -> Self {
        match (in_list, in_truth) {
            (true, true) => Self::Right,
            (true, false) => Self::Extra,
            (false, true) => Self::Missing,
            (false, false) => Self::Absent,
        }
    }

    /// The cell's symbol and colour.
    fn look(self) -> (&'static str, Color32) {
        match self {
            Self::Right => ("ok", Color32::from_rgb(46, 160, 67)),
            Self::Extra => ("+", Color32::from_rgb(215, 58, 73)),
            Self::Missing => ("-", Color32::from_rgb(230, 160, 30)),
            Self::Absent => ("", Color32::TRANSPARENT),
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Self::Right => "right",
            Self::Extra => "extra",
            Self::Missing => "missing",
            Self::Absent => "absent",
        }
    }
}

/// One row of the per-drug timeline: a drug the episode touched, its state
/// in the start list and after each step, and whether it is in an
/// interacting pair of that list.
#[derive(Clone, Debug, PartialEq)]
pub struct TimelineRow {
    pub code: String,
    pub cells: Vec<(CellState, bool)>,
}

/// The DDI pairs of a run's `drugs.json`, both ways round.
fn ddi_pairs(drugs: Option<&DrugsRecord>) -> HashSet<(String, String)> {
    let mut out = HashSet::new();
    for p in drugs.map(|d| d.ddi.as_slice()).unwrap_or_default() {
        out.insert((p.a.clone(), p.b.clone()));
        out.insert((p.b.clone(), p.a.clone()));
    }
    out
}

/// The per-drug timeline of a trajectory: one row per drug in the start
/// list, an action, any list or the ground truth (in that order of first
/// appearance); one column for the start list and one after each step.
pub fn timeline(t: &Trajectory, ddi: &HashSet<(String, String)>) -> Vec<TimelineRow> {
    let mut order: Vec<String> = Vec::new();
    let mut push = |c: &String| {
        if !order.contains(c) {
            order.push(c.clone());
        }
    };
    t.start.iter().for_each(&mut push);
    for s in &t.steps {
        if let ActionRecord::Add(c) | ActionRecord::Remove(c) = &s.action {
            push(c);
        }
        s.list.iter().for_each(&mut push);
    }
    t.ground_truth.iter().for_each(&mut push);
    let truth: HashSet<&String> = t.ground_truth.iter().collect();
    let lists: Vec<&Vec<String>> = std::iter::once(&t.start)
        .chain(t.steps.iter().map(|s| &s.list))
        .collect();
    order
        .into_iter()
        .map(|code| {
            let cells = lists
                .iter()
                .map(|list| {
                    let inside = list.contains(&code);
                    let interacts = inside
                        && list
                            .iter()
                            .any(|o| *o != code && ddi.contains(&(code.clone(), o.clone())));
                    (CellState::of(inside, truth.contains(&code)), interacts)
                })
                .collect();
            TimelineRow { code, cells }
        })
        .collect()
}

/// The note cut into pieces: plain text, and mentions with their kind, in
/// order. Mentions that overlap, run past the note or cut a character are
/// skipped (a hand-edited file), never a panic.
pub fn note_segments<'a>(note: &'a str, mentions: &[Mention]) -> Vec<(&'a str, Option<MentionKind>)> {
    note_marks(note, mentions)
        .into_iter()
        .map(|(text, m)| (text, m.map(|m| m.kind)))
        .collect()
}

/// [`note_segments`], each mention whole (its kind and whether the note
/// negates it).
pub fn note_marks<'a, 'm>(note: &'a str, mentions: &'m [Mention]) -> Vec<(&'a str, Option<&'m Mention>)> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut sorted: Vec<&Mention> = mentions.iter().collect();
    sorted.sort_by_key(|m| m.start);
    for m in sorted {
        let ok = m.start >= at
            && m.start < m.end
            && m.end <= note.len()
            && note.is_char_boundary(m.start)
            && note.is_char_boundary(m.end);
        if !ok {
            continue;
        }
        if m.start > at {
            out.push((&note[at..m.start], None));
        }
        out.push((&note[m.start..m.end], Some(m)));
        at = m.end;
    }
    if at < note.len() {
        out.push((&note[at..], None));
    }
    out
}

/// The background of a mention the note negates (`NKDA`, `denies chest
/// pain`): grey, whatever its kind, so that it never reads as a finding.
pub const NEGATED_COLOUR: Color32 = Color32::from_rgb(120, 120, 120);

/// The background of a mention in the note.
pub fn mention_colour(kind: MentionKind) -> Color32 {
    match kind {
        MentionKind::Drug => Color32::from_rgb(66, 133, 244),
        MentionKind::Condition => Color32::from_rgb(142, 68, 173),
        MentionKind::Allergy => Color32::from_rgb(215, 58, 73),
    }
}

fn plural(kind: MentionKind) -> &'static str {
    match kind {
        MentionKind::Drug => "drugs",
        MentionKind::Condition => "conditions",
        MentionKind::Allergy => "allergies",
    }
}

/// `code name; code name` of named codes, or `(none)`.
fn named_codes(codes: &[NamedCode]) -> String {
    if codes.is_empty() {
        return "(none)".into();
    }
    codes
        .iter()
        .map(|c| {
            if c.name.is_empty() || c.name == c.code {
                c.code.clone()
            } else {
                format!("{} {}", c.code, c.name)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The visit: who, the codes with their names, the note with its mentions
/// highlighted, the previous visit's drugs and the ground truth.
fn visit_section(ui: &mut egui::Ui, v: &VisitDetails, drugs: Option<&DrugsRecord>) {
    let codes = |c: &[String]| {
        if c.is_empty() {
            "(empty)".to_string()
        } else {
            c.iter().map(|c| label(drugs, c)).collect::<Vec<_>>().join(", ")
        }
    };
    let sex = match v.sex {
        Some(rxalign_core::Sex::Female) => "female",
        Some(rxalign_core::Sex::Male) => "male",
        None => "sex not recorded",
    };
    let age = v
        .age
        .map_or_else(|| "age not recorded".into(), |a| format!("age {a:.0}"));
    ui.label(format!(
        "visit {} of patient {} ({} split): {age}, {sex}{}",
        v.visit_id,
        v.patient_id,
        v.split,
        v.time.as_ref().map(|t| format!(", {t}")).unwrap_or_default()
    ));
    ui.label(format!(
        "diagnoses ({}): {}",
        v.diagnoses.len(),
        named_codes(&v.diagnoses)
    ));
    ui.label(format!(
        "procedures ({}): {}",
        v.procedures.len(),
        named_codes(&v.procedures)
    ));
    ui.label(match &v.previous_drugs {
        Some(p) => format!("previous visit's drugs ({}): {}", p.len(), codes(p)),
        None => "previous visit's drugs: no earlier visit".into(),
    });
    ui.label(format!(
        "ground truth ({}): {}",
        v.ground_truth.len(),
        codes(&v.ground_truth)
    ));
    match &v.note {
        None => {
            ui.label("note: none for this visit");
        }
        Some(note) => {
            let mut counts = [0usize; 3];
            for m in v.mentions.iter().filter(|m| !m.negated) {
                counts[m.kind as usize] += 1;
            }
            let negated = v.mentions.iter().filter(|m| m.negated).count();
            ui.horizontal_wrapped(|ui| {
                ui.label(format!(
                    "note{}: highlighted mentions of",
                    if v.note_cut {
                        " (cut to its first 16 KiB)"
                    } else {
                        ""
                    }
                ));
                for kind in [MentionKind::Drug, MentionKind::Condition, MentionKind::Allergy] {
                    ui.label(
                        RichText::new(format!(" {} ({}) ", plural(kind), counts[kind as usize]))
                            .color(Color32::WHITE)
                            .background_color(mention_colour(kind)),
                    );
                }
                ui.label(
                    RichText::new(format!(" negated ({negated}) "))
                        .color(Color32::WHITE)
                        .background_color(NEGATED_COLOUR),
                )
                .on_hover_text("said to be absent (`NKDA`, `no known drug allergies`, `denies chest pain`): a negation, not a finding");
            });
            let mut job = egui::text::LayoutJob::default();
            let font = egui::TextStyle::Body.resolve(ui.style());
            let plain = ui.visuals().text_color();
            for (text, mention) in note_marks(note, &v.mentions) {
                let format = match mention {
                    None => egui::TextFormat::simple(font.clone(), plain),
                    Some(m) => egui::TextFormat {
                        background: if m.negated {
                            NEGATED_COLOUR
                        } else {
                            mention_colour(m.kind)
                        },
                        italics: m.negated,
                        ..egui::TextFormat::simple(font.clone(), Color32::WHITE)
                    },
                };
                job.append(&super::drawable(ui, text), 0.0, format);
            }
            job.wrap.max_width = ui.available_width();
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.add(egui::Label::new(job).wrap());
            });
        }
    }
}

/// Which of a method's recorded visits the picker lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VisitFilter {
    #[default]
    All,
    /// The final list differs from the start list.
    Edited,
    /// A drug of the start list that is in the ground truth is not in the
    /// final list.
    RemovedTrue,
    /// The final list has an interacting pair that the start list did not
    /// have (one of its drugs, or both, added).
    AddedInteracting,
}

impl VisitFilter {
    pub const ALL: [VisitFilter; 4] = [Self::All, Self::Edited, Self::RemovedTrue, Self::AddedInteracting];

    pub fn label(self) -> &'static str {
        match self {
            Self::All => "every recorded visit",
            Self::Edited => "where the policy edited",
            Self::RemovedTrue => "where it removed a true drug",
            Self::AddedInteracting => "where it added an interacting pair",
        }
    }

    /// Whether the picker lists `t` (`ddi`: the run's pairs, both ways round).
    pub fn keeps(self, t: &Trajectory, ddi: &HashSet<(String, String)>) -> bool {
        let start: HashSet<&String> = t.start.iter().collect();
        let end: HashSet<&String> = t.final_list.iter().collect();
        match self {
            Self::All => true,
            Self::Edited => start != end,
            Self::RemovedTrue => t
                .start
                .iter()
                .any(|d| t.ground_truth.contains(d) && !end.contains(d)),
            Self::AddedInteracting => t.final_list.iter().enumerate().any(|(i, a)| {
                t.final_list[i + 1..].iter().any(|b| {
                    ddi.contains(&(a.clone(), b.clone())) && !(start.contains(a) && start.contains(b))
                })
            }),
        }
    }
}

/// The method the panel opens a run on: the last stage of `run.json` whose
/// method has recorded trajectories (the last trained one, in a run that
/// trains), else the last method of the trajectories; never the ground
/// truth where another method is there.
pub fn last_trained_method(run: &RunData) -> Option<String> {
    let ts = trajectories(run);
    let has = |m: &str| ts.iter().any(|t| t.method == m);
    run.record()
        .and_then(|r| {
            r.stages
                .iter()
                .rev()
                .find(|s| has(&s.method))
                .map(|s| s.method.clone())
        })
        .or_else(|| {
            ts.iter()
                .rev()
                .find(|t| t.method != GROUND_TRUTH)
                .or(ts.last())
                .map(|t| t.method.clone())
        })
}

/// The trajectory panel's own state.
#[derive(Debug, Default)]
pub struct TrajectoryPanel {
    pub run: Option<RunId>,
    /// The method whose visits the picker lists.
    pub method: Option<String>,
    pub filter: VisitFilter,
    /// Index into the run's `trajectories.jsonl`.
    pub visit: usize,
    /// What the visit picker listed at the last frame (indices into the
    /// run's `trajectories.jsonl`, in its order).
    pub listed: Vec<usize>,
    pub step: Option<usize>,
    /// The same visit in another run (or by another method), beside it.
    pub other: Option<(RunId, usize)>,
}

/// A visit in the picker: its id and what the method did to its list.
fn visit_label(t: &Trajectory) -> String {
    let start: HashSet<&String> = t.start.iter().collect();
    let end: HashSet<&String> = t.final_list.iter().collect();
    let added = end.difference(&start).count();
    let removed = start.difference(&end).count();
    if added + removed == 0 {
        format!("{} · unchanged", t.visit_id)
    } else {
        format!("{} · edited: {added} added, {removed} removed", t.visit_id)
    }
}

fn label(drugs: Option<&DrugsRecord>, code: &str) -> String {
    drugs.map_or_else(|| code.to_string(), |d| d.label(code))
}

fn trajectories(run: &RunData) -> &[Trajectory] {
    run.trajectories.value.as_deref().unwrap_or_default()
}

impl TrajectoryPanel {
    pub fn show(&mut self, ui: &mut egui::Ui, store: &RunStore, sel: &mut Selection) {
        let with: Vec<&RunData> = store.all_runs().filter(|r| !trajectories(r).is_empty()).collect();
        if with.is_empty() {
            ui.label("No run has recorded trajectories yet (`eval: (trajectories: N)` in the experiment).");
            return;
        }
        if let Some(open) = sel.open_visit.take()
            && let Some(run) = store.run(&open.run)
        {
            let ts = trajectories(run);
            let of_method = |t: &Trajectory| open.method.as_ref().is_none_or(|m| &t.method == m);
            if let Some(i) = ts
                .iter()
                .position(|t| t.visit_id == open.visit && t.method != GROUND_TRUTH && of_method(t))
            {
                let ddi = ddi_pairs(run.drugs.value.as_ref());
                self.run = Some(open.run);
                self.method = Some(ts[i].method.clone());
                if !self.filter.keeps(&ts[i], &ddi) {
                    self.filter = VisitFilter::All;
                }
                self.visit = i;
                self.step = None;
                self.other = None;
            }
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
            self.method = None;
        }
        let Some(run) = self.run.as_ref().and_then(|id| store.run(id)) else {
            return;
        };
        let ts = trajectories(run);
        let ddi = ddi_pairs(run.drugs.value.as_ref());
        // The methods of the run's trajectories, in their order.
        let mut methods: Vec<&str> = Vec::new();
        for t in ts {
            if !methods.contains(&t.method.as_str()) {
                methods.push(&t.method);
            }
        }
        if self
            .method
            .as_ref()
            .is_none_or(|m| !methods.contains(&m.as_str()))
        {
            // A run opens on its last trained method's first visit.
            self.method = last_trained_method(run);
            self.visit = ts
                .iter()
                .position(|t| Some(&t.method) == self.method.as_ref())
                .unwrap_or(0);
            self.step = None;
        }
        let method = self.method.clone().unwrap_or_default();
        let of_method: Vec<usize> = (0..ts.len()).filter(|&i| ts[i].method == method).collect();
        self.listed = of_method
            .iter()
            .copied()
            .filter(|&i| self.filter.keeps(&ts[i], &ddi))
            .collect();
        if !self.listed.contains(&self.visit)
            && let Some(&first) = self.listed.first()
        {
            self.visit = first;
            self.step = None;
        }
        self.visit = self.visit.min(ts.len() - 1);
        ui.horizontal_wrapped(|ui| {
            let mut chosen = self.run.clone();
            egui::ComboBox::from_label("run")
                .selected_text(run.id.to_string())
                .show_ui(ui, |ui| {
                    for r in &with {
                        ui.selectable_value(&mut chosen, Some(r.id.clone()), r.id.to_string());
                    }
                });
            if chosen != self.run {
                self.run = chosen;
                self.method = None;
                self.step = None;
            }
            let mut picked = self.method.clone();
            egui::ComboBox::from_label("method")
                .selected_text(method.as_str())
                .show_ui(ui, |ui| {
                    for m in &methods {
                        let n = ts.iter().filter(|t| t.method == *m).count();
                        let edited = ts
                            .iter()
                            .filter(|t| t.method == *m && VisitFilter::Edited.keeps(t, &ddi))
                            .count();
                        ui.selectable_value(
                            &mut picked,
                            Some(m.to_string()),
                            format!("{m} ({n} visits, {edited} edited)"),
                        );
                    }
                });
            if picked != self.method {
                self.method = picked;
                self.visit = ts
                    .iter()
                    .position(|t| Some(&t.method) == self.method.as_ref())
                    .unwrap_or(0);
                self.step = None;
            }
        });
        ui.horizontal_wrapped(|ui| {
            ui.label("visits:");
            for f in VisitFilter::ALL {
                ui.radio_value(&mut self.filter, f, f.label());
            }
        });
        if self.listed.is_empty() {
            ui.label(format!(
                "No recorded visit of {method} {} ({} recorded).",
                self.filter.label(),
                of_method.len()
            ));
            return;
        }
        ui.horizontal_wrapped(|ui| {
            let mut visit = self.visit;
            egui::ComboBox::from_label(format!(
                "visit ({} of the {} recorded visits of {method})",
                self.listed.len(),
                of_method.len()
            ))
            .selected_text(visit_label(&ts[self.visit]))
            .height(400.0)
            .show_ui(ui, |ui| {
                for &i in &self.listed {
                    ui.selectable_value(&mut visit, i, visit_label(&ts[i]));
                }
            });
            if visit != self.visit {
                self.visit = visit;
                self.step = None;
            }
            if let Some(kept) = run
                .summary
                .value
                .as_ref()
                .and_then(|s| s.methods.get(&method))
                .and_then(|m| m.trajectories.as_ref())
            {
                ui.label(kept.describe());
            }
        });
        let Some(run) = self.run.as_ref().and_then(|id| store.run(id)) else {
            return;
        };
        let ts = trajectories(run);
        let Some(t) = ts.get(self.visit) else { return };
        let drugs = run.drugs.value.as_ref();
        // The same visit elsewhere: other runs, other methods of this run.
        let others: Vec<(RunId, usize, String)> = store
            .all_runs()
            .flat_map(|r| {
                trajectories(r)
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| o.visit_id == t.visit_id)
                    .map(move |(i, o)| (r.id.clone(), i, format!("{} · {}", r.id, o.method)))
            })
            .filter(|(id, i, _)| !(id == &run.id && *i == self.visit))
            .collect();
        if self
            .other
            .as_ref()
            .is_some_and(|o| !others.iter().any(|(id, i, _)| (id, i) == (&o.0, &o.1)))
        {
            self.other = None;
        }
        ui.horizontal_wrapped(|ui| {
            let text = self
                .other
                .as_ref()
                .and_then(|o| others.iter().find(|(id, i, _)| (id, i) == (&o.0, &o.1)))
                .map_or_else(|| "(nothing)".to_string(), |o| o.2.clone());
            egui::ComboBox::from_label("side by side with the same visit in")
                .selected_text(text)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.other, None, "(nothing)");
                    for (id, i, name) in &others {
                        ui.selectable_value(&mut self.other, Some((id.clone(), *i)), name);
                    }
                });
        });
        ui.separator();
        ui.separator();
        let other = self
            .other
            .as_ref()
            .and_then(|(id, i)| store.run(id).map(|r| (r, *i)))
            .and_then(|(r, i)| trajectories(r).get(i).map(|o| (r, o)));
        egui::ScrollArea::both()
            .auto_shrink([false, false])
            .show(ui, |ui| {
            egui::CollapsingHeader::new("Visit")
                .id_salt(("visit", &run.id, &t.visit_id))
                .default_open(true)
                .show(ui, |ui| match run.visit(&t.visit_id) {
                    Some(v) => visit_section(ui, v, drugs),
                    None => {
                        let why = match &run.visits.problem {
                            Some(p) => format!("visits.jsonl could not be read: {p}"),
                            None => "this run has no visits.jsonl (runs of format 1.0 do not write it)".into(),
                        };
                        ui.colored_label(
                            ui.visuals().warn_fg_color,
                            format!("notice: no details of visit {}: {why}; the codes and the note are not shown", t.visit_id),
                        );
                    }
                });
            match other {
                None => self.episode(ui, &run.id, t, drugs, None, true),
                Some((orun, o)) => {
                    let diff = differences(t, o);
                    ui.label(RichText::new(format!(
                        "{} drug(s) end differently (marked !=): {}",
                        diff.len(),
                        diff.iter()
                            .map(|c| label(drugs, c))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                    ui.columns(2, |cols| {
                        self.episode(&mut cols[0], &run.id, t, drugs, Some(&diff), true);
                        self.episode(
                            &mut cols[1],
                            &orun.id,
                            o,
                            orun.drugs.value.as_ref(),
                            Some(&diff),
                            false,
                        );
                    });
                }
            }
            });
    }

    /// One episode: the lists, the steps and the timeline.
    fn episode(
        &mut self,
        ui: &mut egui::Ui,
        run: &RunId,
        t: &Trajectory,
        drugs: Option<&DrugsRecord>,
        diff: Option<&BTreeSet<String>>,
        primary: bool,
    ) {
        let names = |codes: &[String]| {
            if codes.is_empty() {
                "(empty)".to_string()
            } else {
                codes
                    .iter()
                    .map(|c| label(drugs, c))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        ui.heading(format!("{run} · {} · {}", t.visit_id, t.method));
        ui.label(format!(
            "patient {}, split {}, steps {:?}{}",
            t.patient_id,
            t.split,
            t.source,
            if t.truncated {
                ", cut by the step budget"
            } else {
                ""
            }
        ));
        ui.label(format!(
            "ground truth ({}): {}",
            t.ground_truth.len(),
            names(&t.ground_truth)
        ));
        ui.label(format!("start list ({}): {}", t.start.len(), names(&t.start)));
        ui.label(format!(
            "final list ({}): {}",
            t.final_list.len(),
            names(&t.final_list)
        ));
        ui.label(format!(
            "potential of the start list {:.4}; outcome reward (sum of the step rewards) {:.4}",
            t.start_potential, t.outcome_reward
        ));
        let terms: BTreeSet<&String> = t.steps.iter().flat_map(|s| s.terms.keys()).collect();
        ui.add_space(4.0);
        egui::Grid::new((run, &t.visit_id, &t.method, "steps"))
            .striped(true)
            .show(ui, |ui| {
                for h in ["step", "action", "drug", "probability"] {
                    ui.strong(h);
                }
                for term in &terms {
                    ui.strong(format!("reward/{term}"));
                }
                ui.strong("reward");
                ui.strong("potential after");
                ui.end_row();
                let mut potential = t.start_potential;
                for (i, s) in t.steps.iter().enumerate() {
                    potential += s.reward;
                    let picked = primary && self.step == Some(i);
                    if ui.selectable_label(picked, format!("step {}", i + 1)).clicked() && primary {
                        self.step = if picked { None } else { Some(i) };
                    }
                    let (action, code) = match &s.action {
                        ActionRecord::Add(c) => ("add", label(drugs, c)),
                        ActionRecord::Remove(c) => ("remove", label(drugs, c)),
                        ActionRecord::Stop => ("stop", String::new()),
                        ActionRecord::Unrecognized(line) => ("unrecognized", line.clone()),
                    };
                    ui.label(action);
                    match &s.text {
                        // What a generative policy wrote, beside the drug it named.
                        Some(text) if !matches!(s.action, ActionRecord::Unrecognized(_)) => {
                            let text = super::drawable(ui, text);
                            ui.label(format!("{code}, written \"{text}\""))
                        }
                        _ => {
                            let code = super::drawable(ui, &code);
                            ui.label(code)
                        }
                    };
                    let p = ui.label(s.probability.map_or_else(|| "-".into(), |p| format!("{p:.3}")));
                    if !s.part_probabilities.is_empty() {
                        let parts: Vec<String> =
                            s.part_probabilities.iter().map(|q| format!("{q:.3}")).collect();
                        p.on_hover_text(format!("per token: {}", parts.join(" · ")));
                    }
                    for term in &terms {
                        ui.label(
                            s.terms
                                .get(*term)
                                .map_or_else(|| "-".into(), |v| format!("{v:+.4}")),
                        );
                    }
                    ui.label(format!("{:+.4}", s.reward));
                    ui.label(format!("{potential:.4}"));
                    ui.end_row();
                }
            });
        if let Some(i) = self.step.filter(|_| primary)
            && let Some(s) = t.steps.get(i)
        {
            ui.label(format!("list after step {}: {}", i + 1, names(&s.list)));
        }
        ui.add_space(6.0);
        ui.strong("Per-drug timeline");
        ui.label("green ok: in the list and in the ground truth · red +: in the list, not in the ground truth (extra) · amber -: in the ground truth, missing from the list · !: in an interacting pair of that list (DDI pairs of drugs.json)");
        let ddi = ddi_pairs(drugs);
        let rows = timeline(t, &ddi);
        egui::Grid::new((run, &t.visit_id, &t.method, "timeline"))
            .spacing([2.0, 2.0])
            .show(ui, |ui| {
                ui.label("drug");
                ui.label("start");
                for i in 0..t.steps.len() {
                    ui.label(format!("{}", i + 1));
                }
                ui.end_row();
                for row in rows {
                    let mark = diff.is_some_and(|d| d.contains(&row.code));
                    let name = label(drugs, &row.code);
                    ui.label(if mark { format!("!= {name}") } else { name });
                    for (state, interacts) in &row.cells {
                        let (sym, colour) = state.look();
                        let text = if *interacts {
                            format!("{sym}!")
                        } else {
                            sym.to_string()
                        };
                        // The whole cell filled, so a row reads as a bar of colours.
                        let (rect, response) =
                            ui.allocate_exact_size(egui::vec2(34.0, 20.0), egui::Sense::hover());
                        ui.painter().rect_filled(rect, 2.0, colour);
                        ui.painter().text(
                            rect.center(),
                            egui::Align2::CENTER_CENTER,
                            &text,
                            egui::TextStyle::Body.resolve(ui.style()),
                            Color32::WHITE,
                        );
                        response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, &text));
                        response.on_hover_text(format!(
                            "{}: {}{}",
                            row.code,
                            state.word(),
                            if *interacts {
                                ", interacts with another drug of the list"
                            } else {
                                ""
                            }
                        ));
                    }
                    ui.end_row();
                }
            });
    }
}

/// The drugs whose final state differs between two episodes of a visit.
fn differences(a: &Trajectory, b: &Trajectory) -> BTreeSet<String> {
    let fa: BTreeSet<&String> = a.final_list.iter().collect();
    let fb: BTreeSet<&String> = b.final_list.iter().collect();
    fa.symmetric_difference(&fb).map(|c| (*c).clone()).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rxalign_core::StepRecord;

    use super::*;

    fn step(action: ActionRecord, list: &[&str]) -> StepRecord {
        StepRecord {
            action,
            probability: Some(0.5),
            text: None,
            part_probabilities: Vec::new(),
            reward: 0.1,
            terms: BTreeMap::new(),
            list: list.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_timeline_colours_each_drug_by_list_and_truth_and_marks_interactions() {
        let t = Trajectory {
            visit_id: "V".into(),
            patient_id: "P".into(),
            method: "m".into(),
            split: "test".into(),
            ground_truth: vec!["A".into(), "B".into()],
            start: vec!["C".into()],
            steps: vec![
                step(ActionRecord::Add("A".into()), &["C", "A"]),
                step(ActionRecord::Remove("C".into()), &["A"]),
                step(ActionRecord::Stop, &["A"]),
            ],
            final_list: vec!["A".into()],
            outcome_reward: 0.3,
            start_potential: 0.0,
            start_terms: BTreeMap::new(),
            source: Default::default(),
            truncated: false,
        };
        let ddi: HashSet<(String, String)> = [("A".into(), "C".into()), ("C".into(), "A".into())].into();
        let rows = timeline(&t, &ddi);
        let codes: Vec<&str> = rows.iter().map(|r| r.code.as_str()).collect();
        assert_eq!(codes, ["C", "A", "B"]);
        use CellState::*;
        assert_eq!(
            rows[0].cells,
            vec![(Extra, false), (Extra, true), (Absent, false), (Absent, false)]
        );
        assert_eq!(
            rows[1].cells,
            vec![(Missing, false), (Right, true), (Right, false), (Right, false)]
        );
        assert_eq!(rows[2].cells, vec![(Missing, false); 4]);
    }

    #[test]
    fn the_note_is_cut_into_plain_text_and_mentions_and_bad_spans_are_skipped() {
        let m = |start, end, kind| Mention {
            start,
            end,
            kind,
            code: None,
            negated: false,
        };
        let note = "Allergic to penicillin; on metformin.";
        let segs = note_segments(
            note,
            &[
                m(27, 36, MentionKind::Drug),
                m(0, 8, MentionKind::Allergy),
                // Overlapping, past the end, empty: skipped.
                m(5, 12, MentionKind::Condition),
                m(30, 99, MentionKind::Drug),
                m(3, 3, MentionKind::Drug),
            ],
        );
        assert_eq!(
            segs,
            vec![
                ("Allergic", Some(MentionKind::Allergy)),
                (" to penicillin; on ", None),
                ("metformin", Some(MentionKind::Drug)),
                (".", None),
            ]
        );
        // Inside a multi-byte character: skipped.
        assert_eq!(
            note_segments("é", &[m(1, 2, MentionKind::Drug)]),
            vec![("é", None)]
        );
    }
}
