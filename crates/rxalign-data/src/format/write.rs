use std::path::Path;

use rxalign_core::run::write_atomic;
use rxalign_core::{Cohort, CoreError, Vocab};

use super::{DDI, DIAGNOSES, DRUGS, PROCEDURES, VISITS, VisitRecord};
use crate::DataError;

/// Writes a cohort as a dataset folder; each file is written atomically.
/// The bytes depend only on the cohort, so equal cohorts give equal files.
pub fn write_dataset(dir: &Path, cohort: &Cohort) -> Result<(), DataError> {
    std::fs::create_dir_all(dir).map_err(|e| CoreError::io(dir, e))?;
    let mut visits = String::new();
    for v in &cohort.visits {
        let codes = |vocab: &Vocab, ix: &[usize]| ix.iter().map(|&i| vocab.code(i).to_string()).collect();
        let record = VisitRecord {
            patient_id: v.patient_id.clone(),
            visit_id: v.visit_id.clone(),
            time: v.time.clone(),
            age: v.age,
            sex: v.sex,
            diagnoses: codes(&cohort.diagnoses, &v.diagnoses),
            procedures: codes(&cohort.procedures, &v.procedures),
            note: v.note.clone(),
            drugs: v.drugs.iter().map(|d| cohort.drugs.code(d).to_string()).collect(),
        };
        visits.push_str(&serde_json::to_string(&record).expect("a visit serialises"));
        visits.push('\n');
    }
    write_atomic(&dir.join(VISITS), visits.as_bytes())?;
    write_code_names(&dir.join(DRUGS), &cohort.drugs)?;
    write_code_names(&dir.join(DIAGNOSES), &cohort.diagnoses)?;
    write_code_names(&dir.join(PROCEDURES), &cohort.procedures)?;
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["code_a", "code_b"]).map_err(csv_write)?;
    for (a, b) in cohort.ddi.edges() {
        w.write_record([cohort.drugs.code(a), cohort.drugs.code(b)])
            .map_err(csv_write)?;
    }
    write_atomic(
        &dir.join(DDI),
        &w.into_inner().map_err(|e| CoreError::Invalid(e.to_string()))?,
    )?;
    Ok(())
}

fn write_code_names(path: &Path, vocab: &Vocab) -> Result<(), DataError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["code", "name"]).map_err(csv_write)?;
    for (_, code, name) in vocab.iter() {
        w.write_record([code, name]).map_err(csv_write)?;
    }
    write_atomic(
        path,
        &w.into_inner().map_err(|e| CoreError::Invalid(e.to_string()))?,
    )?;
    Ok(())
}

fn csv_write(e: csv::Error) -> DataError {
    CoreError::Invalid(format!("CSV writing failed: {e}")).into()
}
