//! Every reader of user input, fed random bytes and mutated valid files
//! (bytes changed, inserted, deleted, lines cut, doubled or swapped): it
//! answers with the data or with an error that names the file it read,
//! never with a panic. Dataset folders, drug and code tables, DDI edge
//! lists, predictions files, MIMIC tables and NDC maps, and experiment files
//! are covered here; checkpoints in `rxalign-policy`'s own tests.

use std::path::Path;

use proptest::prelude::*;
use proptest::sample::Index;
use rxalign_core::ddi::UnknownCodes;
use rxalign_core::{DdiGraph, Predictions, Vocab};
use rxalign_data::load_dataset;
use rxalign_data::mimic::{MimicOptions, MimicSources, import_mimic3};
use rxalign_experiment::Plugins;

mod common;
use common::data;

/// One edit of a file's bytes.
#[derive(Clone, Debug)]
enum Edit {
    Replace(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
    DoubleLine(Index),
    SwapLines(Index, Index),
    DropLine(Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Replace(i, b)),
        (
            any::<Index>(),
            prop_oneof![
                Just(b','),
                Just(b'"'),
                Just(b'\n'),
                Just(b'{'),
                Just(0xFF),
                any::<u8>()
            ]
        )
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<Index>().prop_map(Edit::Delete),
        any::<Index>().prop_map(Edit::Truncate),
        any::<Index>().prop_map(Edit::DoubleLine),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        any::<Index>().prop_map(Edit::DropLine),
    ]
}

/// A valid file with some edits, or random bytes.
fn input(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..400),
        4 => proptest::collection::vec(edit(), 1..5).prop_map(move |edits| mutate(&valid, &edits)),
    ]
}

fn mutate(valid: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut b = valid.to_vec();
    for e in edits {
        let len = b.len().max(1);
        let mut lines: Vec<Vec<u8>> = b.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
        let n = lines.len();
        match e {
            Edit::Replace(i, x) if !b.is_empty() => {
                let i = i.index(len);
                b[i] = *x;
            }
            Edit::Insert(i, x) => b.insert(i.index(len + 1).min(b.len()), *x),
            Edit::Delete(i) if !b.is_empty() => {
                b.remove(i.index(len));
            }
            Edit::Truncate(i) => b.truncate(i.index(len)),
            Edit::DoubleLine(i) => {
                let l = lines[i.index(n)].clone();
                lines.insert(i.index(n), l);
                b = lines.join(&b'\n');
            }
            Edit::SwapLines(x, y) => {
                lines.swap(x.index(n), y.index(n));
                b = lines.join(&b'\n');
            }
            Edit::DropLine(i) => {
                lines.remove(i.index(n));
                b = lines.join(&b'\n');
            }
            _ => {}
        }
    }
    b
}

/// A small valid dataset folder, as `rxalign data synth` writes one, with a
/// DDI list and the code tables.
fn dataset() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(
        p.join("drugs.csv"),
        "code,name\nA01,alpha\nB02,beta\nC03,\"gamma, long\"\n",
    )
    .unwrap();
    std::fs::write(p.join("diagnoses.csv"), "code,name\nd1,one\nd2,two\n").unwrap();
    std::fs::write(p.join("ddi.csv"), "code_a,code_b\nA01,B02\nB02,C03\n").unwrap();
    std::fs::write(
        p.join("visits.jsonl"),
        concat!(
            r#"{"patient_id": "p1", "visit_id": "v1", "time": "2130-01-01T08:00:00Z", "age": 60, "sex": "F", "diagnoses": ["d1"], "procedures": ["x"], "note": "on warfarin", "drugs": ["A01"]}"#,
            "\n",
            r#"{"patient_id": "p1", "visit_id": "v2", "time": "2130-02-01 10:00+01:00", "diagnoses": ["d2"], "procedures": [], "drugs": ["A01", "B02"]}"#,
            "\n",
            r#"{"patient_id": "p2", "visit_id": "w1", "diagnoses": ["d1", "d2"], "procedures": [], "drugs": ["C03"]}"#,
            "\n",
        ),
    )
    .unwrap();
    dir
}

/// The error of a reader, which must name `file`.
fn names(result: Result<(), String>, file: &str) -> Result<(), TestCaseError> {
    if let Err(e) = result {
        prop_assert!(e.contains(file), "the error does not name {}: {}", file, e);
    }
    Ok(())
}

fn read_folder(dir: &Path) -> Result<(), String> {
    load_dataset(dir).map(|_| ()).map_err(|e| e.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn visits_files(bytes in input(valid_of(|p| p.join("visits.jsonl")))) {
        let dir = dataset();
        std::fs::write(dir.path().join("visits.jsonl"), &bytes).unwrap();
        // A mutated visit file may also name a code the tables lack: the
        // error then names the file at fault or the table, both in the folder.
        names(read_folder(dir.path()), &dir.path().display().to_string())?;
    }

    #[test]
    fn drug_and_code_tables((table, bytes) in prop_oneof![Just("drugs.csv"), Just("diagnoses.csv")]
        .prop_flat_map(|t| (Just(t), input(valid_of(move |p| p.join(t)))))) {
        let dir = dataset();
        std::fs::write(dir.path().join(table), &bytes).unwrap();
        names(read_folder(dir.path()), &dir.path().display().to_string())?;
    }

    #[test]
    fn ddi_edge_lists(bytes in input(valid_of(|p| p.join("ddi.csv")))) {
        let dir = dataset();
        let path = dir.path().join("ddi.csv");
        std::fs::write(&path, &bytes).unwrap();
        let mut vocab = Vocab::new();
        for c in ["A01", "B02", "C03"] {
            vocab.insert(c, c);
        }
        for unknown in [UnknownCodes::Count, UnknownCodes::Error] {
            names(DdiGraph::load_csv(&path, &vocab, unknown).map(|_| ()).map_err(|e| e.to_string()), "ddi.csv")?;
        }
        names(DdiGraph::load_edge_list(&path).map(|_| ()).map_err(|e| e.to_string()), "ddi.csv")?;
        names(read_folder(dir.path()), "ddi.csv")?;
    }

    #[test]
    fn predictions_files(bytes in input(
        concat!(
            r#"{"visit_id": "v1", "drugs": ["A01"], "scores": {"A01": 0.9, "B02": 0.1}}"#, "\n",
            r#"{"visit_id": "v2", "drugs": []}"#, "\n",
            r#"{"visit_id": "w1", "drugs": ["C03", "A01"], "scores": {"C03": 1e-3}}"#, "\n",
        ).as_bytes().to_vec()
    )) {
        let dir = dataset();
        let cohort = load_dataset(dir.path()).unwrap();
        let path = dir.path().join("preds.jsonl");
        std::fs::write(&path, &bytes).unwrap();
        match Predictions::read(&path, &cohort) {
            Ok(p) => {
                let all: Vec<usize> = (0..cohort.visits.len()).collect();
                let c = p.coverage(&cohort, &all);
                prop_assert!(c.predicted <= c.expected);
                let _ = p.evaluate(&cohort, |_| true);
            }
            Err(e) => prop_assert!(e.to_string().contains("preds.jsonl"), "{}", e),
        }
    }

    #[test]
    fn experiment_files(bytes in input(std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/baselines.ron")
    ).unwrap())) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exp.ron");
        std::fs::write(&path, &bytes).unwrap();
        names(
            rxalign_experiment::load(&path, &Plugins::builtin()).map(|_| ()).map_err(|e| e.to_string()),
            "exp.ron",
        )?;
    }
}

proptest! {
    // An import writes a dataset folder: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn mimic_tables_and_ndc_maps(
        table in prop_oneof![
            Just("ADMISSIONS"), Just("PATIENTS"), Just("DIAGNOSES_ICD"), Just("PROCEDURES_ICD"),
            Just("PRESCRIPTIONS"), Just("ndc_map"),
        ],
        edits in proptest::collection::vec(edit(), 1..5),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("raw");
        std::fs::create_dir(&root).unwrap();
        let demo = data().join("mimic-iii-demo-1.4");
        // The first rows of each table keep an import fast.
        let head = |path: &Path, rows: usize| -> Vec<u8> {
            let text = std::fs::read_to_string(path).unwrap();
            let mut out: String = text.lines().take(rows + 1).collect::<Vec<_>>().join("\n");
            out.push('\n');
            out.into_bytes()
        };
        for t in ["ADMISSIONS", "PATIENTS", "DIAGNOSES_ICD", "PROCEDURES_ICD", "PRESCRIPTIONS"] {
            let mut bytes = head(&demo.join(format!("{t}.csv")), 60);
            if t == table {
                bytes = mutate(&bytes, &edits);
            }
            std::fs::write(root.join(format!("{t}.csv")), bytes).unwrap();
        }
        let mut map = std::fs::read(data().join("code-maps-gamenet-safedrug/ndc2atc3_molerec.csv")).unwrap();
        if table == "ndc_map" {
            map = mutate(&map, &edits);
        }
        let map_path = tmp.path().join("ndc_map.csv");
        std::fs::write(&map_path, map).unwrap();
        let sources = MimicSources {
            ndc_map: map_path,
            ddi: Some(data().join("ddi-atc3-twosides/gamenet_ddi_atc3_edges.csv")),
            atc_names: None,
            icd9_titles: None,
            notes: None,
        };
        let options = MimicOptions { min_visits: 1, top_drugs: 0, ..MimicOptions::default() };
        let out = tmp.path().join("out");
        if let Err(e) = import_mimic3(&root, &sources, &options, &out) {
            let e = e.to_string();
            let file = if table == "ndc_map" { "ndc_map.csv".to_string() } else { format!("{table}.csv") };
            // An import whose tables no longer meet fails naming the folder
            // of the tables (no visit left) or the DDI list (no drug left).
            prop_assert!(
                e.contains(&file)
                    || e.contains("gamenet_ddi_atc3_edges.csv")
                    || e.contains(&root.display().to_string()),
                "{}",
                e
            );
        }
    }
}

/// The bytes of a file of the valid dataset.
fn valid_of(file: impl Fn(&Path) -> std::path::PathBuf) -> Vec<u8> {
    let dir = dataset();
    std::fs::read(file(dir.path())).unwrap()
}

/// The valid folder loads as written (the property tests start from it).
#[test]
fn the_valid_folder_loads() {
    let dir = dataset();
    let c = load_dataset(dir.path()).unwrap();
    assert_eq!(c.visits.len(), 3);
    assert_eq!(c.ddi.edge_count(), 2);
}
