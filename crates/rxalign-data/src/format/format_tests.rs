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

/// Issue #12 (times): RFC 3339 times were refused, impossible dates and
/// times accepted, and visits ordered by comparing the raw strings.
#[test]
fn times_are_parsed_refused_when_unreal_and_ordered_by_instant() {
    let dir = folder(&line("p", "v", Some("2014-12-19T11:10:19Z"), "[]"));
    load_dataset(dir.path()).unwrap();
    for (bad, n) in [
        ("2023-02-31", 2),
        ("2023-01-05T25:99", 2),
        ("2023-01-05 10:00:61", 2),
    ] {
        let dir = folder(
            &[
                line("p", "v", Some("2023-01-01"), "[]"),
                line("p", "w", Some(bad), "[]"),
            ]
            .join("\n"),
        );
        let e = error(dir.path());
        assert!(
            e.contains(&format!("visits.jsonl:{n}: field `time`: `{bad}` is not a date")),
            "{e}"
        );
    }
    // As strings "2130-01-05 09:00" < "2130-01-05T08:00" (a space sorts
    // before `T`), which put the 09:00 visit first; by instant 08:00 comes
    // first, and the later visit's drugs never enter the earlier one's
    // history.
    let dir = folder(
        &[
            line("p", "late", Some("2130-01-05 09:00"), r#"["B02"]"#),
            line("p", "early", Some("2130-01-05T08:00"), r#"["A01"]"#),
        ]
        .join("\n"),
    );
    let c = load_dataset(dir.path()).unwrap();
    let early = &c.visits[c.visit_index("early").unwrap()];
    let late = &c.visits[c.visit_index("late").unwrap()];
    assert!(early.history.is_empty());
    assert_eq!(late.history.len(), 1);
    assert_eq!(late.history[0].to_vec(), vec![0]);
    // Offsets order by instant: 01:00+02:00 is 23:00 UTC the day before.
    let dir = folder(
        &[
            line("p", "a", Some("2130-01-05T01:00:00+02:00"), r#"["B02"]"#),
            line("p", "b", Some("2130-01-04T23:30:00Z"), r#"["A01"]"#),
        ]
        .join("\n"),
    );
    let c = load_dataset(dir.path()).unwrap();
    assert!(c.visits[c.visit_index("a").unwrap()].history.is_empty());
    // With and without an offset, a patient's visits cannot be ordered.
    let dir = folder(
        &[
            line("p", "a", Some("2130-01-05T01:00:00+02:00"), "[]"),
            line("p", "b", Some("2130-01-04T23:30:00"), "[]"),
        ]
        .join("\n"),
    );
    let e = error(dir.path());
    assert!(
        e.contains("visits.jsonl:2: field `time`") && e.contains("offset"),
        "{e}"
    );
}

/// Issue #12 (data quirks): a UTF-8 byte-order mark was refused with an
/// unhelpful message, and invalid UTF-8 had no line number.
#[test]
fn a_byte_order_mark_is_read_and_invalid_utf8_is_located() {
    let dir = folder(&format!("\u{feff}{}", line("p", "v", None, r#"["A01"]"#)));
    std::fs::write(dir.path().join("drugs.csv"), format!("\u{feff}{DRUGS}")).unwrap();
    std::fs::write(dir.path().join("ddi.csv"), "\u{feff}code_a,code_b\nA01,B02\n").unwrap();
    let c = load_dataset(dir.path()).unwrap();
    assert_eq!((c.visits.len(), c.drugs.len(), c.ddi.edge_count()), (1, 3, 1));

    let mut bytes = format!("{}\n", line("p", "v", None, "[]")).into_bytes();
    bytes.extend(b"{\"patient_id\": \"caf\xe9\"}\n");
    std::fs::write(dir.path().join("visits.jsonl"), &bytes).unwrap();
    let e = error(dir.path());
    assert!(
        e.contains("visits.jsonl:2: field `(encoding)`: byte 20 of the line (0xE9) is not UTF-8"),
        "{e}"
    );
    std::fs::write(dir.path().join("visits.jsonl"), line("p", "v", None, "[]")).unwrap();
    std::fs::write(dir.path().join("drugs.csv"), b"code,name\nA01,\xff\n").unwrap();
    assert!(error(dir.path()).contains("drugs.csv:2: field `(encoding)`"));
}

/// Issue #12 (data quirks): a header-less ddi.csv lost its first edge, and
/// one whose codes are not the dataset's gave DDI rates of 0 silently.
#[test]
fn a_headerless_or_foreign_ddi_file_is_refused() {
    let dir = folder(&line("p", "v", None, "[]"));
    std::fs::write(dir.path().join("ddi.csv"), "A01,B02\nB02,C03\n").unwrap();
    let e = error(dir.path());
    assert!(
        e.contains("ddi.csv:1: field `header`") && e.contains("first edge"),
        "{e}"
    );
    std::fs::write(dir.path().join("ddi.csv"), "code_a,code_b\nDB001,DB002\n").unwrap();
    let e = error(dir.path());
    assert!(
        e.contains("ddi.csv:2: field `code_a`: none of the 1 interactions"),
        "{e}"
    );
}

#[test]
fn an_empty_dataset_is_refused() {
    let dir = folder("\n\n");
    let e = error(dir.path());
    assert!(e.contains("visits.jsonl: no visits"), "{e}");
    std::fs::write(dir.path().join("drugs.csv"), "code,name\n").unwrap();
    let e = error(dir.path());
    assert!(e.contains("drugs.csv: no drugs"), "{e}");
}
