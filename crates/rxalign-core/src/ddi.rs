//! The drug-drug interaction graph.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{CoreError, DrugSet, Vocab};

/// Where a DDI graph came from, recorded with every run that uses it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DdiSource {
    /// The edge-list file, or a description such as `synthetic clinic`.
    pub origin: String,
    /// SHA-256 of the file's bytes (hex), when it came from a file.
    pub sha256: Option<String>,
    /// Edges (unordered pairs) listed in the source.
    pub edges_in_source: usize,
    /// Edges left out because a code is not in the drug vocabulary.
    pub edges_outside_vocab: usize,
}

/// A symmetric adjacency over drug indices, never global state: every cohort
/// carries its own.
#[derive(Clone, Debug)]
pub struct DdiGraph {
    adjacency: Vec<DrugSet>,
    edges: usize,
    source: DdiSource,
}

/// How to treat edges whose codes the vocabulary lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownCodes {
    /// Fail, naming the line.
    Error,
    /// Leave the edge out and count it in [`DdiSource::edges_outside_vocab`].
    Count,
}

impl DdiGraph {
    /// A graph with no interactions.
    pub fn empty(width: usize, origin: impl Into<String>) -> Self {
        Self {
            adjacency: vec![DrugSet::empty(width); width],
            edges: 0,
            source: DdiSource {
                origin: origin.into(),
                sha256: None,
                edges_in_source: 0,
                edges_outside_vocab: 0,
            },
        }
    }

    /// A graph from index pairs. Duplicates (in either order) count once.
    ///
    /// # Errors
    /// A self-interaction or an index outside `0..width`.
    pub fn from_pairs(
        width: usize,
        pairs: impl IntoIterator<Item = (usize, usize)>,
        origin: impl Into<String>,
    ) -> Result<Self, CoreError> {
        let mut g = Self::empty(width, origin);
        let mut listed = 0;
        for (a, b) in pairs {
            listed += 1;
            g.add_edge(a, b)?;
        }
        g.source.edges_in_source = listed;
        Ok(g)
    }

    fn add_edge(&mut self, a: usize, b: usize) -> Result<bool, CoreError> {
        let width = self.width();
        if a >= width || b >= width {
            return Err(CoreError::Invalid(format!(
                "interaction ({a}, {b}) names a drug outside 0..{width}"
            )));
        }
        if a == b {
            return Err(CoreError::Invalid(format!(
                "drug {a} is listed as interacting with itself"
            )));
        }
        let new = self.adjacency[a].insert(b);
        self.adjacency[b].insert(a);
        if new {
            self.edges += 1;
        }
        Ok(new)
    }

    /// Loads an edge list against a drug vocabulary.
    ///
    /// The file is CSV with a header row; its first two columns are the codes
    /// of an interacting pair (the dataset format names them `code_a,code_b`;
    /// GAMENet's file names them `atc3_a,atc3_b`). Pairs are symmetric and
    /// duplicates count once.
    pub fn load_csv(path: &Path, vocab: &Vocab, unknown: UnknownCodes) -> Result<Self, CoreError> {
        let bytes = std::fs::read(path).map_err(|e| CoreError::io(path, e))?;
        let rows = parse_edge_rows(path, &bytes)?;
        let mut g = Self::empty(vocab.len(), path.display().to_string());
        g.source.sha256 = Some(hex_sha256(&bytes));
        for (line, field_a, a, b) in &rows {
            g.source.edges_in_source += 1;
            match (vocab.get(a), vocab.get(b)) {
                (Some(ia), Some(ib)) => {
                    g.add_edge(ia, ib)
                        .map_err(|e| CoreError::input(path, *line, field_a.as_str(), e.to_string()))?;
                }
                (ia, _) => match unknown {
                    UnknownCodes::Count => g.source.edges_outside_vocab += 1,
                    UnknownCodes::Error => {
                        let (field, code) = if ia.is_none() {
                            ("code_a", a)
                        } else {
                            ("code_b", b)
                        };
                        return Err(CoreError::input(
                            path,
                            *line,
                            field,
                            format!("drug code `{code}` is not in the drug vocabulary"),
                        ));
                    }
                },
            }
        }
        Ok(g)
    }

    /// Loads an edge list on its own: the vocabulary is the codes the file
    /// names, in order of first appearance.
    pub fn load_edge_list(path: &Path) -> Result<(Vocab, Self), CoreError> {
        let bytes = std::fs::read(path).map_err(|e| CoreError::io(path, e))?;
        let rows = parse_edge_rows(path, &bytes)?;
        let mut vocab = Vocab::new();
        for (_, _, a, b) in &rows {
            vocab.insert(a.as_str(), a.as_str());
            vocab.insert(b.as_str(), b.as_str());
        }
        let g = Self::load_csv(path, &vocab, UnknownCodes::Error)?;
        Ok((vocab, g))
    }

    /// How many drugs the graph ranges over.
    pub fn width(&self) -> usize {
        self.adjacency.len()
    }

    /// The number of interacting (unordered) pairs.
    pub fn edge_count(&self) -> usize {
        self.edges
    }

    /// Drugs with at least one interaction.
    pub fn node_count(&self) -> usize {
        self.adjacency.iter().filter(|n| !n.is_empty()).count()
    }

    pub fn source(&self) -> &DdiSource {
        &self.source
    }

    pub fn interacts(&self, a: usize, b: usize) -> bool {
        self.adjacency[a].contains(b)
    }

    /// The drugs that interact with `drug`.
    pub fn neighbours(&self, drug: usize) -> &DrugSet {
        &self.adjacency[drug]
    }

    /// The number of interacting unordered pairs inside `set`.
    pub fn interacting_pairs(&self, set: &DrugSet) -> usize {
        set.iter()
            .map(|d| self.adjacency[d].intersection_len(set))
            .sum::<usize>()
            / 2
    }

    /// Every edge as `(a, b)` with `a < b`, sorted.
    pub fn edges(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::with_capacity(self.edges);
        for (a, n) in self.adjacency.iter().enumerate() {
            out.extend(n.iter().filter(|&b| b > a).map(|b| (a, b)));
        }
        out
    }
}

type EdgeRow = (usize, String, String, String);

fn parse_edge_rows(path: &Path, bytes: &[u8]) -> Result<Vec<EdgeRow>, CoreError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| csv_error(path, &e, "header"))?
        .clone();
    if headers.len() < 2 {
        return Err(CoreError::input(
            path,
            1,
            "header",
            "an edge list needs two columns (code_a,code_b)",
        ));
    }
    let field_a = headers[0].to_string();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_error(path, &e, "row"))?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        let a = record[0].trim();
        let b = record[1].trim();
        for (name, code) in [(&headers[0], a), (&headers[1], b)] {
            if code.is_empty() {
                return Err(CoreError::input(path, line, name, "empty drug code"));
            }
        }
        rows.push((line, field_a.clone(), a.to_string(), b.to_string()));
    }
    Ok(rows)
}

/// A CSV error as a core error with the file and line.
pub(crate) fn csv_error(path: &Path, e: &csv::Error, field: &str) -> CoreError {
    let line = e.position().map_or(0, |p| p.line() as usize);
    CoreError::input(PathBuf::from(path), line, field, e.to_string())
}

/// SHA-256 of some bytes as lower-case hex.
pub fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_symmetric_and_counted_once() {
        let g = DdiGraph::from_pairs(5, [(0, 1), (1, 0), (2, 4)], "test").unwrap();
        assert_eq!(g.edge_count(), 2);
        assert!(g.interacts(1, 0) && g.interacts(4, 2) && !g.interacts(0, 2));
        assert_eq!(g.node_count(), 4);
        assert_eq!(g.edges(), vec![(0, 1), (2, 4)]);
        let all = DrugSet::full(5);
        assert_eq!(g.interacting_pairs(&all), 2);
        assert_eq!(g.source().edges_in_source, 3);
    }

    #[test]
    fn self_loops_are_rejected() {
        assert!(DdiGraph::from_pairs(3, [(1, 1)], "t").is_err());
    }

    #[test]
    fn csv_unknown_codes_error_or_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ddi.csv");
        std::fs::write(&path, "code_a,code_b\nA,B\nA,Z\n").unwrap();
        let mut v = Vocab::new();
        v.insert("A", "a");
        v.insert("B", "b");
        let err = DdiGraph::load_csv(&path, &v, UnknownCodes::Error).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("ddi.csv:3") && msg.contains("code_b") && msg.contains("`Z`"),
            "{msg}"
        );
        let g = DdiGraph::load_csv(&path, &v, UnknownCodes::Count).unwrap();
        assert_eq!(g.edge_count(), 1);
        assert_eq!(g.source().edges_outside_vocab, 1);
        assert_eq!(g.source().sha256.as_deref().map(str::len), Some(64));
    }
}
