//! The `icu` preset: intensive-care stays in the papers' regime, drawn from
//! a generative model whose exact posterior is known.
//!
//! A stay is on one unit (latent), has some of a dozen problems (latent,
//! their prior depending on the unit), and is prescribed by slots
//! (therapeutic classes) of order sets: each slot is ordered with a
//! probability set by its unit's habit and, where it belongs to an order set,
//! by whether that order set's problem is present; an ordered slot gives one
//! of its drugs, the unit's favoured one more often. Codes and the note
//! reveal the unit and the problems only in part (`assets/clinic/icu.ron`
//! says how often).
//!
//! Given what a stay's codes and note reveal (its [`Evidence`]), the
//! posterior over the unit is a finite sum and, given the unit, the problems
//! are independent; given both, the slots are. So every drug's marginal and
//! the joint distribution of the hits and misses of any list
//! ([`Overlap`]) are computed exactly ([`IcuPosterior`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::Rng as _;
use rand::seq::IndexedRandom;
use rxalign_core::posterior::{ListPosterior, Overlap};
use rxalign_core::{DdiGraph, DrugSet, Rng, Sex, Vocab};
use serde::Deserialize;

use super::world::{World, parse_ron};
use crate::DataError;

const ICU_RON: &str = include_str!("../../../../assets/clinic/icu.ron");
/// GAMENet's TWOSIDES-derived interactions between ATC level-3 classes (the
/// DDI graph of the papers' MIMIC-III benchmarks; origin and licence in
/// `tests/data/PROVENANCE.md`).
const TWOSIDES_ATC3: &str =
    include_str!("../../../../tests/data/ddi-atc3-twosides/gamenet_ddi_atc3_edges.csv");
const TWOSIDES_ATC3_PATH: &str = "tests/data/ddi-atc3-twosides/gamenet_ddi_atc3_edges.csv";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IcuSpec {
    unit_coded: f64,
    unit_noted: f64,
    favour: f64,
    false_coded: f64,
    false_noted: f64,
    acuity_noted: f64,
    acuity: Vec<AcuitySpec>,
    units: Vec<UnitSpec>,
    problems: Vec<ProblemSpec>,
    slots: Vec<SlotSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeSpec {
    icd9: String,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AcuitySpec {
    name: String,
    phrase: String,
    prior: f64,
    scale: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitSpec {
    name: String,
    phrase: String,
    prior: f64,
    procedure: Option<CodeSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProblemSpec {
    icd9: String,
    name: String,
    phrase: String,
    prior: Vec<f64>,
    coded: f64,
    noted: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlotSpec {
    class: String,
    drugs: Vec<String>,
    base: f64,
    #[serde(default)]
    unit_base: BTreeMap<String, f64>,
    #[serde(default)]
    favoured: BTreeMap<String, String>,
    #[serde(default)]
    order_set: Option<String>,
    #[serde(default)]
    strength: f64,
}

/// A care unit (a latent state of a stay).
#[derive(Clone, Debug)]
pub struct Unit {
    pub name: String,
    pub phrase: String,
    pub prior: f64,
    /// The procedure code that shows the unit, where it has one.
    pub procedure: Option<usize>,
}

/// An acuity level (a latent state of a stay, beside its unit).
#[derive(Clone, Debug)]
pub struct Acuity {
    pub name: String,
    pub phrase: String,
    pub prior: f64,
    /// Hazard multiplier of problems and slots: `p ↦ 1 − (1 − p)^scale`.
    pub scale: f64,
}

/// A latent state of a stay: its unit and its acuity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatentState {
    pub unit: usize,
    pub acuity: usize,
    pub prior: f64,
}

/// A problem (a latent condition of a stay).
#[derive(Clone, Debug)]
pub struct Problem {
    /// Its index in the diagnosis vocabulary.
    pub diagnosis: usize,
    pub phrase: String,
    /// `P(present | latent state)`, per state of [`IcuWorld::states`].
    pub prior: Vec<f64>,
    /// `P(coded | present)`.
    pub coded: f64,
    /// `P(named in the note | present)`.
    pub noted: f64,
}

/// A slot: a therapeutic class that gives at most one of its drugs.
#[derive(Clone, Debug)]
pub struct Slot {
    pub class: String,
    pub drugs: Vec<usize>,
    /// The base rate of ordering the slot, per state of
    /// [`IcuWorld::states`].
    pub base: Vec<f64>,
    /// `P(drug | ordered, unit)`, per unit, in the order of `drugs`.
    pub choice: Vec<Vec<f64>>,
    /// The problem whose order set holds the slot, and the strength.
    pub order_set: Option<(usize, f64)>,
}

impl Slot {
    /// `P(ordered | latent state, the order set's problem present or not)`.
    pub fn ordered(&self, state: usize, problem_present: bool) -> f64 {
        let b = self.base[state];
        match self.order_set {
            Some((_, s)) if problem_present => 1.0 - (1.0 - b) * (1.0 - s),
            _ => b,
        }
    }
}

/// The `icu` preset's world.
#[derive(Clone, Debug)]
pub struct IcuWorld {
    pub drugs: Vocab,
    pub diagnoses: Vocab,
    pub procedures: Vocab,
    pub ddi: DdiGraph,
    pub units: Vec<Unit>,
    pub acuity: Vec<Acuity>,
    /// Every (unit, acuity) pair with its prior.
    pub states: Vec<LatentState>,
    pub problems: Vec<Problem>,
    pub slots: Vec<Slot>,
    /// `P(the unit's procedure is coded)`, for units that have one.
    pub unit_coded: f64,
    /// `P(the note names the unit)`.
    pub unit_noted: f64,
    /// `P(coded | absent)` of a problem.
    pub false_coded: f64,
    /// `P(named in the note | absent)` of a problem.
    pub false_noted: f64,
    /// `P(the note says the acuity)`.
    pub acuity_noted: f64,
    /// The slots of each problem's order set, and the slots of none.
    groups: Vec<Vec<usize>>,
    ungrouped: Vec<usize>,
}

/// What a stay's codes and note reveal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// The unit whose procedure is coded, if one is.
    pub unit_coded: Option<usize>,
    /// The unit the note names, if it names one.
    pub unit_noted: Option<usize>,
    /// The acuity the note says, if it says one.
    pub acuity_noted: Option<usize>,
    /// Per problem: coded.
    pub coded: Vec<bool>,
    /// Per problem: named in the note.
    pub noted: Vec<bool>,
}

/// A stay's latent state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Latent {
    /// The index in [`IcuWorld::states`].
    pub state: usize,
    pub problems: Vec<bool>,
}

/// One generated stay.
#[derive(Clone, Debug)]
pub struct Stay {
    pub latent: Latent,
    pub evidence: Evidence,
    pub drugs: DrugSet,
    pub note: String,
}

impl IcuWorld {
    /// The world of `assets/clinic/icu.ron` over the embedded formulary,
    /// whose DDI graph is the formulary's interactions and every pair of its
    /// drugs whose ATC level-3 classes interact in GAMENet's TWOSIDES graph
    /// (so that rates compare with the papers' MIMIC-III numbers).
    pub fn embedded() -> Result<Self, DataError> {
        let formulary = World::embedded()?;
        let mut classes: Vec<(String, String)> = Vec::new();
        for (n, line) in TWOSIDES_ATC3.lines().enumerate().skip(1) {
            let (a, b) = line.split_once(',').ok_or_else(|| DataError::World {
                path: PathBuf::from(TWOSIDES_ATC3_PATH),
                message: format!("line {}: not `atc3_a,atc3_b`", n + 1),
            })?;
            classes.push((a.trim().to_string(), b.trim().to_string()));
        }
        let drugs = &formulary.drugs;
        let class = |d: usize| drugs.code(d).get(..4).unwrap_or_default();
        let mut pairs = formulary.ddi.edges();
        for a in 0..drugs.len() {
            for b in a + 1..drugs.len() {
                let (ca, cb) = (class(a), class(b));
                if ca != cb
                    && classes
                        .iter()
                        .any(|(x, y)| (x == ca && y == cb) || (x == cb && y == ca))
                {
                    pairs.push((a, b));
                }
            }
        }
        let ddi = DdiGraph::from_pairs(
            drugs.len(),
            pairs,
            format!("assets/clinic/interactions.ron and {TWOSIDES_ATC3_PATH} (ATC level 3)"),
        )?;
        Self::from_ron(Path::new("assets/clinic/icu.ron"), ICU_RON, formulary.drugs, ddi)
    }

    /// A world from the text of an `icu.ron` over a formulary (drug codes)
    /// and its DDI graph.
    pub fn from_ron(path: &Path, text: &str, drugs: Vocab, ddi: DdiGraph) -> Result<Self, DataError> {
        let spec: IcuSpec = parse_ron(path, text)?;
        let err = |message: String| DataError::World {
            path: PathBuf::from(path),
            message,
        };
        let probability = |field: &str, p: f64| {
            if (0.0..=1.0).contains(&p) {
                Ok(p)
            } else {
                Err(err(format!("{field} is {p}, not a probability in [0, 1]")))
            }
        };
        for (field, p) in [
            ("unit_coded", spec.unit_coded),
            ("unit_noted", spec.unit_noted),
            ("false_coded", spec.false_coded),
            ("false_noted", spec.false_noted),
            ("acuity_noted", spec.acuity_noted),
        ] {
            probability(field, p)?;
        }
        if !(spec.favour.is_finite() && spec.favour > 0.0) {
            return Err(err(format!("favour is {}, not a positive weight", spec.favour)));
        }
        for (what, priors) in [
            ("units", spec.units.iter().map(|u| u.prior).collect::<Vec<f64>>()),
            ("acuity levels", spec.acuity.iter().map(|a| a.prior).collect()),
        ] {
            if priors.is_empty() {
                return Err(err(format!("no {what}")));
            }
            let total: f64 = priors.iter().sum();
            if (total - 1.0).abs() > 1e-9 {
                return Err(err(format!("the {what}' priors sum to {total}, not 1")));
            }
        }
        let mut acuity = Vec::new();
        for a in &spec.acuity {
            probability(&format!("acuity {}'s prior", a.name), a.prior)?;
            if !(a.scale.is_finite() && a.scale > 0.0) {
                return Err(err(format!(
                    "acuity {}'s scale is {}, not a positive number",
                    a.name, a.scale
                )));
            }
            acuity.push(Acuity {
                name: a.name.clone(),
                phrase: a.phrase.clone(),
                prior: a.prior,
                scale: a.scale,
            });
        }
        let mut procedures = Vocab::new();
        let mut units = Vec::new();
        for u in &spec.units {
            probability(&format!("unit {}'s prior", u.name), u.prior)?;
            if units.iter().any(|v: &Unit| v.name == u.name) {
                return Err(err(format!("unit {} is listed twice", u.name)));
            }
            let procedure = u
                .procedure
                .as_ref()
                .map(|c| procedures.insert(c.icd9.as_str(), c.name.as_str()));
            units.push(Unit {
                name: u.name.clone(),
                phrase: u.phrase.clone(),
                prior: u.prior,
                procedure,
            });
        }
        let states: Vec<LatentState> = (0..units.len())
            .flat_map(|u| {
                acuity
                    .iter()
                    .enumerate()
                    .map(move |(a, level)| (u, a, level.prior))
            })
            .map(|(u, a, p)| LatentState {
                unit: u,
                acuity: a,
                prior: units[u].prior * p,
            })
            .collect();
        // A probability under a state: the unit's, with the acuity's hazard.
        let scaled = |p: f64, state: &LatentState| 1.0 - (1.0 - p).powf(acuity[state.acuity].scale);
        let unit = |name: &str| {
            units
                .iter()
                .position(|u| u.name == name)
                .ok_or_else(|| err(format!("unit {name} is not listed in `units`")))
        };
        let mut diagnoses = Vocab::new();
        let mut problems = Vec::new();
        for p in &spec.problems {
            if diagnoses.get(&p.icd9).is_some() {
                return Err(err(format!("problem {} is listed twice", p.icd9)));
            }
            if p.prior.len() != units.len() {
                return Err(err(format!(
                    "problem {} has {} priors for {} units",
                    p.icd9,
                    p.prior.len(),
                    units.len()
                )));
            }
            for &x in &p.prior {
                probability(&format!("problem {}'s prior", p.icd9), x)?;
            }
            problems.push(Problem {
                diagnosis: diagnoses.insert(p.icd9.as_str(), p.name.as_str()),
                phrase: p.phrase.clone(),
                prior: states.iter().map(|st| scaled(p.prior[st.unit], st)).collect(),
                coded: probability(&format!("problem {}'s coded", p.icd9), p.coded)?,
                noted: probability(&format!("problem {}'s noted", p.icd9), p.noted)?,
            });
        }
        let mut in_slot = vec![false; drugs.len()];
        let mut slots = Vec::new();
        for s in &spec.slots {
            if s.drugs.is_empty() {
                return Err(err(format!("slot {} gives no drug", s.class)));
            }
            let mut members = Vec::new();
            for code in &s.drugs {
                let d = drugs
                    .get(code)
                    .ok_or_else(|| err(format!("drug {code} (slot {}) is not in the formulary", s.class)))?;
                if std::mem::replace(&mut in_slot[d], true) {
                    return Err(err(format!("drug {code} is in two slots")));
                }
                members.push(d);
            }
            let mut unit_base = vec![probability(&format!("slot {}'s base", s.class), s.base)?; units.len()];
            for (name, &b) in &s.unit_base {
                unit_base[unit(name)?] = probability(&format!("slot {}'s unit_base", s.class), b)?;
            }
            let base = states.iter().map(|st| scaled(unit_base[st.unit], st)).collect();
            let mut choice = vec![vec![1.0; members.len()]; units.len()];
            for (name, code) in &s.favoured {
                let k =
                    s.drugs.iter().position(|c| c == code).ok_or_else(|| {
                        err(format!("slot {} favours {code}, which it does not give", s.class))
                    })?;
                choice[unit(name)?][k] = spec.favour;
            }
            for row in &mut choice {
                let sum: f64 = row.iter().sum();
                row.iter_mut().for_each(|w| *w /= sum);
            }
            let order_set = match &s.order_set {
                None => {
                    if s.strength != 0.0 {
                        return Err(err(format!("slot {} has a strength but no order set", s.class)));
                    }
                    None
                }
                Some(code) => {
                    let k = diagnoses.get(code).ok_or_else(|| {
                        err(format!("slot {}'s order set {code} is not a problem", s.class))
                    })?;
                    Some((
                        k,
                        probability(&format!("slot {}'s strength", s.class), s.strength)?,
                    ))
                }
            };
            slots.push(Slot {
                class: s.class.clone(),
                drugs: members,
                base,
                choice,
                order_set,
            });
        }
        let mut groups = vec![Vec::new(); problems.len()];
        let mut ungrouped = Vec::new();
        for (j, s) in slots.iter().enumerate() {
            match s.order_set {
                Some((k, _)) => groups[k].push(j),
                None => ungrouped.push(j),
            }
        }
        Ok(Self {
            drugs,
            diagnoses,
            procedures,
            ddi,
            units,
            acuity,
            states,
            problems,
            slots,
            unit_coded: spec.unit_coded,
            unit_noted: spec.unit_noted,
            false_coded: spec.false_coded,
            false_noted: spec.false_noted,
            acuity_noted: spec.acuity_noted,
            groups,
            ungrouped,
        })
    }

    /// Draws one stay.
    pub fn draw(&self, age: u32, sex: Sex, rng: &mut Rng) -> Stay {
        let priors: Vec<f64> = self.states.iter().map(|s| s.prior).collect();
        let state = draw_index(&priors, rng);
        let LatentState { unit, acuity, .. } = self.states[state];
        let problems: Vec<bool> = self
            .problems
            .iter()
            .map(|p| rng.random_bool(p.prior[state]))
            .collect();
        let unit_coded =
            (self.units[unit].procedure.is_some() && rng.random_bool(self.unit_coded)).then_some(unit);
        let unit_noted = rng.random_bool(self.unit_noted).then_some(unit);
        let acuity_noted = rng.random_bool(self.acuity_noted).then_some(acuity);
        let (mut coded, mut noted) = (Vec::new(), Vec::new());
        for (p, &present) in self.problems.iter().zip(&problems) {
            coded.push(rng.random_bool(if present { p.coded } else { self.false_coded }));
            noted.push(rng.random_bool(if present { p.noted } else { self.false_noted }));
        }
        let mut drugs = DrugSet::empty(self.drugs.len());
        for s in &self.slots {
            let present = s.order_set.is_some_and(|(k, _)| problems[k]);
            if rng.random_bool(s.ordered(state, present)) {
                drugs.insert(s.drugs[draw_index(&s.choice[unit], rng)]);
            }
        }
        let evidence = Evidence {
            unit_coded,
            unit_noted,
            acuity_noted,
            coded,
            noted,
        };
        let note = self.note(age, sex, &evidence, rng);
        Stay {
            latent: Latent { state, problems },
            evidence,
            drugs,
            note,
        }
    }

    /// The note of a stay: an opening, the unit where it is named, each
    /// problem it names; the rest is filler that carries nothing.
    fn note(&self, age: u32, sex: Sex, e: &Evidence, rng: &mut Rng) -> String {
        let sex = match sex {
            Sex::Female => "woman",
            Sex::Male => "man",
        };
        let mut sentences = vec![format!("{age}-year-old {sex} in intensive care.")];
        if let Some(u) = e.unit_noted {
            sentences.push(format!("Admitted to {}.", self.units[u].phrase));
        }
        if let Some(a) = e.acuity_noted {
            sentences.push(format!("Currently {}.", self.acuity[a].phrase));
        }
        for (p, &named) in self.problems.iter().zip(&e.noted) {
            if named {
                sentences.push(format!("Now {}.", p.phrase));
            }
        }
        const FILLER: [&str; 4] = [
            "Family updated at the bedside.",
            "Plan discussed on rounds.",
            "Lines and drains reviewed.",
            "Code status: full code.",
        ];
        sentences.push(FILLER.choose(rng).copied().unwrap_or_default().to_string());
        sentences.join(" ")
    }

    /// The list a clinician with full knowledge of the latent state would
    /// most likely give: each slot whose ordering probability is at least
    /// one half, with the unit's most likely drug.
    pub fn full_knowledge_list(&self, latent: &Latent) -> DrugSet {
        let mut list = DrugSet::empty(self.drugs.len());
        for s in &self.slots {
            let present = s.order_set.is_some_and(|(k, _)| latent.problems[k]);
            if s.ordered(latent.state, present) >= 0.5 {
                let row = &s.choice[self.states[latent.state].unit];
                let best = (0..row.len()).fold(0, |b, k| if row[k] > row[b] { k } else { b });
                list.insert(s.drugs[best]);
            }
        }
        list
    }

    /// The exact posterior of a stay's latent state and prescription given
    /// what its codes and note reveal.
    pub fn posterior(&self, e: &Evidence) -> IcuPosterior<'_> {
        let n_states = self.states.len();
        let mut log_state = vec![0.0; n_states];
        let mut present = vec![vec![0.0; self.problems.len()]; n_states];
        for (i, st) in self.states.iter().enumerate() {
            let (u, unit) = (st.unit, &self.units[st.unit]);
            let mut l = st.prior.ln();
            // The unit's own procedure is coded only on that unit.
            l += match (e.unit_coded, unit.procedure) {
                (Some(c), _) if c == u => self.unit_coded.ln(),
                (Some(_), _) => f64::NEG_INFINITY,
                (None, Some(_)) => (1.0 - self.unit_coded).ln(),
                (None, None) => 0.0,
            };
            l += match e.unit_noted {
                Some(c) if c == u => self.unit_noted.ln(),
                Some(_) => f64::NEG_INFINITY,
                None => (1.0 - self.unit_noted).ln(),
            };
            l += match e.acuity_noted {
                Some(a) if a == st.acuity => self.acuity_noted.ln(),
                Some(_) => f64::NEG_INFINITY,
                None => (1.0 - self.acuity_noted).ln(),
            };
            for (k, p) in self.problems.iter().enumerate() {
                let like = |hit: bool, p_yes: f64| if hit { p_yes } else { 1.0 - p_yes };
                let l1 = p.prior[i] * like(e.coded[k], p.coded) * like(e.noted[k], p.noted);
                let l0 = (1.0 - p.prior[i])
                    * like(e.coded[k], self.false_coded)
                    * like(e.noted[k], self.false_noted);
                l += (l0 + l1).ln();
                present[i][k] = if l0 + l1 > 0.0 { l1 / (l0 + l1) } else { 0.0 };
            }
            log_state[i] = l;
        }
        let max = log_state.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut state: Vec<f64> = log_state.iter().map(|l| (l - max).exp()).collect();
        let z: f64 = state.iter().sum();
        state.iter_mut().for_each(|p| *p /= z);
        let mut marginals = vec![0.0; self.drugs.len()];
        for (i, &pi) in state.iter().enumerate() {
            for (m, c) in marginals.iter_mut().zip(self.state_marginals(i, &present[i])) {
                *m += pi * c;
            }
        }
        IcuPosterior {
            world: self,
            state,
            present,
            marginals,
        }
    }
}

impl IcuWorld {
    /// `P(d ∈ G | latent state, evidence)` for every drug, given each
    /// problem's posterior presence on that state.
    fn state_marginals(&self, state: usize, present: &[f64]) -> Vec<f64> {
        let u = self.states[state].unit;
        let mut marginals = vec![0.0; self.drugs.len()];
        for s in &self.slots {
            let on = match s.order_set {
                Some((k, _)) => {
                    (1.0 - present[k]) * s.ordered(state, false) + present[k] * s.ordered(state, true)
                }
                None => s.ordered(state, false),
            };
            for (&d, &q) in s.drugs.iter().zip(&s.choice[u]) {
                marginals[d] = on * q;
            }
        }
        marginals
    }
}

/// The exact posterior of one stay (see [`IcuWorld::posterior`]).
#[derive(Clone, Debug)]
pub struct IcuPosterior<'w> {
    world: &'w IcuWorld,
    /// `P(latent state | evidence)`, per state of [`IcuWorld::states`].
    pub state: Vec<f64>,
    /// `P(problem present | latent state, evidence)`, per state.
    pub present: Vec<Vec<f64>>,
    marginals: Vec<f64>,
}

impl IcuPosterior<'_> {
    /// A slot's chance of giving a drug in `list` and one outside it, on a
    /// unit, given it is ordered.
    fn split(&self, slot: usize, unit: usize, list: &DrugSet) -> (f64, f64) {
        let s = &self.world.slots[slot];
        let mut inside = 0.0;
        for (&d, &q) in s.drugs.iter().zip(&s.choice[unit]) {
            if list.contains(d) {
                inside += q;
            }
        }
        (inside, 1.0 - inside)
    }
}

impl ListPosterior for IcuPosterior<'_> {
    fn marginals(&self) -> &[f64] {
        &self.marginals
    }

    /// One component per latent state with posterior weight at least 1e-3.
    fn components(&self) -> Vec<(f64, Vec<f64>)> {
        self.state
            .iter()
            .enumerate()
            .filter(|(_, pi)| **pi >= 1e-3)
            .map(|(i, &pi)| (pi, self.world.state_marginals(i, &self.present[i])))
            .collect()
    }

    fn overlap(&self, list: &DrugSet) -> Overlap {
        let w = self.world;
        let mut total = Overlap::zeros(0, 0);
        for (i, &pi) in self.state.iter().enumerate() {
            if pi == 0.0 {
                continue;
            }
            let u = w.states[i].unit;
            let mut acc = Overlap::certain_empty();
            for (k, group) in w.groups.iter().enumerate() {
                if group.is_empty() {
                    continue;
                }
                let ph = self.present[i][k];
                let mut with = [acc.clone(), acc];
                for (h, table) in with.iter_mut().enumerate() {
                    for &j in group {
                        let (inside, outside) = self.split(j, u, list);
                        let on = w.slots[j].ordered(i, h == 1);
                        table.convolve_slot(on * inside, on * outside);
                    }
                }
                let [absent, present] = with;
                let mut mixed = Overlap::zeros(0, 0);
                mixed.add_scaled(&absent, 1.0 - ph);
                mixed.add_scaled(&present, ph);
                acc = mixed;
            }
            for &j in &w.ungrouped {
                let (inside, outside) = self.split(j, u, list);
                let on = w.slots[j].ordered(i, false);
                acc.convolve_slot(on * inside, on * outside);
            }
            total.add_scaled(&acc, pi);
        }
        total
    }
}

fn draw_index(weights: &[f64], rng: &mut Rng) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (i, &w) in weights.iter().enumerate() {
        if x < w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

#[cfg(test)]
mod tests;
