//! Tests on the real data kept in the repository (`tests/data`, see its
//! PROVENANCE.md): the files match their checksums, the TWOSIDES-derived DDI
//! graphs load with the counts their files hold, the MiniLM tokenizer reads,
//! and every code of the synthetic clinic is a real ICD-9-CM code with its
//! official title. The WHO ATC index may not be redistributed: the check of
//! the clinic's drug names against it runs where `RXALIGN_SHARED_DATA` names
//! a folder that holds it.

use std::collections::HashSet;

use rxalign_core::ddi::{UnknownCodes, hex_sha256};
use rxalign_core::{DdiGraph, Vocab};
use rxalign_data::World;
use rxalign_set_encoder::notes::NoteTokenizer;

mod common;
use common::{data, shared_file};

/// Every data file is the byte-exact copy its checksum in `SHA256SUMS`
/// names, every listed file is present and every file is listed (the
/// documentation files of the folder aside); the MIMIC-III tables also match
/// the checksums PhysioNet publishes with the demo.
#[test]
fn test_data_files_match_their_checksums() {
    let dir = data();
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    let mut listed = HashSet::new();
    for line in sums.lines() {
        let (sum, file) = line.split_once("  ").expect("`sha256  path` lines");
        let bytes = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(hex_sha256(&bytes), sum, "{file} differs from its checksum");
        listed.insert(file.to_string());
    }
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(&dir)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if !["SHA256SUMS", "PROVENANCE.md", ".gitattributes"].contains(&rel.as_str()) {
                assert!(
                    listed.contains(&rel),
                    "{rel} is not listed in tests/data/SHA256SUMS"
                );
            }
        }
    }
    let physionet = std::fs::read_to_string(dir.join("mimic-iii-demo-1.4/SHA256SUMS.txt")).unwrap();
    for table in [
        "ADMISSIONS",
        "PATIENTS",
        "DIAGNOSES_ICD",
        "PROCEDURES_ICD",
        "PRESCRIPTIONS",
    ] {
        let file = format!("{table}.csv");
        let published = physionet
            .lines()
            .find_map(|l| l.strip_suffix(&format!(" {file}")))
            .unwrap_or_else(|| panic!("{file} is not in PhysioNet's SHA256SUMS.txt"));
        let bytes = std::fs::read(dir.join("mimic-iii-demo-1.4").join(&file)).unwrap();
        assert_eq!(hex_sha256(&bytes), published, "{file}");
    }
}

/// The MiniLM WordPiece tokenizer (the guide's example of a tokenizer an
/// experiment names, `docs/policies-and-trainer.md`) reads and splits clinical words into pieces of its
/// 30,522-token vocabulary.
#[test]
fn the_minilm_tokenizer_reads_and_splits_notes() {
    let t = NoteTokenizer::from_file(&data().join("minilm-tokenizer/tokenizer.json")).unwrap();
    assert_eq!(t.vocab_size(), 30_522);
    let tokens = t.tokens("Hypertension; on warfarin").unwrap();
    assert_eq!(tokens.first().map(String::as_str), Some("hyper"), "{tokens:?}");
    assert!(tokens.iter().any(|x| x.starts_with("##")), "{tokens:?}");
    assert!(tokens.contains(&";".to_string()), "{tokens:?}");
}

/// Distinct unordered pairs and distinct codes of an edge-list file, counted
/// by hand.
fn count_edges(text: &str) -> (usize, usize) {
    let mut pairs = HashSet::new();
    let mut nodes = HashSet::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let mut it = line.split(',');
        let (a, b) = (it.next().unwrap().trim(), it.next().unwrap().trim());
        nodes.insert(a.to_string());
        nodes.insert(b.to_string());
        pairs.insert(if a < b {
            (a.to_string(), b.to_string())
        } else {
            (b.to_string(), a.to_string())
        });
    }
    (pairs.len(), nodes.len())
}

#[test]
fn twosides_atc3_graphs_load_with_the_counts_of_their_files() {
    for (file, expected_edges) in [
        ("gamenet_ddi_atc3_edges.csv", 467),
        ("safedrug_ddi_atc3_edges.csv", 337),
    ] {
        let path = data().join("ddi-atc3-twosides").join(file);
        let (edges, nodes) = count_edges(&std::fs::read_to_string(&path).unwrap());
        assert_eq!(
            edges, expected_edges,
            "{file}: PROVENANCE.md states {expected_edges} edges"
        );
        let (vocab, graph) = DdiGraph::load_edge_list(&path).unwrap();
        assert_eq!(graph.edge_count(), edges, "{file}");
        assert_eq!(graph.node_count(), nodes, "{file}");
        assert_eq!(vocab.len(), nodes, "{file}");
        assert_eq!(graph.source().sha256.as_ref().map(String::len), Some(64));
        assert!(graph.source().origin.ends_with(file));
    }
}

#[test]
fn the_graphs_fit_their_drug_vocabularies() {
    for (prefix, drugs, edges) in [("gamenet", 151, 467), ("safedrug", 112, 337)] {
        graph_fits_its_vocabulary(prefix, drugs, edges);
    }
}

fn graph_fits_its_vocabulary(prefix: &str, drugs: usize, edges: usize) {
    let dir = data().join("ddi-atc3-twosides");
    let text = std::fs::read_to_string(dir.join(format!("{prefix}_med_vocab_atc3.csv"))).unwrap();
    let mut vocab = Vocab::new();
    for line in text.lines().skip(1) {
        let code = line.split(',').nth(1).unwrap().trim();
        // GAMENet's vocabulary opens with two special tokens.
        if code != "seperator" && code != "decoder_point" {
            vocab.insert(code, code);
        }
    }
    assert_eq!(vocab.len(), drugs, "{prefix}");
    let graph = DdiGraph::load_csv(
        &dir.join(format!("{prefix}_ddi_atc3_edges.csv")),
        &vocab,
        UnknownCodes::Error,
    )
    .unwrap();
    assert_eq!(graph.edge_count(), edges, "{prefix}");
    assert_eq!(graph.width(), drugs, "{prefix}");
}

/// Reads a CMS title file (Latin-1, `CODE  Title` lines).
fn cms_titles(file: &str) -> std::collections::HashMap<String, String> {
    let bytes = std::fs::read(data().join("icd9cm-v32").join(file)).unwrap();
    let text: String = bytes.iter().map(|&b| char::from(b)).collect();
    text.lines()
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(c, t)| (c.to_string(), t.trim().to_string()))
        })
        .collect()
}

#[test]
fn the_synthetic_clinic_uses_real_icd9_codes_with_their_official_titles() {
    let world = World::embedded().unwrap();
    let dx = cms_titles("CMS32_DESC_LONG_DX.txt");
    for (_, code, name) in world.diagnoses.iter() {
        assert_eq!(
            dx.get(code).map(String::as_str),
            Some(name),
            "ICD-9-CM diagnosis {code}"
        );
    }
    let sg = cms_titles("CMS32_DESC_LONG_SG.txt");
    for (_, code, name) in world.procedures.iter() {
        assert_eq!(
            sg.get(code).map(String::as_str),
            Some(name),
            "ICD-9-CM procedure {code}"
        );
    }
}

/// Every code of the clinic's drugs is in the WHO ATC index under its name.
/// The index is non-commercial (CC BY-NC-SA 4.0) and stays out of the
/// repository: this test runs where `RXALIGN_SHARED_DATA` names a folder
/// holding it, and says that it was skipped elsewhere.
#[test]
fn the_clinic_drugs_carry_their_who_atc_names() {
    let Some(path) = shared_file(
        "atc-names-who/WHO_ATC-DDD_2026-04-25.csv",
        "the_clinic_drugs_carry_their_who_atc_names",
    ) else {
        return;
    };
    let world = World::embedded().unwrap();
    let atc = std::fs::read_to_string(path).unwrap();
    let atc: std::collections::HashMap<&str, &str> = atc
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(','))
        .map(|(c, rest)| (c, rest.split(',').next().unwrap_or("")))
        .collect();
    for (_, code, name) in world.drugs.iter() {
        let who = atc
            .get(code)
            .unwrap_or_else(|| panic!("ATC code {code} ({name}) is not in the WHO index"));
        let first = |s: &str| s.to_lowercase().chars().take(4).collect::<String>();
        // Our names are the INN, sometimes with a common name in brackets.
        assert!(
            first(who) == first(name) || name.to_lowercase().contains(&who.to_lowercase()),
            "{code}: WHO says `{who}`, the clinic says `{name}`"
        );
    }
}
