//! MIMIC-IV: the hosp module (admissions, patients, diagnoses_icd and
//! procedures_icd with ICD-9 and ICD-10 by `icd_version`, prescriptions, and
//! the d_icd_* titles where present) and MIMIC-IV-Note's `discharge` table.

use std::collections::HashMap;
use std::path::Path;

use rxalign_core::{Cohort, CoreError, Sex};

use super::table::{RowError, Table, id, required_id, text, time};
use super::{
    Admission, CodeColumns, ImportReport, MimicOptions, MimicSources, NoteIntake, Raw, TableReport,
    parse_sex, read_codes, read_names, read_prescriptions,
};
use crate::DataError;

struct Patient {
    sex: Option<Sex>,
    anchor_age: Option<u64>,
    anchor_year: Option<u64>,
    group: String,
}

/// Imports MIMIC-IV from `root` (the folder holding `hosp/`, or the hosp
/// folder itself) into the dataset folder `out`. Notes come from
/// `sources.notes`, or `root/note`, when present.
pub fn import_mimic4(
    root: &Path,
    sources: &MimicSources,
    options: &MimicOptions,
    out: &Path,
) -> Result<(Cohort, ImportReport), DataError> {
    let hosp = if root.join("hosp").is_dir() {
        root.join("hosp")
    } else {
        root.to_path_buf()
    };
    let (mut raw, ndc_map) = Raw::begin("MIMIC-IV", root, sources)?;

    let mut t = Table::open(&hosp, "patients")?;
    let (subject, gender) = (t.column("subject_id")?, t.column("gender")?);
    let (age, year, group) = (
        t.column("anchor_age")?,
        t.column("anchor_year")?,
        t.column("anchor_year_group")?,
    );
    let mut patients: HashMap<u64, Patient> = HashMap::new();
    let rows = t.for_each(|_, r| {
        patients.insert(
            required_id(r, subject)?,
            Patient {
                sex: parse_sex(text(r, gender)?),
                anchor_age: id(r, age)?,
                anchor_year: id(r, year)?,
                group: text(r, group)?.to_string(),
            },
        );
        Ok(())
    })?;
    raw.table("patients", &t.path).rows_read = rows;
    if let Some(g) = options
        .anchor_year_groups
        .iter()
        .find(|g| !patients.values().any(|p| &p.group == *g))
    {
        return Err(CoreError::file(
            &t.path,
            format!("no patient has the anchor_year_group `{g}` given to --anchor-year-groups"),
        )
        .into());
    }

    let mut t = Table::open(&hosp, "admissions")?;
    let (subject, hadm, admit) = (
        t.column("subject_id")?,
        t.column("hadm_id")?,
        t.column("admittime")?,
    );
    let mut report = TableReport {
        file: t.path.display().to_string(),
        ..Default::default()
    };
    let admissions = &mut raw.admissions;
    report.rows_read = t.for_each(|_, r| {
        let s = required_id(r, subject)?;
        let at = time(r, admit)?.ok_or_else(|| RowError {
            column: admit,
            message: "empty admission time".into(),
        })?;
        let p = patients.get(&s);
        if !options.anchor_year_groups.is_empty()
            && !p.is_some_and(|p| options.anchor_year_groups.contains(&p.group))
        {
            report.drop("patient outside --anchor-year-groups");
            return Ok(());
        }
        if p.is_none() {
            report.drop("patient not in patients (kept without age and sex)");
        }
        // The age at admission: anchor_age in anchor_year, shifted by the
        // (shifted) admission year.
        let age = p.and_then(|p| {
            let admit_year = i64::from(at.date().year());
            let a = p.anchor_age? as i64 + admit_year - p.anchor_year? as i64;
            (a >= 0).then(|| a.min(130) as f32)
        });
        admissions.insert(
            required_id(r, hadm)?,
            Admission {
                subject: s,
                time: text(r, admit)?.to_string(),
                at: Some(at),
                age,
                sex: p.and_then(|p| p.sex),
                ..Admission::default()
            },
        );
        Ok(())
    })?;
    raw.report.tables.insert("admissions".into(), report);

    let icd = CodeColumns {
        code: "icd_code",
        version: Some("icd_version"),
    };
    read_codes(
        Table::open(&hosp, "diagnoses_icd")?,
        "diagnoses_icd",
        &mut raw,
        true,
        &icd,
    )?;
    read_codes(
        Table::open(&hosp, "procedures_icd")?,
        "procedures_icd",
        &mut raw,
        false,
        &icd,
    )?;
    read_names(&hosp, "d_icd_diagnoses", &mut raw.diagnosis_names, &icd)?;
    read_names(&hosp, "d_icd_procedures", &mut raw.procedure_names, &icd)?;
    read_prescriptions(
        Table::open(&hosp, "prescriptions")?,
        "prescriptions",
        &mut raw,
        &ndc_map,
        options,
    )?;

    let note_dir = sources.notes.clone().unwrap_or_else(|| root.join("note"));
    if let Some(path) = super::table::find(&note_dir, "discharge") {
        let mut t = Table::open_path(&path)?;
        let (hadm, body) = (t.column("hadm_id")?, t.column("text")?);
        let mut report = TableReport {
            file: path.display().to_string(),
            ..Default::default()
        };
        let mut intake = NoteIntake::default();
        let admissions = &mut raw.admissions;
        report.rows_read = t.for_each(|_, r| {
            let Some(a) = id(r, hadm)?.and_then(|h| admissions.get_mut(&h)) else {
                report.drop("admission not in the admissions table (or filtered out)");
                return Ok(());
            };
            intake.add(a, text(r, body)?);
            Ok(())
        })?;
        intake.finish(&mut raw.report, "discharge", report);
    } else if options.require_note {
        return Err(CoreError::file(
            &note_dir,
            "--require-note, but no discharge.csv(.gz) of MIMIC-IV-Note is there",
        )
        .into());
    }
    raw.finish(&ndc_map, sources, options, out)
}
