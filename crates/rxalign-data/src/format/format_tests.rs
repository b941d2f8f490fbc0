//! Malformed dataset folders: each error names the file, the line and the
//! field.

use std::path::Path;

use super::load_dataset;

const DRUGS: &str = "code,name\nA01,alpha\nB02,beta\nC03,gamma\n";

fn folder(visits: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("drugs.csv"), DRUGS).unwrap();
    std::fs::write(dir.path().join("visits.jsonl"), visits).unwrap();
    dir
}

fn line(p: &str, v: &str, time: Option<&str>, drugs: &str) -> String {
    let time = time.map_or(String::new(), |t| format!(r#""time": "{t}", "#));
    format!(
        r#"{{"patient_id": "{p}", "visit_id": "{v}", {time}"diagnoses": ["d1"], "procedures": [], "drugs": {drugs}}}"#
    )
}

fn error(dir: &Path) -> String {
    load_dataset(dir).unwrap_err().to_string()
}

#[test]
fn a_good_folder_loads_with_history_in_time_order() {
    let visits = [
        line("p1", "v2", Some("2130-05-01"), r#"["B02"]"#),
        line("p1", "v1", Some("2130-01-01T08:00"), r#"["A01"]"#),
        line("p2", "w1", None, r#"[]"#),
    ]
    .join("\n");
    let dir = folder(&visits);
    std::fs::write(dir.path().join("ddi.csv"), "code_a,code_b\nA01,B02\nA01,ZZZ\n").unwrap();
    let c = load_dataset(dir.path()).unwrap();
    assert_eq!(c.visits.len(), 3);
    assert_eq!(c.patient_count(), 2);
    let v2 = &c.visits[c.visit_index("v2").unwrap()];
    assert_eq!(v2.history.len(), 1);
    assert_eq!(v2.history[0].to_vec(), vec![0]);
    assert!(c.visits[c.visit_index("v1").unwrap()].history.is_empty());
    assert_eq!(c.ddi.edge_count(), 1);
    assert_eq!(c.ddi.source().edges_outside_vocab, 1);
    assert_eq!(c.diagnoses.codes(), ["d1"]);
}

#[test]
fn missing_field() {
    let dir = folder(&format!(
        "{}\n{{\"patient_id\": \"p\", \"visit_id\": \"x\", \"diagnoses\": [], \"procedures\": []}}\n",
        line("p", "v", None, "[]")
    ));
    let e = error(dir.path());
    assert!(
        e.contains("visits.jsonl:2: field `drugs`") && e.contains("missing field"),
        "{e}"
    );
}

#[test]
fn wrong_type() {
    let dir =
        folder(r#"{"patient_id": 17, "visit_id": "v", "diagnoses": [], "procedures": [], "drugs": []}"#);
    let e = error(dir.path());
    assert!(
        e.contains("visits.jsonl:1: field `patient_id`") && e.contains("expected a string"),
        "{e}"
    );
    let dir = folder(
        r#"{"patient_id": "p", "visit_id": "v", "age": "old", "diagnoses": [], "procedures": [], "drugs": []}"#,
    );
    assert!(error(dir.path()).contains("visits.jsonl:1: field `age`"));
}

#[test]
fn unknown_field_and_drug_code() {
    let dir =
        folder(r#"{"patient_id": "p", "visit_id": "v", "diagnosis": [], "procedures": [], "drugs": []}"#);
    assert!(error(dir.path()).contains("visits.jsonl:1: field `diagnosis`"));
    let dir = folder(
        &[
            line("p", "v", None, r#"["A01"]"#),
            line("p", "w", None, r#"["A01", "Q99"]"#),
        ]
        .join("\n"),
    );
    let e = error(dir.path());
    assert!(
        e.contains("visits.jsonl:2: field `drugs`: drug code `Q99` is not in drugs.csv"),
        "{e}"
    );
}

#[test]
fn duplicate_visit_id() {
    let dir = folder(
        &[
            line("p", "v", None, "[]"),
            line("q", "w", None, "[]"),
            line("q", "v", None, "[]"),
        ]
        .join("\n"),
    );
    let e = error(dir.path());
    assert!(
        e.contains("visits.jsonl:3: field `visit_id`: visit `v` already appears on line 1"),
        "{e}"
    );
}

#[test]
fn times_must_be_iso_and_all_or_none_per_patient() {
    let dir = folder(&line("p", "v", Some("01/02/2130"), "[]"));
    assert!(error(dir.path()).contains("visits.jsonl:1: field `time`"));
    let dir = folder(
        &[
            line("p", "v", Some("2130-01-01"), "[]"),
            line("p", "w", None, "[]"),
        ]
        .join("\n"),
    );
    let e = error(dir.path());
    assert!(
        e.contains("visits.jsonl:2: field `time`") && e.contains("with and without time"),
        "{e}"
    );
}

#[test]
fn malformed_code_files() {
    let dir = folder(&line("p", "v", None, "[]"));
    std::fs::write(dir.path().join("drugs.csv"), "code,label\nA01,alpha\n").unwrap();
    assert!(error(dir.path()).contains("drugs.csv:1: field `header`"));
    std::fs::write(dir.path().join("drugs.csv"), "code,name\nA01,alpha\nA01,again\n").unwrap();
    assert!(error(dir.path()).contains("drugs.csv:3: field `code`: code `A01` is listed twice"));
    std::fs::write(dir.path().join("drugs.csv"), "code,name\nA01,alpha,extra\n").unwrap();
    assert!(error(dir.path()).contains("drugs.csv:2"));
    std::fs::remove_file(dir.path().join("drugs.csv")).unwrap();
    assert!(error(dir.path()).contains("drugs.csv: missing"));
}

#[test]
fn fixed_code_lists_reject_unknown_codes() {
    let dir = folder(&line("p", "v", None, "[]"));
    std::fs::write(dir.path().join("diagnoses.csv"), "code,name\nd2,other\n").unwrap();
    let e = error(dir.path());
    assert!(
        e.contains("visits.jsonl:1: field `diagnoses`: code `d1` is not in diagnoses.csv"),
        "{e}"
    );
}

#[test]
fn malformed_ddi_rows_are_named() {
    let dir = folder(&line("p", "v", None, "[]"));
    std::fs::write(dir.path().join("ddi.csv"), "code_a,code_b\nA01,B02\nA01\n").unwrap();
    assert!(error(dir.path()).contains("ddi.csv:3"));
    std::fs::write(dir.path().join("ddi.csv"), "code_a,code_b\nA01,A01\n").unwrap();
    let e = error(dir.path());
    assert!(e.contains("ddi.csv:2") && e.contains("itself"), "{e}");
}
