//! Imports of small MIMIC-III and MIMIC-IV folders built here.

use std::path::Path;

use super::*;

fn write(dir: &Path, name: &str, rows: &[&str]) {
    std::fs::write(dir.join(name), rows.join("\n") + "\n").unwrap();
}

/// A discharge summary that names its discharge medications.
const SUMMARY: &str = "Allergies:\nPenicillins\nHistory of Present Illness:\n70F with pneumonia.\n\
Past Medical History:\nHTN\nMedications on Admission:\nlisinopril\nBrief Hospital Course:\ntreated with ceftriaxone\n\
Discharge Medications:\n1. Levofloxacin 750 mg\nDischarge Instructions:\nTake levofloxacin.";

/// Patients 1 (two admissions), 2 (one), 3 (one, no procedure). NDCs 11 and
/// 22 map to A01A and B01B; 33 does not map.
fn mimic3(dir: &Path) -> MimicSources {
    write(
        dir,
        "PATIENTS.csv",
        &[
            "subject_id,gender,dob",
            "1,F,2080-01-01 00:00:00",
            "2,M,1800-05-05 00:00:00",
            "3,F,2090-01-01",
        ],
    );
    write(
        dir,
        "ADMISSIONS.csv",
        &[
            "subject_id,hadm_id,admittime",
            "1,101,2150-03-01 10:00:00",
            "1,100,2150-01-01 10:00:00",
            "2,200,2150-02-01 08:00:00",
            "3,300,2150-02-01 08:00:00",
        ],
    );
    write(
        dir,
        "DIAGNOSES_ICD.csv",
        &[
            "subject_id,hadm_id,seq_num,icd9_code",
            "1,100,2,486",
            "1,100,1,4019",
            "1,101,1,4019",
            "2,200,1,4019",
            "2,200,2,",
            "3,300,1,5990",
            "9,999,1,4019",
        ],
    );
    write(
        dir,
        "PROCEDURES_ICD.csv",
        &[
            "subject_id,hadm_id,seq_num,icd9_code",
            "1,100,1,3893",
            "1,101,1,3893",
            "2,200,1,9604",
        ],
    );
    write(
        dir,
        "D_ICD_DIAGNOSES.csv",
        &[
            "row_id,icd9_code,short_title,long_title",
            "1,4019,HTN,Unspecified essential hypertension",
        ],
    );
    write(
        dir,
        "PRESCRIPTIONS.csv",
        &[
            "subject_id,hadm_id,drug_type,drug,ndc",
            "1,100,MAIN,a,00000000011",
            "1,100,BASE,b,22",
            "1,100,MAIN,c,0",
            "1,100,MAIN,d,33",
            "1,101,MAIN,a,11",
            "2,200,MAIN,a,11",
            "2,200,MAIN,b,22",
            "3,300,MAIN,a,11",
        ],
    );
    let quoted = format!("\"{SUMMARY}\"");
    let rows = [
        "subject_id,hadm_id,category,iserror,text".to_string(),
        format!("1,100,Discharge summary,,{quoted}"),
        format!("1,101,Discharge summary,1,{quoted}"),
        "1,101,Nursing,,\"Discharge medications: levofloxacin\"".to_string(),
    ];
    write(
        dir,
        "NOTEEVENTS.csv",
        &rows.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    write(
        dir,
        "map.csv",
        &["ndc11,atc3", "00000000011,A01A", "00000000022,B01B"],
    );
    write(dir, "ddi.csv", &["code_a,code_b", "A01A,B01B", "A01A,Z99Z"]);
    MimicSources {
        ndc_map: dir.join("map.csv"),
        ddi: Some(dir.join("ddi.csv")),
        atc_names: None,
        icd9_titles: None,
        notes: None,
    }
}

fn options() -> MimicOptions {
    MimicOptions {
        min_visits: 1,
        top_drugs: 0,
        ..MimicOptions::default()
    }
}

#[test]
fn mimic3_visits_codes_notes_and_report() {
    let tmp = tempfile::tempdir().unwrap();
    let sources = mimic3(tmp.path());
    let (cohort, report) = import_mimic3(tmp.path(), &sources, &options(), &tmp.path().join("out")).unwrap();
    // Admission 300 has no procedure.
    let ids: Vec<&str> = cohort.visits.iter().map(|v| v.visit_id.as_str()).collect();
    assert_eq!(
        ids,
        ["100", "101", "200"],
        "patients in id order, visits in time order"
    );
    assert_eq!(report.visits_dropped.get("2 no procedure"), Some(&1));
    let v100 = &cohort.visits[0];
    let codes = |ix: &[usize]| {
        ix.iter()
            .map(|&i| cohort.diagnoses.code(i).to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        codes(&v100.diagnoses),
        ["4019", "486"],
        "diagnoses in seq_num order"
    );
    assert_eq!(
        cohort.diagnoses.name(cohort.diagnoses.get("4019").unwrap()),
        "Unspecified essential hypertension"
    );
    assert_eq!(
        v100.drugs
            .iter()
            .map(|d| cohort.drugs.code(d))
            .collect::<Vec<_>>(),
        ["A01A", "B01B"]
    );
    assert_eq!(v100.age, Some(70.0));
    assert_eq!(
        cohort.visits[2].age,
        Some(90.0),
        "MIMIC-III's shifted birth dates read as 90"
    );
    assert_eq!(cohort.visits[1].history, vec![v100.drugs.clone()]);
    // The note keeps the four sections and nothing of the discharge.
    let note = v100.note.as_deref().unwrap();
    assert!(
        note.contains("History of present illness: 70F with pneumonia.") && note.contains("lisinopril"),
        "{note}"
    );
    for v in &cohort.visits {
        let lower = v.note.as_deref().unwrap_or("").to_lowercase();
        assert!(
            !lower.contains("discharge") && !lower.contains("levofloxacin"),
            "{lower}"
        );
    }
    assert!(
        cohort.visits[1].note.is_none(),
        "the erroneous summary and the nursing note are not used"
    );
    assert_eq!(report.notes_discharge_summaries, 1);
    assert_eq!(report.notes_sections_kept, 4);
    let notes = &report.tables["NOTEEVENTS"].rows_dropped;
    assert_eq!(
        (
            notes["not a discharge summary"],
            notes["marked as an error (iserror = 1)"]
        ),
        (1, 1)
    );
    // Every prescription row is read or dropped with a reason.
    let p = &report.tables["PRESCRIPTIONS"];
    assert_eq!(p.rows_read, 8);
    assert_eq!(p.rows_dropped["no NDC (empty or 0)"], 1);
    assert_eq!(p.rows_dropped["NDC not in the map"], 1);
    assert_eq!(report.unmapped_ndcs, vec![("00000000033".to_string(), 1)]);
    assert_eq!(report.tables["DIAGNOSES_ICD"].rows_dropped["empty code"], 1);
    assert_eq!(
        report.tables["DIAGNOSES_ICD"].rows_dropped["admission not in the admissions table (or filtered out)"],
        1
    );
    assert_eq!(
        (
            report.ddi_edges_in_file,
            report.ddi_edges_kept,
            report.ddi_edges_outside_drugs
        ),
        (2, 1, 1)
    );
    // The folder loads back as the same cohort.
    let back = crate::load_dataset(&tmp.path().join("out")).unwrap();
    assert_eq!(back.visits.len(), 3);
    assert!(tmp.path().join("out").join(IMPORT_REPORT).is_file());
}

#[test]
fn cms_titles_name_what_the_d_icd_tables_leave_unnamed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sources = mimic3(tmp.path());
    let titles = tmp.path().join("cms");
    std::fs::create_dir(&titles).unwrap();
    std::fs::write(
        titles.join("CMS32_DESC_LONG_DX.txt"),
        b"486     Pneumonia, organism unspecified\n4019    Not this one\n",
    )
    .unwrap();
    std::fs::write(
        titles.join("CMS32_DESC_LONG_SG.txt"),
        b"3893    Venous catheterization, not elsewhere classified\n",
    )
    .unwrap();
    sources.icd9_titles = Some(titles);
    let (c, _) = import_mimic3(tmp.path(), &sources, &options(), &tmp.path().join("out")).unwrap();
    let dx = |code| c.diagnoses.name(c.diagnoses.get(code).unwrap()).to_string();
    assert_eq!(dx("486"), "Pneumonia, organism unspecified");
    assert_eq!(
        dx("4019"),
        "Unspecified essential hypertension",
        "MIMIC's own title wins"
    );
    assert_eq!(
        c.procedures.name(c.procedures.get("3893").unwrap()),
        "Venous catheterization, not elsewhere classified"
    );
}

#[test]
fn mimic3_filters_count_what_they_drop() {
    let tmp = tempfile::tempdir().unwrap();
    let sources = mimic3(tmp.path());
    let out = tmp.path().join("out");
    // Patient 2 has one visit.
    let (c, r) = import_mimic3(
        tmp.path(),
        &sources,
        &MimicOptions {
            min_visits: 2,
            ..options()
        },
        &out,
    )
    .unwrap();
    assert_eq!(c.patient_count(), 1);
    assert_eq!(
        (
            r.patients_dropped_min_visits,
            r.visits_dropped["7 patient below --min-visits"]
        ),
        (1, 1)
    );
    // A01A is in three visits, B01B in two.
    let (c, r) = import_mimic3(
        tmp.path(),
        &sources,
        &MimicOptions {
            top_drugs: 1,
            ..options()
        },
        &out,
    )
    .unwrap();
    assert_eq!(c.drugs.codes(), ["A01A"]);
    assert_eq!(r.drug_entries_dropped_top_drugs, 2);
    // 486 and 9604 are seen once; 3893 twice.
    let (c, r) = import_mimic3(
        tmp.path(),
        &sources,
        &MimicOptions {
            min_code_count: 2,
            ..options()
        },
        &out,
    )
    .unwrap();
    assert_eq!(c.visits.len(), 2);
    assert_eq!(
        r.visits_dropped["5 no diagnosis or procedure left after --min-code-count"],
        1
    );
    assert_eq!(r.code_entries_dropped_min_count, 2);
    // BASE rows go with --drug-types MAIN.
    let (c, r) = import_mimic3(
        tmp.path(),
        &sources,
        &MimicOptions {
            drug_types: vec!["main".into()],
            ..options()
        },
        &out,
    )
    .unwrap();
    assert_eq!(c.visits[0].drugs.len(), 1);
    assert_eq!(
        r.tables["PRESCRIPTIONS"].rows_dropped["drug_type filtered out"],
        1
    );
    let (c, r) = import_mimic3(
        tmp.path(),
        &sources,
        &MimicOptions {
            require_note: true,
            ..options()
        },
        &out,
    )
    .unwrap();
    assert_eq!(c.visits.len(), 1);
    assert_eq!(r.visits_dropped["6 no discharge summary (--require-note)"], 2);
}

/// A MIMIC-IV folder: hosp/ and note/.
fn mimic4(dir: &Path) -> MimicSources {
    let hosp = dir.join("hosp");
    let note = dir.join("note");
    std::fs::create_dir_all(&hosp).unwrap();
    std::fs::create_dir_all(&note).unwrap();
    write(
        &hosp,
        "patients.csv",
        &[
            "subject_id,gender,anchor_age,anchor_year,anchor_year_group,dod",
            "1,F,60,2150,2008 - 2010,",
            "2,M,40,2160,2017 - 2019,",
        ],
    );
    write(
        &hosp,
        "admissions.csv",
        &[
            "subject_id,hadm_id,admittime,dischtime",
            "1,10,2152-01-01 00:00:00,",
            "2,20,2160-06-01 00:00:00,",
        ],
    );
    write(
        &hosp,
        "diagnoses_icd.csv",
        &[
            "subject_id,hadm_id,seq_num,icd_code,icd_version",
            "1,10,1,4019,9",
            "2,20,1,I10,10",
            "2,20,2,4019,9",
        ],
    );
    write(
        &hosp,
        "procedures_icd.csv",
        &[
            "subject_id,hadm_id,seq_num,chartdate,icd_code,icd_version",
            "1,10,1,,3893,9",
            "2,20,1,,02HV33Z,10",
        ],
    );
    write(
        &hosp,
        "d_icd_diagnoses.csv",
        &[
            "icd_code,icd_version,long_title",
            "I10,10,Essential (primary) hypertension",
            "4019,9,Unspecified essential hypertension",
        ],
    );
    write(
        &hosp,
        "prescriptions.csv",
        &[
            "subject_id,hadm_id,drug_type,drug,ndc",
            "1,10,MAIN,a,11.0",
            "2,20,MAIN,b,22",
        ],
    );
    let quoted = format!("\"{SUMMARY}\"");
    write(
        &note,
        "discharge.csv",
        &[
            "note_id,subject_id,hadm_id,note_type,note_seq,charttime,storetime,text",
            &format!("n1,2,20,DS,1,,,{quoted}"),
        ],
    );
    write(
        dir,
        "map.csv",
        &[
            "ndc,drugbank_id,name",
            "11,DB00001,Lepirudin",
            "22,DB00002,Cetuximab",
        ],
    );
    MimicSources {
        ndc_map: dir.join("map.csv"),
        ddi: None,
        atc_names: None,
        icd9_titles: None,
        notes: None,
    }
}

#[test]
fn mimic4_versions_ages_names_notes_and_temporal_selection() {
    let tmp = tempfile::tempdir().unwrap();
    let sources = mimic4(tmp.path());
    let out = tmp.path().join("out");
    let (c, r) = import_mimic4(tmp.path(), &sources, &options(), &out).unwrap();
    assert_eq!(r.source, "MIMIC-IV");
    assert_eq!(c.visits.len(), 2);
    let dx: Vec<&str> = c.visits[1]
        .diagnoses
        .iter()
        .map(|&i| c.diagnoses.code(i))
        .collect();
    assert_eq!(dx, ["ICD10:I10", "ICD9:4019"]);
    assert_eq!(
        c.diagnoses.name(c.diagnoses.get("ICD10:I10").unwrap()),
        "Essential (primary) hypertension"
    );
    assert_eq!(
        c.visits[0].age,
        Some(62.0),
        "anchor age 60 in 2150, admitted in 2152"
    );
    assert_eq!(
        c.drugs.name(c.drugs.get("DB00001").unwrap()),
        "Lepirudin",
        "names from the map's third column"
    );
    let note = c.visits[1].note.as_deref().unwrap();
    assert!(
        note.contains("70F with pneumonia") && !note.to_lowercase().contains("levofloxacin"),
        "{note}"
    );
    // Temporal validation: only the later years.
    let later = MimicOptions {
        anchor_year_groups: vec!["2017 - 2019".into()],
        ..options()
    };
    let (c, r) = import_mimic4(tmp.path(), &sources, &later, &out).unwrap();
    assert_eq!(
        c.visits.iter().map(|v| v.patient_id.as_str()).collect::<Vec<_>>(),
        ["2"]
    );
    assert_eq!(
        r.tables["admissions"].rows_dropped["patient outside --anchor-year-groups"],
        1
    );
    let bad = MimicOptions {
        anchor_year_groups: vec!["1999".into()],
        ..options()
    };
    let e = import_mimic4(tmp.path(), &sources, &bad, &out)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no patient has the anchor_year_group `1999`"), "{e}");
}

/// Issue #12 (times and data quirks): admission times that are not real are
/// refused naming file, line and column; a byte-order mark before the header
/// is read; a header-less NDC map is refused rather than read without its
/// first row.
#[test]
fn mimic_times_marks_and_headers() {
    let tmp = tempfile::tempdir().unwrap();
    let sources = mimic3(tmp.path());
    let out = tmp.path().join("out");
    let admissions = std::fs::read_to_string(tmp.path().join("ADMISSIONS.csv")).unwrap();
    std::fs::write(
        tmp.path().join("ADMISSIONS.csv"),
        admissions.replace("2150-02-01 08:00:00", "2150-02-30 08:00:00"),
    )
    .unwrap();
    let e = import_mimic3(tmp.path(), &sources, &options(), &out)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ADMISSIONS.csv:4: field `admittime`: `2150-02-30 08:00:00` is not a date"),
        "{e}"
    );
    // A byte-order mark, and an admission time in RFC 3339 spelling.
    std::fs::write(
        tmp.path().join("ADMISSIONS.csv"),
        format!(
            "\u{feff}{}",
            admissions.replace("2150-02-01 08:00:00", "2150-02-01T08:00:00Z")
        ),
    )
    .unwrap();
    let (c, _) = import_mimic3(tmp.path(), &sources, &options(), &out).unwrap();
    assert!(!c.visits.is_empty());
    // Patient 1's visits in time order: admission 100 (January) first.
    let first = c.visits.iter().find(|v| v.patient_id == "1").unwrap();
    assert_eq!(first.visit_id, "100");
    let map = std::fs::read_to_string(&sources.ndc_map).unwrap();
    let headerless: String = map.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(&sources.ndc_map, headerless).unwrap();
    let e = import_mimic3(tmp.path(), &sources, &options(), &out)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(":1: field `header`: the first line holds an NDC"),
        "{e}"
    );
    // A row's error names the column at fault (the drug code, not the NDC).
    std::fs::write(&sources.ndc_map, "ndc11,atc3\n00000000011,A01A\n00000000022,\n").unwrap();
    let e = import_mimic3(tmp.path(), &sources, &options(), &out)
        .unwrap_err()
        .to_string();
    assert!(e.contains("map.csv:3: field `atc3`: empty drug code"), "{e}");
    std::fs::write(&sources.ndc_map, "ndc11,atc3\n0000000001x,A01A\n").unwrap();
    let e = import_mimic3(tmp.path(), &sources, &options(), &out)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("map.csv:2: field `ndc11`: `0000000001x` is not an NDC"),
        "{e}"
    );
}

/// An import whose filters leave no visit says so, with the counts, and
/// writes nothing (an empty dataset folder could not be read back).
#[test]
fn an_import_that_keeps_no_visit_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let sources = mimic3(tmp.path());
    let out = tmp.path().join("out");
    let options = MimicOptions {
        min_visits: 50,
        ..options()
    };
    let e = import_mimic3(tmp.path(), &sources, &options, &out)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no visit is left of 4 admissions") && e.contains("patient below --min-visits"),
        "{e}"
    );
    assert!(!out.exists());
}
