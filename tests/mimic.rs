//! MIMIC import: the real MIMIC-III demo checked against counts this test
//! computes itself from the raw CSVs, and malformed input.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::data;

use serde_json::Value;

fn rxalign(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rxalign"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn rows(path: &Path) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers: Vec<String> = r.headers().unwrap().iter().map(str::to_lowercase).collect();
    r.records()
        .map(|rec| {
            headers
                .iter()
                .cloned()
                .zip(rec.unwrap().iter().map(str::to_string))
                .collect()
        })
        .collect()
}

/// What the import of the demo must give, computed here from the raw CSVs:
/// a visit is an admission with at least one diagnosis, one procedure and
/// one prescription whose non-zero NDC maps; its drugs are the ATC-3 codes
/// of all such rows.
struct Expected {
    visits: usize,
    patients: usize,
    drugs: usize,
    diagnoses: usize,
    procedures: usize,
    mean_drugs: f64,
    ddi_rate: f64,
    ddi_rate_pooled: f64,
}

fn expected(demo: &Path, map: &Path, ddi: &Path) -> Expected {
    let ndc: HashMap<String, String> = rows(map)
        .into_iter()
        .map(|r| (format!("{:0>11}", r["ndc11"]), r["atc3"].clone()))
        .collect();
    let mut dx: HashMap<String, BTreeSet<String>> = HashMap::new();
    for r in rows(&demo.join("DIAGNOSES_ICD.csv")) {
        if !r["icd9_code"].is_empty() {
            dx.entry(r["hadm_id"].clone())
                .or_default()
                .insert(r["icd9_code"].clone());
        }
    }
    let mut px: HashMap<String, BTreeSet<String>> = HashMap::new();
    for r in rows(&demo.join("PROCEDURES_ICD.csv")) {
        if !r["icd9_code"].is_empty() {
            px.entry(r["hadm_id"].clone())
                .or_default()
                .insert(r["icd9_code"].clone());
        }
    }
    let mut rx: HashMap<String, BTreeSet<String>> = HashMap::new();
    for r in rows(&demo.join("PRESCRIPTIONS.csv")) {
        let n = &r["ndc"];
        if n.is_empty() || n.chars().all(|c| c == '0') {
            continue;
        }
        if let Some(atc) = ndc.get(&format!("{n:0>11}")) {
            rx.entry(r["hadm_id"].clone()).or_default().insert(atc.clone());
        }
    }
    let edges: HashSet<(String, String)> = rows(ddi)
        .into_iter()
        .flat_map(|r| {
            [
                (r["atc3_a"].clone(), r["atc3_b"].clone()),
                (r["atc3_b"].clone(), r["atc3_a"].clone()),
            ]
        })
        .collect();
    let (mut visits, mut patients, mut drugs, mut dxs, mut pxs) =
        (0, HashSet::new(), HashSet::new(), HashSet::new(), HashSet::new());
    let (mut total_drugs, mut rate_sum, mut pairs, mut interacting) = (0usize, 0.0, 0usize, 0usize);
    for a in rows(&demo.join("ADMISSIONS.csv")) {
        let h = &a["hadm_id"];
        let (Some(d), Some(p), Some(m)) = (dx.get(h), px.get(h), rx.get(h)) else {
            continue;
        };
        visits += 1;
        patients.insert(a["subject_id"].clone());
        drugs.extend(m.iter().cloned());
        dxs.extend(d.iter().cloned());
        pxs.extend(p.iter().cloned());
        total_drugs += m.len();
        let list: Vec<&String> = m.iter().collect();
        let (mut i, mut all) = (0, 0);
        for (k, x) in list.iter().enumerate() {
            for y in &list[k + 1..] {
                all += 1;
                i += usize::from(edges.contains(&((*x).clone(), (*y).clone())));
            }
        }
        pairs += all;
        interacting += i;
        rate_sum += if all == 0 { 0.0 } else { i as f64 / all as f64 };
    }
    Expected {
        visits,
        patients: patients.len(),
        drugs: drugs.len(),
        diagnoses: dxs.len(),
        procedures: pxs.len(),
        mean_drugs: total_drugs as f64 / visits as f64,
        ddi_rate: rate_sum / visits as f64,
        ddi_rate_pooled: interacting as f64 / pairs as f64,
    }
}

#[test]
fn the_mimic3_demo_imports_to_the_counts_of_its_raw_tables() {
    let s = data();
    let demo = s.join("mimic-iii-demo-1.4");
    let map = s.join("code-maps-gamenet-safedrug/ndc2atc3_molerec.csv");
    let ddi = s.join("ddi-atc3-twosides/gamenet_ddi_atc3_edges.csv");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    let o = rxalign(&[
        "data",
        "mimic3",
        "--root",
        demo.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--ndc-map",
        map.to_str().unwrap(),
        "--ddi",
        ddi.to_str().unwrap(),
        "--min-visits",
        "1",
        "--top-drugs",
        "0",
        "--min-code-count",
        "1",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stats = rxalign(&["data", "stats", out.to_str().unwrap(), "--json"]);
    assert!(
        stats.status.success(),
        "{}",
        String::from_utf8_lossy(&stats.stderr)
    );
    let got: Value = serde_json::from_slice(&stats.stdout).unwrap();
    let want = expected(&demo, &map, &ddi);
    assert_eq!(got["visits"], want.visits);
    assert_eq!(got["patients"], want.patients);
    assert_eq!(got["drugs"], want.drugs);
    assert_eq!(got["diagnoses"], want.diagnoses);
    assert_eq!(got["procedures"], want.procedures);
    let close = |key: &str, x: f64| {
        let g = got[key].as_f64().unwrap();
        assert!((g - x).abs() < 1e-9, "{key}: imported {g}, computed {x}");
    };
    close("mean_drugs_per_visit", want.mean_drugs);
    close("ddi_rate", want.ddi_rate);
    close("ddi_rate_pooled", want.ddi_rate_pooled);

    // The report accounts for every prescription row and every admission.
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("import-report.json")).unwrap()).unwrap();
    let p = &report["tables"]["PRESCRIPTIONS"];
    let dropped: u64 = p["rows_dropped"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    let prescription_rows = rows(&demo.join("PRESCRIPTIONS.csv")).len() as u64;
    assert_eq!(p["rows_read"], prescription_rows);
    assert!(dropped < prescription_rows);
    let unmapped: u64 = report["unmapped_ndcs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x[1].as_u64().unwrap())
        .sum();
    assert_eq!(Some(unmapped), p["rows_dropped"]["NDC not in the map"].as_u64());
    let visits_dropped: u64 = report["visits_dropped"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        report["admissions"].as_u64().unwrap(),
        visits_dropped + want.visits as u64
    );
    assert_eq!(report["admissions"], rows(&demo.join("ADMISSIONS.csv")).len());
    // Edges among the demo's drugs are kept, the rest counted.
    assert_eq!(report["ddi_edges_in_file"], 467);
    assert_eq!(
        report["ddi_edges_kept"].as_u64().unwrap() + report["ddi_edges_outside_drugs"].as_u64().unwrap(),
        467
    );
}

/// A copy of the demo's tables, as lower-case gzip files, for tests that
/// break one of them.
fn demo_copy(dir: &Path) {
    use std::io::Write;
    let demo = data().join("mimic-iii-demo-1.4");
    for t in [
        "ADMISSIONS",
        "PATIENTS",
        "DIAGNOSES_ICD",
        "PROCEDURES_ICD",
        "PRESCRIPTIONS",
    ] {
        let bytes = std::fs::read(demo.join(format!("{t}.csv"))).unwrap();
        let upper_header = {
            let text = String::from_utf8(bytes).unwrap();
            let (head, rest) = text.split_once('\n').unwrap();
            format!("{}\n{rest}", head.to_uppercase())
        };
        let f = std::fs::File::create(dir.join(format!("{}.csv.gz", t.to_lowercase()))).unwrap();
        let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        gz.write_all(upper_header.as_bytes()).unwrap();
        gz.finish().unwrap();
    }
}

fn import(root: &Path, out: &Path, map: &Path) -> Output {
    rxalign(&[
        "data",
        "mimic3",
        "--root",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--ndc-map",
        map.to_str().unwrap(),
        "--min-visits",
        "1",
        "--top-drugs",
        "0",
    ])
}

#[test]
fn gzip_and_upper_case_headers_import_alike_and_bad_input_is_named() {
    let s = data();
    let map = s.join("code-maps-gamenet-safedrug/ndc2atc3_molerec.csv");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("raw");
    std::fs::create_dir(&root).unwrap();
    demo_copy(&root);
    let plain = import(&s.join("mimic-iii-demo-1.4"), &tmp.path().join("a"), &map);
    let gz = import(&root, &tmp.path().join("b"), &map);
    assert!(
        plain.status.success() && gz.status.success(),
        "{}",
        String::from_utf8_lossy(&gz.stderr)
    );
    let visits = |d: &str| std::fs::read(tmp.path().join(d).join("visits.jsonl")).unwrap();
    assert_eq!(
        visits("a"),
        visits("b"),
        "gzip and upper-case headers give the same dataset"
    );

    let err = |o: Output| {
        assert!(!o.status.success());
        String::from_utf8(o.stderr).unwrap()
    };
    // A missing table.
    std::fs::rename(root.join("procedures_icd.csv.gz"), tmp.path().join("p.gz")).unwrap();
    let e = err(import(&root, &tmp.path().join("c"), &map));
    assert!(e.contains("missing table PROCEDURES_ICD"), "{e}");
    std::fs::rename(tmp.path().join("p.gz"), root.join("procedures_icd.csv.gz")).unwrap();
    // A missing column and a malformed row.
    std::fs::remove_file(root.join("patients.csv.gz")).unwrap();
    std::fs::write(
        root.join("patients.csv"),
        "row_id,subject_id,sex,dob\n1,10006,F,2094-03-05 00:00:00\n",
    )
    .unwrap();
    let e = err(import(&root, &tmp.path().join("c"), &map));
    assert!(
        e.contains("patients.csv:1: field `gender`: missing column `gender`"),
        "{e}"
    );
    std::fs::write(
        root.join("patients.csv"),
        "row_id,subject_id,gender,dob\n1,10006,F,2094-03-05\n2,ten,M,2090-01-01\n",
    )
    .unwrap();
    let e = err(import(&root, &tmp.path().join("c"), &map));
    assert!(
        e.contains("patients.csv:3: field `subject_id`: `ten` is not an id"),
        "{e}"
    );
    std::fs::write(
        root.join("patients.csv"),
        "row_id,subject_id,gender,dob\n1,10006,F,2094-03-05\n2,7,M\n",
    )
    .unwrap();
    assert!(err(import(&root, &tmp.path().join("c"), &map)).contains("patients.csv:3"));
    // An empty mapping.
    let empty = tmp.path().join("empty.csv");
    std::fs::write(&empty, "ndc11,atc3\n").unwrap();
    let e = err(import(
        &s.join("mimic-iii-demo-1.4"),
        &tmp.path().join("c"),
        &empty,
    ));
    assert!(e.contains("empty.csv: the NDC map has no rows"), "{e}");
}

#[test]
fn the_mimic3_experiment_runs_on_the_imported_demo() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data/mimic3-atc3");
    let args = common::mimic3_demo_import_args(&data);
    let o = rxalign(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../experiments/mimic3-atc3.ron");
    let run = Command::new(env!("CARGO_BIN_EXE_rxalign"))
        .args(["run", file.to_str().unwrap(), "--out", "runs"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("runs/mimic3-atc3/base.seed=0/summary.json")).unwrap(),
    )
    .unwrap();
    let methods = &summary["methods"];
    assert!(
        methods["cooccurrence"]["metrics"]["jaccard"].is_number(),
        "{summary}"
    );
    assert!(
        methods["most_frequent"]["metrics"]["ddi_rate_pooled"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}
