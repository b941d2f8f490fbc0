//! The synthetic clinic's world: conditions, drugs, interactions, allergies,
//! procedures and note phrases, read from RON files (embedded from
//! `assets/clinic/`, or a folder of the same files).

use std::path::{Path, PathBuf};

use rxalign_core::{DdiGraph, DrugSet, Sex, Vocab};
use serde::Deserialize;

use crate::DataError;

const FILES: [(&str, &str); 6] = [
    ("drugs.ron", include_str!("../../../../assets/clinic/drugs.ron")),
    (
        "conditions.ron",
        include_str!("../../../../assets/clinic/conditions.ron"),
    ),
    (
        "interactions.ron",
        include_str!("../../../../assets/clinic/interactions.ron"),
    ),
    (
        "allergies.ron",
        include_str!("../../../../assets/clinic/allergies.ron"),
    ),
    (
        "procedures.ron",
        include_str!("../../../../assets/clinic/procedures.ron"),
    ),
    (
        "phrases.ron",
        include_str!("../../../../assets/clinic/phrases.ron"),
    ),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrugSpec {
    atc: String,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChoiceSpec {
    drug: String,
    #[serde(default)]
    alt: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcedureOddsSpec {
    code: String,
    p: f64,
    p_severe: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionSpec {
    icd9: String,
    name: String,
    phrase: String,
    chronic: bool,
    prevalence: f64,
    #[serde(default)]
    sex: Option<Sex>,
    treat: Vec<ChoiceSpec>,
    #[serde(default)]
    severe: Vec<ChoiceSpec>,
    #[serde(default)]
    procedures: Vec<ProcedureOddsSpec>,
}

/// How a clinician treats an interacting pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Severity {
    /// Never given together.
    Contraindicated,
    /// Avoided when an alternative exists, accepted otherwise.
    Major,
    /// Given together, with monitoring.
    Moderate,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InteractionSpec {
    a: String,
    b: String,
    severity: Severity,
    effect: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllergySpec {
    name: String,
    prevalence: f64,
    reactions: Vec<String>,
    drugs: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcedureSpec {
    icd9: String,
    name: String,
}

/// Sentence templates for notes (see `assets/clinic/phrases.ron`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phrases {
    pub opening: Vec<String>,
    pub history: Vec<String>,
    pub allergy: Vec<String>,
    pub no_allergy: Vec<String>,
    pub home_medications: Vec<String>,
    pub severe: Vec<String>,
    pub stable: Vec<String>,
    pub filler: Vec<String>,
}

/// A first-line drug and its alternatives, in order of preference.
#[derive(Clone, Debug)]
pub struct Choice {
    pub drug: usize,
    pub alternatives: Vec<usize>,
}

impl Choice {
    /// The first-line drug, then the alternatives.
    pub fn candidates(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(self.drug).chain(self.alternatives.iter().copied())
    }
}

/// A condition, indexed like the diagnosis vocabulary.
#[derive(Clone, Debug)]
pub struct Condition {
    pub phrase: String,
    pub chronic: bool,
    pub prevalence: f64,
    pub sex: Option<Sex>,
    pub treat: Vec<Choice>,
    pub severe: Vec<Choice>,
    /// `(procedure index, probability, probability when severe)`.
    pub procedures: Vec<(usize, f64, f64)>,
}

#[derive(Clone, Debug)]
pub struct Allergy {
    pub name: String,
    pub prevalence: f64,
    pub reactions: Vec<String>,
    pub drugs: DrugSet,
}

#[derive(Clone, Debug)]
pub struct Interaction {
    pub a: usize,
    pub b: usize,
    pub severity: Severity,
    pub effect: String,
}

/// The resolved world: every code is an index into its vocabulary.
#[derive(Clone, Debug)]
pub struct World {
    pub drugs: Vocab,
    pub diagnoses: Vocab,
    pub procedures: Vocab,
    pub conditions: Vec<Condition>,
    pub allergies: Vec<Allergy>,
    pub interactions: Vec<Interaction>,
    /// Every interacting pair, whatever its severity.
    pub ddi: DdiGraph,
    /// The pairs a clinician avoids when possible (major and contraindicated).
    pub avoided: DdiGraph,
    /// The contraindicated pairs only.
    pub contraindicated: DdiGraph,
    pub phrases: Phrases,
}

impl World {
    /// The world shipped in `assets/clinic/`, embedded in the binary.
    pub fn embedded() -> Result<Self, DataError> {
        Self::from_sources(|name| {
            let text = FILES.iter().find(|(n, _)| *n == name).map(|(_, t)| t.to_string());
            Ok((
                PathBuf::from("assets/clinic").join(name),
                text.expect("every world file is embedded"),
            ))
        })
    }

    /// A world from a folder holding the same six RON files.
    pub fn from_dir(dir: &Path) -> Result<Self, DataError> {
        Self::from_sources(|name| {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path).map_err(|e| rxalign_core::CoreError::io(&path, e))?;
            Ok((path, text))
        })
    }

    fn from_sources(
        mut read: impl FnMut(&str) -> Result<(PathBuf, String), DataError>,
    ) -> Result<Self, DataError> {
        let (drugs_path, t) = read("drugs.ron")?;
        let drug_specs: Vec<DrugSpec> = parse_ron(&drugs_path, &t)?;
        let (cond_path, t) = read("conditions.ron")?;
        let cond_specs: Vec<ConditionSpec> = parse_ron(&cond_path, &t)?;
        let (ddi_path, t) = read("interactions.ron")?;
        let ddi_specs: Vec<InteractionSpec> = parse_ron(&ddi_path, &t)?;
        let (allergy_path, t) = read("allergies.ron")?;
        let allergy_specs: Vec<AllergySpec> = parse_ron(&allergy_path, &t)?;
        let (proc_path, t) = read("procedures.ron")?;
        let proc_specs: Vec<ProcedureSpec> = parse_ron(&proc_path, &t)?;
        let (phrase_path, t) = read("phrases.ron")?;
        let phrases: Phrases = parse_ron(&phrase_path, &t)?;

        let world_err = |path: &Path, message: String| DataError::World {
            path: path.to_path_buf(),
            message,
        };
        let mut drugs = Vocab::new();
        for d in &drug_specs {
            if drugs.get(&d.atc).is_some() {
                return Err(world_err(&drugs_path, format!("drug {} is listed twice", d.atc)));
            }
            drugs.insert(d.atc.as_str(), d.name.as_str());
        }
        let drug = |path: &Path, code: &str| {
            drugs
                .get(code)
                .ok_or_else(|| world_err(path, format!("drug {code} is not in drugs.ron")))
        };
        let mut procedures = Vocab::new();
        for p in &proc_specs {
            procedures.insert(p.icd9.as_str(), p.name.as_str());
        }
        let mut diagnoses = Vocab::new();
        let mut conditions = Vec::new();
        for c in &cond_specs {
            if diagnoses.get(&c.icd9).is_some() {
                return Err(world_err(
                    &cond_path,
                    format!("condition {} is listed twice", c.icd9),
                ));
            }
            if c.treat.is_empty() {
                return Err(world_err(
                    &cond_path,
                    format!("condition {} treats with no drug", c.icd9),
                ));
            }
            diagnoses.insert(c.icd9.as_str(), c.name.as_str());
            let choices = |list: &[ChoiceSpec]| -> Result<Vec<Choice>, DataError> {
                list.iter()
                    .map(|ch| {
                        Ok(Choice {
                            drug: drug(&cond_path, &ch.drug)?,
                            alternatives: ch
                                .alt
                                .iter()
                                .map(|a| drug(&cond_path, a))
                                .collect::<Result<_, _>>()?,
                        })
                    })
                    .collect()
            };
            let procs = c
                .procedures
                .iter()
                .map(|p| {
                    let i = procedures.get(&p.code).ok_or_else(|| {
                        world_err(
                            &cond_path,
                            format!("procedure {} (of {}) is not in procedures.ron", p.code, c.icd9),
                        )
                    })?;
                    Ok((i, p.p, p.p_severe))
                })
                .collect::<Result<_, DataError>>()?;
            conditions.push(Condition {
                phrase: c.phrase.clone(),
                chronic: c.chronic,
                prevalence: c.prevalence,
                sex: c.sex,
                treat: choices(&c.treat)?,
                severe: choices(&c.severe)?,
                procedures: procs,
            });
        }
        let mut interactions = Vec::new();
        for s in &ddi_specs {
            interactions.push(Interaction {
                a: drug(&ddi_path, &s.a)?,
                b: drug(&ddi_path, &s.b)?,
                severity: s.severity,
                effect: s.effect.clone(),
            });
        }
        let origin = "synthetic clinic (assets/clinic/interactions.ron)";
        let ddi = DdiGraph::from_pairs(drugs.len(), interactions.iter().map(|i| (i.a, i.b)), origin)
            .map_err(|e| world_err(&ddi_path, e.to_string()))?;
        let graph_of = |keep: &dyn Fn(Severity) -> bool| {
            DdiGraph::from_pairs(
                drugs.len(),
                interactions
                    .iter()
                    .filter(|i| keep(i.severity))
                    .map(|i| (i.a, i.b)),
                origin,
            )
            .map_err(|e| world_err(&ddi_path, e.to_string()))
        };
        let avoided = graph_of(&|s| s != Severity::Moderate)?;
        let contraindicated = graph_of(&|s| s == Severity::Contraindicated)?;
        let mut allergies = Vec::new();
        for a in &allergy_specs {
            let mut set = DrugSet::empty(drugs.len());
            for d in &a.drugs {
                set.insert(drug(&allergy_path, d)?);
            }
            if a.reactions.is_empty() {
                return Err(world_err(
                    &allergy_path,
                    format!("allergy {} names no reaction", a.name),
                ));
            }
            allergies.push(Allergy {
                name: a.name.clone(),
                prevalence: a.prevalence,
                reactions: a.reactions.clone(),
                drugs: set,
            });
        }
        for (name, list) in [
            ("opening", &phrases.opening),
            ("history", &phrases.history),
            ("allergy", &phrases.allergy),
            ("no_allergy", &phrases.no_allergy),
            ("home_medications", &phrases.home_medications),
            ("severe", &phrases.severe),
            ("stable", &phrases.stable),
            ("filler", &phrases.filler),
        ] {
            if list.is_empty() {
                return Err(world_err(
                    &phrase_path,
                    format!("`{name}` needs at least one phrase"),
                ));
            }
        }
        Ok(Self {
            drugs,
            diagnoses,
            procedures,
            conditions,
            allergies,
            interactions,
            ddi,
            avoided,
            contraindicated,
            phrases,
        })
    }

    /// Every drug a condition may be treated with (first-line, alternatives
    /// and severe add-ons).
    pub fn indicated(&self, condition: usize) -> DrugSet {
        let c = &self.conditions[condition];
        let mut set = DrugSet::empty(self.drugs.len());
        for choice in c.treat.iter().chain(&c.severe) {
            for d in choice.candidates() {
                set.insert(d);
            }
        }
        set
    }
}

/// Parses RON; an error names the file, line and column.
pub(crate) fn parse_ron<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, DataError> {
    ron::from_str(text).map_err(|e| DataError::Ron {
        path: path.to_path_buf(),
        line: e.position.line,
        column: e.position.col,
        message: e.code.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_world_is_large_enough_and_consistent() {
        let w = World::embedded().unwrap();
        assert!(w.conditions.len() >= 40, "{} conditions", w.conditions.len());
        assert!(w.drugs.len() >= 80, "{} drugs", w.drugs.len());
        assert!(w.ddi.edge_count() >= 60);
        assert!(w.contraindicated.edge_count() > 0);
        assert!(w.conditions.iter().any(|c| c.chronic) && w.conditions.iter().any(|c| !c.chronic));
        assert_eq!(w.diagnoses.len(), w.conditions.len());
    }

    #[test]
    fn a_bad_world_file_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in FILES {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        std::fs::write(dir.path().join("drugs.ron"), "[\n  (atc: \"X\", nam: \"x\"),\n]").unwrap();
        let err = World::from_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("drugs.ron:2:") && err.contains("nam"), "{err}");
    }
}
