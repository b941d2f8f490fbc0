//! MIMIC-III: ADMISSIONS, PATIENTS, DIAGNOSES_ICD, PROCEDURES_ICD,
//! PRESCRIPTIONS and, where present, NOTEEVENTS; names from D_ICD_DIAGNOSES
//! and D_ICD_PROCEDURES where present.

use std::collections::HashMap;
use std::path::Path;

use rxalign_core::Cohort;

use super::table::{RowError, Table, id, required_id, text, time};
use super::{
    Admission, CodeColumns, ImportReport, MimicOptions, MimicSources, NoteIntake, Raw, age_between,
    parse_sex, read_codes, read_names, read_prescriptions,
};
use crate::DataError;

/// Imports MIMIC-III from `root` into the dataset folder `out`.
pub fn import_mimic3(
    root: &Path,
    sources: &MimicSources,
    options: &MimicOptions,
    out: &Path,
) -> Result<(Cohort, ImportReport), DataError> {
    let (mut raw, ndc_map) = Raw::begin("MIMIC-III", root, sources)?;

    // PATIENTS: sex and date of birth.
    let mut t = Table::open(root, "PATIENTS")?;
    let (subject, gender, dob) = (t.column("subject_id")?, t.column("gender")?, t.column("dob")?);
    let mut patients: HashMap<u64, (Option<rxalign_core::Sex>, Option<crate::time::VisitTime>)> =
        HashMap::new();
    let rows = t.for_each(|_, r| {
        patients.insert(
            required_id(r, subject)?,
            (parse_sex(text(r, gender)?), time(r, dob)?),
        );
        Ok(())
    })?;
    raw.table("PATIENTS", &t.path).rows_read = rows;

    // ADMISSIONS: one visit each.
    let mut t = Table::open(root, "ADMISSIONS")?;
    let (subject, hadm, admit) = (
        t.column("subject_id")?,
        t.column("hadm_id")?,
        t.column("admittime")?,
    );
    let mut admissions = HashMap::new();
    let mut report = super::TableReport::default();
    report.rows_read = t.for_each(|_, r| {
        let s = required_id(r, subject)?;
        let at = time(r, admit)?.ok_or_else(|| RowError {
            column: admit,
            message: "empty admission time".into(),
        })?;
        let (sex, age) = match patients.get(&s) {
            Some((sex, dob)) => (*sex, dob.as_ref().and_then(|d| age_between(d, &at))),
            None => {
                report.drop("patient not in PATIENTS (kept without age and sex)");
                (None, None)
            }
        };
        admissions.insert(
            required_id(r, hadm)?,
            Admission {
                subject: s,
                time: text(r, admit)?.to_string(),
                at: Some(at),
                age,
                sex,
                ..Admission::default()
            },
        );
        Ok(())
    })?;
    report.file = t.path.display().to_string();
    raw.report.tables.insert("ADMISSIONS".into(), report);
    raw.admissions = admissions;

    let icd9 = CodeColumns {
        code: "icd9_code",
        version: None,
    };
    read_codes(
        Table::open(root, "DIAGNOSES_ICD")?,
        "DIAGNOSES_ICD",
        &mut raw,
        true,
        &icd9,
    )?;
    read_codes(
        Table::open(root, "PROCEDURES_ICD")?,
        "PROCEDURES_ICD",
        &mut raw,
        false,
        &icd9,
    )?;
    read_names(root, "D_ICD_DIAGNOSES", &mut raw.diagnosis_names, &icd9)?;
    read_names(root, "D_ICD_PROCEDURES", &mut raw.procedure_names, &icd9)?;

    // PRESCRIPTIONS: streamed, one drug code per mapped row.
    read_prescriptions(
        Table::open(root, "PRESCRIPTIONS")?,
        "PRESCRIPTIONS",
        &mut raw,
        &ndc_map,
        options,
    )?;

    // NOTEEVENTS: discharge summaries, kept sections only.
    if let Some(path) = super::table::find(root, "NOTEEVENTS") {
        let mut t = Table::open_path(&path)?;
        let (hadm, category, body) = (t.column("hadm_id")?, t.column("category")?, t.column("text")?);
        let iserror = t.optional_column("iserror");
        let mut report = super::TableReport {
            file: path.display().to_string(),
            ..Default::default()
        };
        let mut intake = NoteIntake::default();
        let admissions = &mut raw.admissions;
        report.rows_read = t.for_each(|_, r| {
            if !text(r, category)?.eq_ignore_ascii_case("discharge summary") {
                report.drop("not a discharge summary");
                return Ok(());
            }
            if iserror.is_some_and(|c| r.get(c) == Some(b"1")) {
                report.drop("marked as an error (iserror = 1)");
                return Ok(());
            }
            let Some(h) = id(r, hadm)? else {
                report.drop("no hadm_id");
                return Ok(());
            };
            let Some(a) = admissions.get_mut(&h) else {
                report.drop("admission not in ADMISSIONS");
                return Ok(());
            };
            intake.add(a, text(r, body)?);
            Ok(())
        })?;
        intake.finish(&mut raw.report, "NOTEEVENTS", report);
    }
    raw.finish(&ndc_map, sources, options, out)
}
