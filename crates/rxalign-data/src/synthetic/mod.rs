//! The synthetic clinic: the embedded default dataset.
//!
//! Patients are multimorbid (1 to 6 conditions a visit: chronic conditions
//! that persist across their visits and acute ones drawn per visit) and
//! arrive with allergies and home medications. A visit's codes say which
//! conditions were coded (chronic ones are sometimes left uncoded); its note
//! says, each with probability `note_reveal`, what the codes do not:
//! allergies, home medications, severity. The ground truth is the
//! [clinician rule](rule::prescribe) applied with full knowledge, then made
//! noisy (each drug dropped, and a plausible or random drug added, with
//! probability `noise`).
//!
//! The clinic reports two reference recommenders, written beside the dataset
//! as predictions files so that `rxalign eval` reproduces them:
//! - the *ceiling* (`rule_predictions.jsonl`): the noise-free rule with full
//!   knowledge, against the noisy ground truth;
//! - the *codes-only rule* (`codes_rule_predictions.jsonl`): the same rule
//!   knowing only the codes and the previous visit's drugs (no allergies, no
//!   severity, no home medications at a first visit): what a recommender
//!   that ignores notes can at best reach by following the rule;
//! - the *notes-and-codes rule* (`notes_rule_predictions.jsonl`): the same
//!   rule knowing the codes, the previous visit's drugs and what
//!   [`reader::read_note`] finds in the note text: a recommender that reads
//!   the notes gets this much closer to the ceiling.

pub mod icu;
mod note;
pub mod reader;
pub mod rule;
pub mod world;

use std::path::Path;

use rand::Rng as _;
use rand::seq::{IndexedRandom, SliceRandom};
use rxalign_core::metrics::{MetricInput, MetricReport, evaluate};
use rxalign_core::predictions::Predictions;
use rxalign_core::{Cohort, DrugSet, Rng, Sex, Visit, seeded_rng};
use serde::{Deserialize, Serialize};

use crate::DataError;
use crate::time::iso_date;
pub use world::World;

/// Predictions file of the noise-free, full-knowledge rule (the ceiling).
pub const RULE_PREDICTIONS: &str = "rule_predictions.jsonl";
/// Predictions file of the codes-only rule.
pub const CODES_RULE_PREDICTIONS: &str = "codes_rule_predictions.jsonl";
/// Predictions file of the notes-and-codes rule.
pub const NOTES_RULE_PREDICTIONS: &str = "notes_rule_predictions.jsonl";
/// The reference recommenders: their method name and predictions file.
pub const REFERENCES: [(&str, &str); 3] = [
    ("ceiling", RULE_PREDICTIONS),
    ("notes_and_codes_rule", NOTES_RULE_PREDICTIONS),
    ("codes_only_rule", CODES_RULE_PREDICTIONS),
];
/// The generator's settings and reference metrics.
pub const CLINIC_JSON: &str = "clinic.json";

/// Which world the synthetic clinic draws from; written as a string in
/// experiment files (`"clinic"`, `"icu"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub enum Preset {
    /// The quickstart's clinic: multimorbid outpatients and a clinician
    /// rule (`assets/clinic/*.ron` but `icu.ron`).
    #[default]
    Clinic,
    /// Intensive-care stays in the papers' regime, prescribed in order sets
    /// chosen by latent states, with exact posteriors ([`icu`]).
    Icu,
}

impl TryFrom<String> for Preset {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl std::str::FromStr for Preset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "clinic" => Ok(Self::Clinic),
            "icu" => Ok(Self::Icu),
            other => Err(format!("unknown preset `{other}`; known: clinic, icu")),
        }
    }
}

impl From<Preset> for String {
    fn from(p: Preset) -> String {
        match p {
            Preset::Clinic => "clinic",
            Preset::Icu => "icu",
        }
        .to_string()
    }
}

/// The knobs of the synthetic clinic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticConfig {
    /// The world: `"clinic"` (the default) or `"icu"`.
    pub preset: Preset,
    /// Number of patients.
    pub patients: usize,
    /// The seed: the same seed and settings give the same bytes.
    pub seed: u64,
    /// Visits per patient, drawn uniformly in `visits_min..=visits_max`.
    pub visits_min: usize,
    /// See `visits_min`.
    pub visits_max: usize,
    /// Probability that each rule drug is dropped from, and that a plausible
    /// or random drug is added to, the ground truth.
    pub noise: f64,
    /// Probability that the note reveals each fact the codes do not
    /// (an allergy, the home medications, a condition's severity).
    pub note_reveal: f64,
    /// Probability that a condition is severe at a visit.
    pub severe_rate: f64,
    /// Probability that a chronic condition is coded at a visit.
    pub chronic_coding: f64,
    /// Probability that a patient arrives already treated for a chronic
    /// condition (home medications, not always the first-line choice).
    pub home_medication_rate: f64,
    /// At most this many chronic conditions a patient.
    pub max_chronic: usize,
    /// At most this many acute conditions a visit.
    pub max_acute: usize,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            preset: Preset::Clinic,
            patients: 1500,
            seed: 0,
            visits_min: 2,
            visits_max: 4,
            noise: 0.05,
            note_reveal: 0.8,
            severe_rate: 0.3,
            chronic_coding: 0.85,
            home_medication_rate: 0.6,
            max_chronic: 4,
            max_acute: 2,
        }
    }
}

impl SyntheticConfig {
    /// Most patients a clinic is generated with.
    pub const MAX_PATIENTS: usize = 1_000_000;
    /// Most visits a patient may have.
    pub const MAX_VISITS_PER_PATIENT: usize = 1_000;
    /// Most visits a clinic may have (`patients × visits_max`): a few GiB.
    pub const MAX_VISITS: usize = 5_000_000;

    pub fn validate(&self) -> Result<(), DataError> {
        let err = |field, message: String| Err(DataError::Config { field, message });
        for (field, p) in [
            ("noise", self.noise),
            ("note_reveal", self.note_reveal),
            ("severe_rate", self.severe_rate),
            ("chronic_coding", self.chronic_coding),
            ("home_medication_rate", self.home_medication_rate),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return err(field, format!("{p} is not a probability in [0, 1]"));
            }
        }
        if self.patients == 0 {
            return err("patients", "at least one patient is needed".into());
        }
        if self.patients > Self::MAX_PATIENTS {
            return err(
                "patients",
                format!(
                    "{} patients is more than the clinic generates ({} at most): the cohort would not fit in memory",
                    self.patients,
                    Self::MAX_PATIENTS
                ),
            );
        }
        if self.visits_max > Self::MAX_VISITS_PER_PATIENT {
            return err(
                "visits_max",
                format!(
                    "{} visits per patient is more than the clinic generates ({} at most)",
                    self.visits_max,
                    Self::MAX_VISITS_PER_PATIENT
                ),
            );
        }
        if self.patients.saturating_mul(self.visits_max) > Self::MAX_VISITS {
            return err(
                "patients",
                format!(
                    "{} patients of up to {} visits could make more than {} visits: the cohort would not fit in memory; lower patients or visits_max",
                    self.patients,
                    self.visits_max,
                    Self::MAX_VISITS
                ),
            );
        }
        if self.visits_min == 0 || self.visits_min > self.visits_max {
            return err(
                "visits_min",
                format!(
                    "need 1 <= visits_min <= visits_max, got {}..={}",
                    self.visits_min, self.visits_max
                ),
            );
        }
        if self.preset == Preset::Icu {
            // The icu world says its own rates (assets/clinic/icu.ron); the
            // clinic's knobs would be silently ignored.
            let d = Self::default();
            for (field, set) in [
                ("noise", self.noise != d.noise),
                ("note_reveal", self.note_reveal != d.note_reveal),
                ("severe_rate", self.severe_rate != d.severe_rate),
                ("chronic_coding", self.chronic_coding != d.chronic_coding),
                (
                    "home_medication_rate",
                    self.home_medication_rate != d.home_medication_rate,
                ),
                ("max_chronic", self.max_chronic != d.max_chronic),
                ("max_acute", self.max_acute != d.max_acute),
            ] {
                if set {
                    return err(
                        field,
                        "applies to the `clinic` preset only; the `icu` preset takes patients, seed, visits_min and visits_max".into(),
                    );
                }
            }
        }
        let conditions = self.max_chronic.saturating_add(self.max_acute);
        if conditions > 6 || conditions == 0 {
            return err(
                "max_chronic",
                format!(
                    "a visit has 1 to 6 conditions: max_chronic + max_acute must lie in 1..=6, got {}",
                    conditions
                ),
            );
        }
        Ok(())
    }
}

/// A reference recommender of the clinic: its method name, its predictions
/// file and its list per visit.
#[derive(Clone, Debug)]
pub struct Reference {
    pub name: &'static str,
    pub file: &'static str,
    pub lists: Vec<DrugSet>,
}

/// A generated clinic: the cohort and its reference recommenders.
#[derive(Clone, Debug)]
pub struct SyntheticClinic {
    pub config: SyntheticConfig,
    pub cohort: Cohort,
    /// The references, the ceiling first, in the order of [`REFERENCES`]
    /// (the `icu` preset has the ceiling only).
    pub references: Vec<Reference>,
    /// The `icu` preset's world and each visit's latent state and evidence,
    /// for exact posteriors.
    pub icu: Option<IcuStays>,
}

/// The `icu` preset's world and what generated each visit.
#[derive(Clone, Debug)]
pub struct IcuStays {
    pub world: icu::IcuWorld,
    /// Per visit index: the latent state and the evidence.
    pub stays: Vec<(icu::Latent, icu::Evidence)>,
}

struct Patient {
    id: String,
    sex: Sex,
    age: u32,
    chronic: Vec<usize>,
    allergies: Vec<usize>,
    allergic: DrugSet,
    home: Vec<(usize, Vec<usize>)>,
}

impl SyntheticClinic {
    /// Generates the clinic of the embedded world of the configured preset.
    pub fn generate(config: &SyntheticConfig) -> Result<Self, DataError> {
        match config.preset {
            Preset::Clinic => Self::generate_in(&World::embedded()?, config),
            Preset::Icu => Self::generate_icu(icu::IcuWorld::embedded()?, config),
        }
    }

    /// Generates the `icu` preset's stays of a world. Each patient draws
    /// from a stream of their own; stays are independent given the patient.
    pub fn generate_icu(world: icu::IcuWorld, config: &SyntheticConfig) -> Result<Self, DataError> {
        config.validate()?;
        let mut visits = Vec::new();
        let mut ceiling = Vec::new();
        let mut stays = Vec::new();
        for p in 0..config.patients {
            let mut rng = seeded_rng(config.seed, &format!("icu-patient-{p}"));
            let sex = if rng.random_bool(0.5) {
                Sex::Female
            } else {
                Sex::Male
            };
            let age: u32 = rng.random_range(18..=90);
            let n_visits = rng.random_range(config.visits_min..=config.visits_max);
            let mut day = 47_482 + rng.random_range(0..3650);
            let mut history: Vec<DrugSet> = Vec::new();
            let id = format!("P{:05}", p + 1);
            for k in 0..n_visits {
                let stay = world.draw(age + k as u32, sex, &mut rng);
                let mut diagnoses: Vec<usize> = world
                    .problems
                    .iter()
                    .zip(&stay.evidence.coded)
                    .filter(|(_, c)| **c)
                    .map(|(pr, _)| pr.diagnosis)
                    .collect();
                diagnoses.sort_unstable();
                let procedures: Vec<usize> = stay
                    .evidence
                    .unit_coded
                    .and_then(|u| world.units[u].procedure)
                    .into_iter()
                    .collect();
                visits.push(Visit {
                    patient_id: id.clone(),
                    visit_id: format!("{id}-V{}", k + 1),
                    time: Some(iso_date(day)),
                    age: Some((age + k as u32) as f32),
                    sex: Some(sex),
                    diagnoses,
                    procedures,
                    note: Some(stay.note),
                    history: history.clone(),
                    drugs: stay.drugs.clone(),
                });
                history.push(stay.drugs);
                ceiling.push(world.full_knowledge_list(&stay.latent));
                stays.push((stay.latent, stay.evidence));
                day += rng.random_range(30..=720);
            }
        }
        let cohort = Cohort::new(
            format!("synthetic-icu-seed{}", config.seed),
            world.drugs.clone(),
            world.diagnoses.clone(),
            world.procedures.clone(),
            visits,
            world.ddi.clone(),
        )?;
        Ok(Self {
            config: config.clone(),
            cohort,
            references: vec![Reference {
                name: REFERENCES[0].0,
                file: REFERENCES[0].1,
                lists: ceiling,
            }],
            icu: Some(IcuStays { world, stays }),
        })
    }

    /// Generates a clinic of a given world. Each patient draws from a stream
    /// of their own, so adding patients leaves the earlier ones unchanged.
    pub fn generate_in(world: &World, config: &SyntheticConfig) -> Result<Self, DataError> {
        config.validate()?;
        let width = world.drugs.len();
        let mut visits = Vec::new();
        let mut rule = Vec::new();
        let mut codes_rule = Vec::new();
        let mut notes_rule = Vec::new();
        for p in 0..config.patients {
            let mut rng = seeded_rng(config.seed, &format!("synthetic-patient-{p}"));
            let patient = draw_patient(world, config, p, &mut rng);
            let n_visits = rng.random_range(config.visits_min..=config.visits_max);
            let first_day = 47_482 + rng.random_range(0..3650); // 2100-01-01 plus up to ten years
            let mut day = first_day;
            let mut continued = patient.home.clone();
            let mut previous_truth: Option<DrugSet> = None;
            let mut history: Vec<DrugSet> = Vec::new();
            for k in 0..n_visits {
                let age = patient.age + ((day - first_day) / 365) as u32;
                let conditions = draw_conditions(world, config, &patient, &mut rng);
                let ids: Vec<usize> = conditions.iter().map(|c| c.0).collect();
                let severe: Vec<bool> = conditions.iter().map(|c| c.2).collect();
                let full = rule::prescribe(
                    world,
                    &rule::Facts {
                        conditions: &ids,
                        severe: &severe,
                        allergic: &patient.allergic,
                        continued: &continued,
                    },
                );
                let coded: Vec<usize> = conditions.iter().filter(|c| c.1).map(|c| c.0).collect();
                let prev_continued = previous_truth
                    .as_ref()
                    .map(|truth| continued_from(world, &coded, truth))
                    .unwrap_or_default();
                let codes_only = rule::prescribe(
                    world,
                    &rule::Facts {
                        conditions: &coded,
                        severe: &vec![false; coded.len()],
                        allergic: &DrugSet::empty(width),
                        continued: &prev_continued,
                    },
                );
                let truth = add_noise(world, config.noise, &full.list, &ids, &mut rng);
                let home: Vec<usize> = continued
                    .iter()
                    .filter(|(c, _)| ids.contains(c))
                    .flat_map(|(_, d)| d.iter().copied())
                    .collect();
                let note = note::compose(
                    world,
                    &note::NoteFacts {
                        age,
                        sex: patient.sex,
                        conditions: &conditions,
                        allergies: &patient.allergies,
                        home_medications: &home,
                    },
                    config.note_reveal,
                    &mut rng,
                );
                let read = reader::read_note(world, &note);
                let mut known = coded.clone();
                known.extend(read.conditions.iter().filter(|&&c| world.conditions[c].chronic));
                known.sort_unstable();
                known.dedup();
                let mut on = DrugSet::from_indices(width, read.home_medications.iter().copied());
                if let Some(truth) = &previous_truth {
                    on.union_with(truth);
                }
                let with_notes = rule::prescribe(
                    world,
                    &rule::Facts {
                        conditions: &known,
                        severe: &known.iter().map(|c| read.severe.contains(c)).collect::<Vec<_>>(),
                        allergic: &read.allergic,
                        continued: &continued_from(world, &known, &on),
                    },
                );
                let mut diagnoses: Vec<usize> = conditions
                    .iter()
                    .filter(|c| !world.conditions[c.0].chronic && c.1)
                    .map(|c| c.0)
                    .collect();
                diagnoses.extend(
                    conditions
                        .iter()
                        .filter(|c| world.conditions[c.0].chronic && c.1)
                        .map(|c| c.0),
                );
                let mut procedures = Vec::new();
                for &(c, _, sev) in &conditions {
                    for &(px, p, p_severe) in &world.conditions[c].procedures {
                        if rng.random_bool(if sev { p_severe } else { p }) && !procedures.contains(&px) {
                            procedures.push(px);
                        }
                    }
                }
                visits.push(Visit {
                    patient_id: patient.id.clone(),
                    visit_id: format!("{}-V{}", patient.id, k + 1),
                    time: Some(iso_date(day)),
                    age: Some(age as f32),
                    sex: Some(patient.sex),
                    diagnoses,
                    procedures,
                    note: Some(note),
                    history: history.clone(),
                    drugs: truth.clone(),
                });
                history.push(truth.clone());
                rule.push(full.list.clone());
                codes_rule.push(codes_only.list);
                notes_rule.push(with_notes.list);
                continued = full.chronic;
                previous_truth = Some(truth);
                day += rng.random_range(14..=365);
            }
        }
        let cohort = Cohort::new(
            format!("synthetic-clinic-seed{}", config.seed),
            world.drugs.clone(),
            world.diagnoses.clone(),
            world.procedures.clone(),
            visits,
            world.ddi.clone(),
        )?;
        let references = REFERENCES
            .iter()
            .zip([rule, notes_rule, codes_rule])
            .map(|(&(name, file), lists)| Reference { name, file, lists })
            .collect();
        Ok(Self {
            config: config.clone(),
            cohort,
            references,
            icu: None,
        })
    }

    /// The ceiling's list per visit: the clinic's rule with full knowledge
    /// (`clinic`), or each slot likely under the latent state (`icu`).
    pub fn ceiling(&self) -> &[DrugSet] {
        self.references.first().map_or(&[], |r| &r.lists)
    }

    /// The metrics of a per-visit list (such as [`Self::ceiling`]) against the
    /// ground truth, over the given visits.
    pub fn score(&self, lists: &[DrugSet], visits: &[usize]) -> MetricReport {
        evaluate(visits.iter().map(|&i| MetricInput {
            predicted: &lists[i],
            truth: &self.cohort.visits[i].drugs,
            scores: None,
            ddi: &self.cohort.ddi,
        }))
    }

    /// Writes the dataset folder, the two reference predictions files and
    /// `clinic.json` (settings and reference metrics over all visits).
    pub fn write(&self, dir: &Path) -> Result<(), DataError> {
        crate::format::write_dataset(dir, &self.cohort)?;
        for reference in &self.references {
            let records: Vec<_> = self
                .cohort
                .visits
                .iter()
                .zip(&reference.lists)
                .map(|(v, list)| {
                    rxalign_core::Prediction {
                        drugs: list.clone(),
                        scores: None,
                    }
                    .to_record(&v.visit_id, &self.cohort.drugs)
                })
                .collect();
            Predictions::write(&dir.join(reference.file), &records)?;
        }
        let all: Vec<usize> = (0..self.cohort.visits.len()).collect();
        let mut json = serde_json::json!({
            "generator": "rxalign synthetic clinic",
            "config": self.config,
            "references_on": "all visits",
        });
        for reference in &self.references {
            json[reference.name] = self.score(&reference.lists, &all).to_json();
        }
        let text = serde_json::to_string_pretty(&json).expect("clinic.json serialises");
        rxalign_core::run::write_atomic(&dir.join(CLINIC_JSON), text.as_bytes())?;
        Ok(())
    }
}

/// For each chronic condition among `conditions`, the drugs of `on` that
/// treat it: what a prescriber who sees `on` would continue.
fn continued_from(world: &World, conditions: &[usize], on: &DrugSet) -> Vec<(usize, Vec<usize>)> {
    conditions
        .iter()
        .filter(|&&c| world.conditions[c].chronic)
        .map(|&c| {
            let mut drugs = world.indicated(c);
            drugs.intersect_with(on);
            (c, drugs.to_vec())
        })
        .collect()
}

fn draw_patient(world: &World, config: &SyntheticConfig, index: usize, rng: &mut Rng) -> Patient {
    let sex = if rng.random_bool(0.5) {
        Sex::Female
    } else {
        Sex::Male
    };
    let age = rng.random_range(18..=90);
    let fits = |c: &world::Condition| c.sex.is_none_or(|s| s == sex);
    let mut chronic: Vec<usize> = (0..world.conditions.len())
        .filter(|&c| world.conditions[c].chronic && fits(&world.conditions[c]))
        .filter(|&c| rng.random_bool(world.conditions[c].prevalence))
        .collect();
    chronic.shuffle(rng);
    chronic.truncate(config.max_chronic);
    chronic.sort_unstable();
    let allergies: Vec<usize> = (0..world.allergies.len())
        .filter(|&a| rng.random_bool(world.allergies[a].prevalence))
        .collect();
    let mut allergic = DrugSet::empty(world.drugs.len());
    for &a in &allergies {
        allergic.union_with(&world.allergies[a].drugs);
    }
    // Home medications: an outpatient choice, first-line or any tolerated
    // alternative, for some of the chronic conditions.
    let mut home = Vec::new();
    for &c in &chronic {
        if rng.random_bool(config.home_medication_rate) {
            let drugs: Vec<usize> = world.conditions[c]
                .treat
                .iter()
                .filter_map(|choice| {
                    let tolerated: Vec<usize> =
                        choice.candidates().filter(|&d| !allergic.contains(d)).collect();
                    if tolerated.first() == Some(&choice.drug) && rng.random_bool(0.5) {
                        Some(choice.drug)
                    } else {
                        tolerated.choose(rng).copied()
                    }
                })
                .collect();
            home.push((c, drugs));
        }
    }
    Patient {
        id: format!("P{:05}", index + 1),
        sex,
        age,
        chronic,
        allergies,
        allergic,
        home,
    }
}

/// The visit's conditions as `(condition, coded, severe)`, in world order.
fn draw_conditions(
    world: &World,
    config: &SyntheticConfig,
    patient: &Patient,
    rng: &mut Rng,
) -> Vec<(usize, bool, bool)> {
    let acute_pool: Vec<usize> = (0..world.conditions.len())
        .filter(|&c| !world.conditions[c].chronic && world.conditions[c].sex.is_none_or(|s| s == patient.sex))
        .collect();
    let mut n_acute = rng.random_range(0..=config.max_acute);
    if patient.chronic.is_empty() {
        n_acute = n_acute.max(1);
    }
    let mut acute: Vec<usize> = Vec::new();
    while acute.len() < n_acute {
        let c = *acute_pool
            .choose_weighted(rng, |&c| world.conditions[c].prevalence)
            .expect("the world has acute conditions");
        if !acute.contains(&c) {
            acute.push(c);
        }
    }
    let mut out: Vec<(usize, bool, bool)> = Vec::with_capacity(patient.chronic.len() + acute.len());
    for &c in &patient.chronic {
        out.push((
            c,
            rng.random_bool(config.chronic_coding),
            rng.random_bool(config.severe_rate),
        ));
    }
    for &c in &acute {
        out.push((c, true, rng.random_bool(config.severe_rate)));
    }
    if out.iter().all(|c| !c.1) {
        out[0].1 = true;
    }
    out.sort_unstable();
    out
}

fn add_noise(world: &World, noise: f64, list: &DrugSet, conditions: &[usize], rng: &mut Rng) -> DrugSet {
    let width = world.drugs.len();
    let mut truth = list.clone();
    for d in list.iter() {
        if rng.random_bool(noise) {
            truth.remove(d);
        }
    }
    let mut plausible = DrugSet::empty(width);
    for &c in conditions {
        plausible.union_with(&world.indicated(c));
    }
    for _ in 0..list.len() {
        if rng.random_bool(noise) {
            let pool: Vec<usize> = if rng.random_bool(0.5) {
                plausible.iter().filter(|&d| !truth.contains(d)).collect()
            } else {
                (0..width).filter(|&d| !truth.contains(d)).collect()
            };
            if let Some(&d) = pool.choose(rng) {
                truth.insert(d);
            }
        }
    }
    truth
}

#[cfg(test)]
mod tests;
