//! Tests on the real data beside the project (`../shared/data`, see its
//! PROVENANCE.md): the TWOSIDES-derived DDI graphs load with the counts their
//! files hold, and every code of the synthetic clinic is a real ICD-9-CM or
//! ATC code with its official title.

use std::collections::HashSet;

use rxalign_core::ddi::UnknownCodes;
use rxalign_core::{DdiGraph, Vocab};
use rxalign_data::World;

mod common;
use common::shared;

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
        let path = shared().join("ddi-atc3-twosides").join(file);
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
fn gamenet_graph_fits_its_151_drug_vocabulary() {
    let dir = shared().join("ddi-atc3-twosides");
    let text = std::fs::read_to_string(dir.join("gamenet_med_vocab_atc3.csv")).unwrap();
    let mut vocab = Vocab::new();
    for line in text.lines().skip(1) {
        let code = line.split(',').nth(1).unwrap().trim();
        // GAMENet's vocabulary opens with two special tokens.
        if code != "seperator" && code != "decoder_point" {
            vocab.insert(code, code);
        }
    }
    assert_eq!(vocab.len(), 151);
    let graph = DdiGraph::load_csv(
        &dir.join("gamenet_ddi_atc3_edges.csv"),
        &vocab,
        UnknownCodes::Error,
    )
    .unwrap();
    assert_eq!(graph.edge_count(), 467);
    assert_eq!(graph.width(), 151);
}

/// Reads a CMS title file (Latin-1, `CODE  Title` lines).
fn cms_titles(file: &str) -> std::collections::HashMap<String, String> {
    let bytes = std::fs::read(shared().join("icd9cm-v32").join(file)).unwrap();
    let text: String = bytes.iter().map(|&b| char::from(b)).collect();
    text.lines()
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(c, t)| (c.to_string(), t.trim().to_string()))
        })
        .collect()
}

#[test]
fn the_synthetic_clinic_uses_real_codes_with_their_official_titles() {
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
    let atc = std::fs::read_to_string(shared().join("atc-names-who/WHO_ATC-DDD_2026-04-25.csv")).unwrap();
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
