//! MIMIC-III and MIMIC-IV import: raw tables to a dataset folder, following
//! the conventions the field compares against, with a report that counts
//! everything it drops.
//!
//! A visit is an admission that has at least one diagnosis, one procedure
//! and one prescription row whose NDC maps to a drug code; its drugs are the
//! codes of all its prescription rows with a non-zero NDC that maps (after
//! the drug-type filter). Then, in order: `--top-drugs` keeps the most
//! frequent drug codes (by visits) and drops visits left without drugs;
//! `--min-code-count` drops rare diagnosis and procedure codes and the visits
//! left without either; `--require-note` drops visits without a discharge
//! summary; `--min-visits` drops patients with fewer visits.

mod mimic3;
mod mimic4;
pub mod ndc;
pub mod notes;
mod table;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rxalign_core::ddi::UnknownCodes;
use rxalign_core::{Cohort, CoreError, DdiGraph, DrugSet, Sex, Visit, Vocab};
use serde::{Deserialize, Serialize};

pub use mimic3::import_mimic3;
pub use mimic4::import_mimic4;
pub use ndc::NdcMap;

use crate::DataError;

/// The report written beside an imported dataset.
pub const IMPORT_REPORT: &str = "import-report.json";

/// Settings of an import, with the field's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MimicOptions {
    /// Patients with fewer visits are dropped (GAMENet and SafeDrug keep
    /// patients with at least 2).
    pub min_visits: usize,
    /// Keep the N most frequent drug codes (SafeDrug keeps 300); 0 for no
    /// limit.
    pub top_drugs: usize,
    /// Diagnosis and procedure codes seen in fewer visits are dropped; 1 for
    /// no filter.
    pub min_code_count: usize,
    /// Prescription `drug_type`s kept (MAIN, BASE, ADDITIVE); empty for all.
    pub drug_types: Vec<String>,
    /// Drop visits without a discharge summary.
    pub require_note: bool,
    /// MIMIC-IV only: keep patients whose `anchor_year_group` is listed
    /// (for temporal validation, as FLAME and LAMO do); empty for all.
    pub anchor_year_groups: Vec<String>,
}

impl Default for MimicOptions {
    fn default() -> Self {
        Self {
            min_visits: 2,
            top_drugs: 300,
            min_code_count: 1,
            drug_types: Vec::new(),
            require_note: false,
            anchor_year_groups: Vec::new(),
        }
    }
}

/// The files beside the raw tables.
#[derive(Clone, Debug)]
pub struct MimicSources {
    /// NDC to drug code (`ndc11,atc3`, or NDC to DrugBank).
    pub ndc_map: PathBuf,
    /// A DDI edge list over the drug codes, carried into the dataset.
    pub ddi: Option<PathBuf>,
    /// `atc_code,atc_name,...` (the WHO ATC index) to name ATC codes.
    pub atc_names: Option<PathBuf>,
    /// A folder of CMS ICD-9-CM title files (`*_LONG_DX.txt`,
    /// `*_LONG_SG.txt`) naming the codes the MIMIC `d_icd_*` tables leave
    /// unnamed.
    pub icd9_titles: Option<PathBuf>,
    /// MIMIC-IV: the folder with `discharge.csv(.gz)` of MIMIC-IV-Note.
    pub notes: Option<PathBuf>,
}

/// Rows of one table: read, and dropped by reason.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TableReport {
    pub file: String,
    pub rows_read: u64,
    pub rows_dropped: BTreeMap<String, u64>,
}

impl TableReport {
    fn drop(&mut self, reason: &str) {
        *self.rows_dropped.entry(reason.to_string()).or_default() += 1;
    }
}

/// What an import read, kept and dropped, and why.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    pub source: String,
    pub root: String,
    pub options: Option<MimicOptions>,
    pub ndc_map: String,
    pub ndc_map_entries: usize,
    pub tables: BTreeMap<String, TableReport>,
    pub admissions: u64,
    /// Visits (admissions) dropped, by reason, in the order the filters run.
    pub visits_dropped: BTreeMap<String, u64>,
    pub visits: usize,
    pub patients: usize,
    pub patients_dropped_min_visits: u64,
    /// `(visit, drug)` pairs removed by `--top-drugs`.
    pub drug_entries_dropped_top_drugs: u64,
    /// `(visit, code)` pairs removed by `--min-code-count`.
    pub code_entries_dropped_min_count: u64,
    /// Unmapped NDCs with the number of prescription rows naming them, most
    /// frequent first.
    pub unmapped_ndcs: Vec<(String, u64)>,
    pub notes_discharge_summaries: u64,
    pub notes_sections_kept: u64,
    pub notes_sections_dropped_for_leak: u64,
    pub visits_with_note: usize,
    pub ddi_edges_in_file: usize,
    pub ddi_edges_kept: usize,
    pub ddi_edges_outside_drugs: usize,
}

/// One admission as the raw tables give it.
#[derive(Clone, Debug, Default)]
struct Admission {
    subject: u64,
    /// The admission time as written, and the instant it names (visits are
    /// ordered by the instant).
    time: String,
    at: Option<crate::time::VisitTime>,
    age: Option<f32>,
    sex: Option<Sex>,
    diagnoses: Vec<(u32, u32)>,
    procedures: Vec<(u32, u32)>,
    drugs: Vec<u32>,
    note: String,
}

/// Discharge summaries being attached to admissions, with their counts.
#[derive(Debug, Default)]
struct NoteIntake {
    stats: notes::SectionStats,
    summaries: u64,
}

impl NoteIntake {
    /// Keeps the allowed sections of a summary and appends them to the
    /// admission's note.
    fn add(&mut self, admission: &mut Admission, text: &str) {
        self.summaries += 1;
        let kept = notes::keep_sections(text, &mut self.stats);
        if !kept.is_empty() {
            if !admission.note.is_empty() {
                admission.note.push_str("\n\n");
            }
            admission.note.push_str(&kept);
        }
    }

    /// Records the notes table and the counts in the report.
    fn finish(self, report: &mut ImportReport, table: &str, rows: TableReport) {
        report.tables.insert(table.to_string(), rows);
        report.notes_discharge_summaries = self.summaries;
        report.notes_sections_kept = self.stats.kept;
        report.notes_sections_dropped_for_leak = self.stats.dropped_for_leak;
    }
}

/// Interns codes as they stream by.
#[derive(Clone, Debug, Default)]
struct Interner {
    codes: Vec<String>,
    index: HashMap<String, u32>,
}

impl Interner {
    fn get(&mut self, code: &str) -> u32 {
        if let Some(&i) = self.index.get(code) {
            return i;
        }
        let i = self.codes.len() as u32;
        self.index.insert(code.to_string(), i);
        self.codes.push(code.to_string());
        i
    }
}

/// The tables read so far, shared by both MIMIC versions.
#[derive(Debug, Default)]
struct Raw {
    admissions: HashMap<u64, Admission>,
    diagnoses: Interner,
    procedures: Interner,
    diagnosis_names: HashMap<String, String>,
    procedure_names: HashMap<String, String>,
    unmapped: HashMap<u64, u64>,
    report: ImportReport,
}

impl Raw {
    /// The start of an import: the root must be a folder and the NDC map
    /// non-empty (read before the large tables, so it fails early).
    fn begin(source: &str, root: &Path, sources: &MimicSources) -> Result<(Self, NdcMap), DataError> {
        if !root.is_dir() {
            return Err(CoreError::file(root, "no such folder of MIMIC tables").into());
        }
        let ndc_map = NdcMap::load(&sources.ndc_map)?;
        let mut raw = Self::default();
        raw.report.source = source.into();
        raw.report.root = root.display().to_string();
        Ok((raw, ndc_map))
    }

    fn table(&mut self, name: &str, path: &Path) -> &mut TableReport {
        let t = self.report.tables.entry(name.to_string()).or_default();
        t.file = path.display().to_string();
        t
    }

    /// Applies the filters, names the codes and writes the dataset folder
    /// and its report.
    fn finish(
        mut self,
        ndc_map: &NdcMap,
        sources: &MimicSources,
        options: &MimicOptions,
        out: &Path,
    ) -> Result<(Cohort, ImportReport), DataError> {
        let report = &mut self.report;
        report.options = Some(options.clone());
        report.ndc_map = sources.ndc_map.display().to_string();
        report.ndc_map_entries = ndc_map.len();
        report.admissions = self.admissions.len() as u64;
        let mut dropped = BTreeMap::new();
        let mut count = |reason: &str| *dropped.entry(reason.to_string()).or_insert(0u64) += 1;
        let mut visits: Vec<(u64, Admission)> = Vec::new();
        let mut ids: Vec<u64> = self.admissions.keys().copied().collect();
        ids.sort_unstable();
        for hadm in ids {
            let mut a = self.admissions.remove(&hadm).expect("listed");
            if a.diagnoses.is_empty() {
                count("1 no diagnosis");
            } else if a.procedures.is_empty() {
                count("2 no procedure");
            } else if a.drugs.is_empty() {
                count("3 no prescription with a mapped NDC");
            } else {
                for list in [&mut a.diagnoses, &mut a.procedures] {
                    list.sort_unstable();
                    let mut seen = std::collections::HashSet::new();
                    list.retain(|&(_, c)| seen.insert(c));
                }
                a.drugs.sort_unstable();
                a.drugs.dedup();
                visits.push((hadm, a));
            }
        }
        if options.top_drugs > 0 {
            let mut freq: HashMap<u32, u64> = HashMap::new();
            for (_, a) in &visits {
                for &d in &a.drugs {
                    *freq.entry(d).or_default() += 1;
                }
            }
            let mut order: Vec<(u32, u64)> = freq.into_iter().collect();
            order.sort_by(|a, b| {
                b.1.cmp(&a.1)
                    .then_with(|| ndc_map.codes[a.0 as usize].cmp(&ndc_map.codes[b.0 as usize]))
            });
            let keep: std::collections::HashSet<u32> =
                order.iter().take(options.top_drugs).map(|x| x.0).collect();
            visits.retain_mut(|(_, a)| {
                let before = a.drugs.len();
                a.drugs.retain(|d| keep.contains(d));
                report.drug_entries_dropped_top_drugs += (before - a.drugs.len()) as u64;
                if a.drugs.is_empty() {
                    count("4 no drug left after --top-drugs");
                }
                !a.drugs.is_empty()
            });
        }
        if options.min_code_count > 1 {
            let mut dx: HashMap<u32, usize> = HashMap::new();
            let mut px: HashMap<u32, usize> = HashMap::new();
            for (_, a) in &visits {
                a.diagnoses
                    .iter()
                    .for_each(|&(_, c)| *dx.entry(c).or_default() += 1);
                a.procedures
                    .iter()
                    .for_each(|&(_, c)| *px.entry(c).or_default() += 1);
            }
            visits.retain_mut(|(_, a)| {
                let before = a.diagnoses.len() + a.procedures.len();
                a.diagnoses.retain(|(_, c)| dx[c] >= options.min_code_count);
                a.procedures.retain(|(_, c)| px[c] >= options.min_code_count);
                report.code_entries_dropped_min_count +=
                    (before - a.diagnoses.len() - a.procedures.len()) as u64;
                let ok = !a.diagnoses.is_empty() && !a.procedures.is_empty();
                if !ok {
                    count("5 no diagnosis or procedure left after --min-code-count");
                }
                ok
            });
        }
        if options.require_note {
            visits.retain(|(_, a)| {
                if a.note.is_empty() {
                    count("6 no discharge summary (--require-note)");
                }
                !a.note.is_empty()
            });
        }
        let mut per_patient: HashMap<u64, usize> = HashMap::new();
        for (_, a) in &visits {
            *per_patient.entry(a.subject).or_default() += 1;
        }
        report.patients_dropped_min_visits =
            per_patient.values().filter(|&&n| n < options.min_visits).count() as u64;
        visits.retain(|(_, a)| {
            let ok = per_patient[&a.subject] >= options.min_visits;
            if !ok {
                count("7 patient below --min-visits");
            }
            ok
        });
        report.visits_dropped = dropped;
        // Patients in id order, their visits in time order.
        visits.sort_by(|(h1, a), (h2, b)| (a.subject, a.at, h1).cmp(&(b.subject, b.at, h2)));

        // Vocabularies of the codes kept, sorted by code.
        let mut drug_codes: Vec<u32> = visits.iter().flat_map(|(_, a)| a.drugs.iter().copied()).collect();
        drug_codes.sort_by(|a, b| ndc_map.codes[*a as usize].cmp(&ndc_map.codes[*b as usize]));
        drug_codes.dedup();
        let atc_names = match &sources.atc_names {
            Some(p) => read_atc_names(p)?,
            None => HashMap::new(),
        };
        let mut drugs = Vocab::new();
        let mut drug_index = HashMap::new();
        for c in drug_codes {
            let code = &ndc_map.codes[c as usize];
            let name = ndc_map
                .names
                .get(code)
                .or_else(|| atc_names.get(code))
                .cloned()
                .unwrap_or_else(|| code.clone());
            drug_index.insert(c, drugs.insert(code.as_str(), name));
        }
        let vocab_of =
            |interner: &Interner, names: &HashMap<String, String>, used: &mut dyn Iterator<Item = u32>| {
                let mut codes: Vec<u32> = used.collect();
                codes.sort_by(|a, b| interner.codes[*a as usize].cmp(&interner.codes[*b as usize]));
                codes.dedup();
                let mut vocab = Vocab::new();
                let mut index = HashMap::new();
                for c in codes {
                    let code = &interner.codes[c as usize];
                    index.insert(
                        c,
                        vocab.insert(
                            code.as_str(),
                            names.get(code).cloned().unwrap_or_else(|| code.clone()),
                        ),
                    );
                }
                (vocab, index)
            };
        if let Some(dir) = &sources.icd9_titles {
            for (suffix, names, interner) in [
                ("_LONG_DX.txt", &mut self.diagnosis_names, &self.diagnoses),
                ("_LONG_SG.txt", &mut self.procedure_names, &self.procedures),
            ] {
                let titles = read_cms_titles(dir, suffix)?;
                for code in &interner.codes {
                    let bare = code.strip_prefix("ICD9:").unwrap_or(code);
                    if let (false, Some(t)) = (names.contains_key(code), titles.get(bare)) {
                        names.insert(code.clone(), t.clone());
                    }
                }
            }
        }
        let (diagnoses, dx_index) = vocab_of(
            &self.diagnoses,
            &self.diagnosis_names,
            &mut visits.iter().flat_map(|(_, a)| a.diagnoses.iter().map(|x| x.1)),
        );
        let (procedures, px_index) = vocab_of(
            &self.procedures,
            &self.procedure_names,
            &mut visits.iter().flat_map(|(_, a)| a.procedures.iter().map(|x| x.1)),
        );

        let width = drugs.len();
        let mut cohort_visits = Vec::with_capacity(visits.len());
        let mut history: Vec<DrugSet> = Vec::new();
        let mut last_subject = None;
        for (hadm, a) in &visits {
            if last_subject != Some(a.subject) {
                history.clear();
                last_subject = Some(a.subject);
            }
            let set = DrugSet::from_indices(width, a.drugs.iter().map(|d| drug_index[d]));
            cohort_visits.push(Visit {
                time: Some(a.time.clone()),
                age: a.age,
                sex: a.sex,
                diagnoses: a.diagnoses.iter().map(|(_, c)| dx_index[c]).collect(),
                procedures: a.procedures.iter().map(|(_, c)| px_index[c]).collect(),
                note: (!a.note.is_empty()).then(|| a.note.clone()),
                history: history.clone(),
                ..Visit::new(a.subject.to_string(), hadm.to_string(), set.clone())
            });
            history.push(set);
        }
        if cohort_visits.is_empty() {
            let reasons: Vec<String> = report
                .visits_dropped
                .iter()
                .map(|(reason, n)| format!("{n} {}", reason.get(2..).unwrap_or(reason)))
                .collect();
            return Err(CoreError::file(
                &report.root,
                format!(
                    "no visit is left of {} admissions (dropped: {}); nothing is written",
                    report.admissions,
                    if reasons.is_empty() {
                        "none".to_string()
                    } else {
                        reasons.join("; ")
                    }
                ),
            )
            .into());
        }
        report.visits = cohort_visits.len();
        report.patients = per_patient.values().filter(|&&n| n >= options.min_visits).count();
        report.visits_with_note = cohort_visits.iter().filter(|v| v.note.is_some()).count();
        let ddi = match &sources.ddi {
            Some(path) => {
                let g = DdiGraph::load_csv(path, &drugs, UnknownCodes::Count)?;
                report.ddi_edges_in_file = g.source().edges_in_source;
                report.ddi_edges_kept = g.edge_count();
                report.ddi_edges_outside_drugs = g.source().edges_outside_vocab;
                g
            }
            None => DdiGraph::empty(width, "none (no --ddi given)"),
        };
        let mut unmapped: Vec<(u64, u64)> = self.unmapped.into_iter().collect();
        unmapped.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        report.unmapped_ndcs = unmapped
            .into_iter()
            .map(|(n, c)| (ndc::format_ndc(n), c))
            .collect();
        let name = out
            .file_name()
            .map_or_else(|| "mimic".to_string(), |n| n.to_string_lossy().into_owned());
        let cohort = Cohort::new(name, drugs, diagnoses, procedures, cohort_visits, ddi)?;
        crate::format::write_dataset(out, &cohort)?;
        let text = serde_json::to_string_pretty(&self.report).expect("the report serialises");
        rxalign_core::run::write_atomic(&out.join(IMPORT_REPORT), text.as_bytes())?;
        Ok((cohort, self.report))
    }
}

/// Which columns hold a code: MIMIC-III's `icd9_code`, or MIMIC-IV's
/// `icd_code` with its `icd_version` (codes then read `ICD9:4019`,
/// `ICD10:I10`, since the two revisions share some code strings).
#[derive(Clone, Copy, Debug)]
struct CodeColumns {
    code: &'static str,
    version: Option<&'static str>,
}

impl CodeColumns {
    fn read(&self, t: &table::Table) -> Result<(usize, Option<usize>), DataError> {
        Ok((
            t.column(self.code)?,
            self.version.map(|v| t.column(v)).transpose()?,
        ))
    }

    fn code(
        r: &csv::ByteRecord,
        code: usize,
        version: Option<usize>,
    ) -> Result<Option<String>, table::RowError> {
        let c = table::text(r, code)?;
        if c.is_empty() {
            return Ok(None);
        }
        Ok(Some(match version {
            Some(v) => format!("ICD{}:{c}", table::text(r, v)?),
            None => c.to_string(),
        }))
    }
}

/// A diagnoses or procedures table: `(seq_num, code)` per admission.
fn read_codes(
    mut t: table::Table,
    name: &str,
    raw: &mut Raw,
    diagnoses: bool,
    columns: &CodeColumns,
) -> Result<(), DataError> {
    let (hadm, seq) = (t.column("hadm_id")?, t.column("seq_num")?);
    let (code, version) = columns.read(&t)?;
    let mut report = TableReport {
        file: t.path.display().to_string(),
        ..Default::default()
    };
    let interner = if diagnoses {
        &mut raw.diagnoses
    } else {
        &mut raw.procedures
    };
    let admissions = &mut raw.admissions;
    report.rows_read = t.for_each(|_, r| {
        let Some(c) = CodeColumns::code(r, code, version)? else {
            report.drop("empty code");
            return Ok(());
        };
        let Some(a) = table::id(r, hadm)?.and_then(|h| admissions.get_mut(&h)) else {
            report.drop("admission not in the admissions table (or filtered out)");
            return Ok(());
        };
        let s = table::id(r, seq)?.map_or(u32::MAX, |s| s.min(u64::from(u32::MAX)) as u32);
        let c = interner.get(&c);
        if diagnoses {
            a.diagnoses.push((s, c))
        } else {
            a.procedures.push((s, c))
        }
        Ok(())
    })?;
    raw.report.tables.insert(name.to_string(), report);
    Ok(())
}

/// Long titles of codes from a `d_icd_*` table, when present.
fn read_names(
    dir: &Path,
    name: &str,
    names: &mut HashMap<String, String>,
    columns: &CodeColumns,
) -> Result<(), DataError> {
    let Some(path) = table::find(dir, name) else {
        return Ok(());
    };
    let mut t = table::Table::open_path(&path)?;
    let (code, version) = columns.read(&t)?;
    let title = t.column("long_title")?;
    t.for_each(|_, r| {
        if let Some(c) = CodeColumns::code(r, code, version)? {
            names.insert(c, table::text(r, title)?.to_string());
        }
        Ok(())
    })?;
    Ok(())
}

/// The prescriptions table, streamed: one drug code per row whose NDC maps.
fn read_prescriptions(
    mut t: table::Table,
    name: &str,
    raw: &mut Raw,
    ndc_map: &NdcMap,
    options: &MimicOptions,
) -> Result<(), DataError> {
    let (hadm, ndc_col) = (t.column("hadm_id")?, t.column("ndc")?);
    let drug_type = if options.drug_types.is_empty() {
        None
    } else {
        Some(t.column("drug_type")?)
    };
    let types: Vec<Vec<u8>> = options
        .drug_types
        .iter()
        .map(|s| s.to_uppercase().into_bytes())
        .collect();
    let mut report = TableReport {
        file: t.path.display().to_string(),
        ..Default::default()
    };
    let (admissions, unmapped) = (&mut raw.admissions, &mut raw.unmapped);
    report.rows_read = t.for_each(|_, r| {
        let Some(h) = table::id(r, hadm)? else {
            report.drop("no hadm_id");
            return Ok(());
        };
        if let Some(c) = drug_type {
            let ty = r.get(c).unwrap_or_default().to_ascii_uppercase();
            if !types.contains(&ty) {
                report.drop("drug_type filtered out");
                return Ok(());
            }
        }
        let Some(code) = ndc::parse_ndc(r.get(ndc_col).unwrap_or_default()) else {
            report.drop("no NDC (empty or 0)");
            return Ok(());
        };
        let Some(drug) = ndc_map.get(code) else {
            report.drop("NDC not in the map");
            *unmapped.entry(code).or_default() += 1;
            return Ok(());
        };
        match admissions.get_mut(&h) {
            Some(a) => a.drugs.push(drug),
            None => report.drop("admission not in the admissions table (or filtered out)"),
        }
        Ok(())
    })?;
    raw.report.tables.insert(name.to_string(), report);
    Ok(())
}

/// A CMS ICD-9-CM title file (`CODE title` lines, Latin-1) whose name ends
/// with `suffix`, in `dir`.
fn read_cms_titles(dir: &Path, suffix: &str) -> Result<HashMap<String, String>, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|e| CoreError::io(dir, e))?;
    let path = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(suffix))
        })
        .ok_or_else(|| CoreError::file(dir, format!("no CMS title file `*{suffix}` here")))?;
    let bytes = std::fs::read(&path).map_err(|e| CoreError::io(&path, e))?;
    let text: String = bytes.iter().map(|&b| char::from(b)).collect();
    Ok(text
        .lines()
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(c, t)| (c.to_string(), t.trim().to_string()))
        })
        .collect())
}

/// `atc_code,atc_name,...` as a map.
fn read_atc_names(path: &Path) -> Result<HashMap<String, String>, DataError> {
    let mut t = table::Table::open_path(path)?;
    let (code, name) = (t.column("atc_code")?, t.column("atc_name")?);
    let mut out = HashMap::new();
    t.for_each(|_, r| {
        out.insert(
            table::text(r, code)?.to_string(),
            table::text(r, name)?.to_string(),
        );
        Ok(())
    })?;
    Ok(out)
}

/// The age in whole years between two dates; MIMIC-III shifts the birth
/// dates of patients over 89 by 300 years, so ages above 89 read as 90 ("90
/// or older").
fn age_between(birth: &crate::time::VisitTime, at: &crate::time::VisitTime) -> Option<f32> {
    let days = birth.days_until(at);
    let years = (days as f64 / 365.2425).floor();
    (years >= 0.0).then(|| years.min(90.0) as f32)
}

fn parse_sex(s: &str) -> Option<Sex> {
    match s {
        "F" | "f" => Some(Sex::Female),
        "M" | "m" => Some(Sex::Male),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
