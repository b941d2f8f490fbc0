use std::collections::HashMap;
use std::path::Path;

use rxalign_core::ddi::UnknownCodes;
use rxalign_core::{Cohort, CoreError, DdiGraph, DrugSet, Visit, Vocab};

use super::{DDI, DIAGNOSES, DRUGS, PROCEDURES, VISITS, VisitRecord};
use crate::DataError;
use crate::time::VisitTime;

/// Loads a dataset folder (see [`crate::format`]) into a cohort named after
/// the folder.
pub fn load_dataset(dir: &Path) -> Result<Cohort, DataError> {
    if !dir.is_dir() {
        return Err(CoreError::file(dir, "not a dataset folder (no such directory)").into());
    }
    let drugs = read_code_names(&dir.join(DRUGS))?
        .ok_or_else(|| CoreError::file(dir.join(DRUGS), "missing: a dataset needs drugs.csv (code,name)"))?;
    if drugs.is_empty() {
        return Err(CoreError::file(
            dir.join(DRUGS),
            "no drugs: every visit's drugs must be listed here",
        )
        .into());
    }
    let fixed_dx = read_code_names(&dir.join(DIAGNOSES))?;
    let fixed_px = read_code_names(&dir.join(PROCEDURES))?;
    let mut diagnoses = fixed_dx.clone().unwrap_or_default();
    let mut procedures = fixed_px.clone().unwrap_or_default();

    let path = dir.join(VISITS);
    let text = rxalign_core::jsonl::read_text(&path)?;
    let mut visits = Vec::new();
    let mut lines = Vec::new();
    let mut times = Vec::new();
    let mut first_line: HashMap<String, usize> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let r: VisitRecord = rxalign_core::jsonl::parse_line(&path, n, raw)?;
        let err = |field: &str, msg: String| DataError::from(CoreError::input(&path, n, field, msg));
        if r.visit_id.is_empty() {
            return Err(err("visit_id", "empty visit id".into()));
        }
        if r.patient_id.is_empty() {
            return Err(err("patient_id", "empty patient id".into()));
        }
        if let Some(&first) = first_line.get(&r.visit_id) {
            return Err(err(
                "visit_id",
                format!("visit `{}` already appears on line {first}", r.visit_id),
            ));
        }
        first_line.insert(r.visit_id.clone(), n);
        let time = match r.time.as_deref().map(VisitTime::parse) {
            None => None,
            Some(Ok(t)) => Some(t),
            Some(Err(message)) => return Err(err("time", message)),
        };
        if let Some(age) = r.age.filter(|a| !(0.0..=130.0).contains(a)) {
            return Err(err("age", format!("{age} is not an age in years")));
        }
        let codes = |vocab: &mut Vocab, fixed: bool, list: &[String], field: &str, file: &str| {
            list.iter()
                .map(|c| match vocab.get(c) {
                    Some(i) => Ok(i),
                    None if !fixed && !c.is_empty() => Ok(vocab.insert(c.as_str(), c.as_str())),
                    None if c.is_empty() => Err(err(field, "empty code".into())),
                    None => Err(err(field, format!("code `{c}` is not in {file}"))),
                })
                .collect::<Result<Vec<usize>, DataError>>()
        };
        let dx = codes(
            &mut diagnoses,
            fixed_dx.is_some(),
            &r.diagnoses,
            "diagnoses",
            DIAGNOSES,
        )?;
        let px = codes(
            &mut procedures,
            fixed_px.is_some(),
            &r.procedures,
            "procedures",
            PROCEDURES,
        )?;
        let mut set = DrugSet::empty(drugs.len());
        for c in &r.drugs {
            let d = drugs
                .get(c)
                .ok_or_else(|| err("drugs", format!("drug code `{c}` is not in {DRUGS}")))?;
            if set.contains(d) {
                return Err(err(
                    "drugs",
                    format!("drug code `{c}` is listed twice (a visit's drugs are a set)"),
                ));
            }
            set.insert(d);
        }
        visits.push(Visit {
            patient_id: r.patient_id,
            visit_id: r.visit_id,
            time: r.time,
            age: r.age,
            sex: r.sex,
            diagnoses: dx,
            procedures: px,
            note: r.note,
            history: Vec::new(),
            drugs: set,
        });
        lines.push(n);
        times.push(time);
    }
    if visits.is_empty() {
        return Err(CoreError::file(&path, "no visits: a dataset needs at least one visit line").into());
    }
    link_history(&path, &mut visits, &lines, &times)?;

    let ddi_path = dir.join(DDI);
    let ddi = if ddi_path.is_file() {
        DdiGraph::load_csv(&ddi_path, &drugs, UnknownCodes::Count)?
    } else {
        DdiGraph::empty(drugs.len(), "none (the dataset has no ddi.csv)")
    };
    let name = dir
        .file_name()
        .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
    Ok(Cohort::new(name, drugs, diagnoses, procedures, visits, ddi)?)
}

/// Fills each visit's history with the drugs of the patient's earlier
/// visits, ordered by the instant each visit's time names (visits at the same
/// instant keep their order in the file).
fn link_history(
    path: &Path,
    visits: &mut [Visit],
    lines: &[usize],
    times: &[Option<VisitTime>],
) -> Result<(), DataError> {
    let mut by_patient: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, v) in visits.iter().enumerate() {
        by_patient.entry(v.patient_id.as_str()).or_default().push(i);
    }
    let mut order: Vec<Vec<usize>> = by_patient.into_values().collect();
    for group in &mut order {
        let timed = group.iter().filter(|&&i| visits[i].time.is_some()).count();
        if timed != 0 && timed != group.len() {
            let line = group
                .iter()
                .find(|&&i| visits[i].time.is_none())
                .map_or(0, |&i| lines[i]);
            return Err(CoreError::input(
                path,
                line,
                "time",
                format!(
                    "patient `{}` has visits with and without time; give every visit a time or none",
                    visits[group[0]].patient_id
                ),
            )
            .into());
        }
        let with_offset = group
            .iter()
            .filter(|&&i| times[i].is_some_and(|t| t.has_offset()))
            .count();
        if with_offset != 0 && with_offset != timed {
            let line = group
                .iter()
                .find(|&&i| times[i].is_some_and(|t| !t.has_offset()))
                .map_or(0, |&i| lines[i]);
            return Err(CoreError::input(
                path,
                line,
                "time",
                format!(
                    "patient `{}` has times with an offset (Z or ±HH:MM) and times without one, which cannot be ordered; give every visit of a patient an offset or none",
                    visits[group[0]].patient_id
                ),
            )
            .into());
        }
        if timed != 0 {
            // Stable: visits at the same instant keep their order in the file.
            group.sort_by_key(|&i| times[i]);
        }
    }
    for group in order {
        let mut history = Vec::new();
        for i in group {
            visits[i].history = history.clone();
            history.push(visits[i].drugs.clone());
        }
    }
    Ok(())
}

/// Reads a `code,name` CSV; `None` when the file does not exist.
fn read_code_names(path: &Path) -> Result<Option<Vocab>, DataError> {
    if !path.exists() {
        return Ok(None);
    }
    let text = rxalign_core::jsonl::read_text(path)?;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| csv_error(path, &e, "header"))?
        .clone();
    if headers.len() != 2 || &headers[0] != "code" || &headers[1] != "name" {
        return Err(CoreError::input(
            path,
            1,
            "header",
            format!(
                "expected the header `code,name`, found `{}`",
                headers.iter().collect::<Vec<_>>().join(",")
            ),
        )
        .into());
    }
    let mut vocab = Vocab::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(path, &e, "row"))?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        let code = record[0].trim();
        if record.iter().any(|f| f.contains('\n') || f.contains('\r')) {
            return Err(CoreError::input(
                path,
                line,
                "row",
                "a field runs over a line break: a quote (`\"`) that is not closed on its line?",
            )
            .into());
        }
        if code.is_empty() {
            return Err(CoreError::input(path, line, "code", "empty code").into());
        }
        if vocab.get(code).is_some() {
            return Err(
                CoreError::input(path, line, "code", format!("code `{code}` is listed twice")).into(),
            );
        }
        vocab.insert(code, record[1].trim());
    }
    Ok(Some(vocab))
}

fn csv_error(path: &Path, e: &csv::Error, field: &str) -> DataError {
    let line = e.position().map_or(0, |p| p.line() as usize);
    CoreError::input(path, line, field, e.to_string()).into()
}
