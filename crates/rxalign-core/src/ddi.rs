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
    /// The file is UTF-8 CSV (a leading byte-order mark is dropped) with a
    /// header row that names the two code columns `<name>_a,<name>_b` (the
    /// dataset format: `code_a,code_b`; GAMENet's file: `atc3_a,atc3_b`), so
    /// that a file without a header is refused rather than read without its
    /// first edge. Pairs are symmetric and duplicates count once.
    ///
    /// # Errors
    /// Unreadable or malformed files, naming the line; with
    /// [`UnknownCodes::Error`], a code outside `vocab`; with
    /// [`UnknownCodes::Count`], a file whose rows name no code of `vocab` at
    /// all (two code systems that do not meet: every DDI rate would read 0).
    pub fn load_csv(path: &Path, vocab: &Vocab, unknown: UnknownCodes) -> Result<Self, CoreError> {
        let bytes = std::fs::read(path).map_err(|e| CoreError::io(path, e))?;
        let sha256 = hex_sha256(&bytes);
        let text = crate::jsonl::decode_text(path, bytes)?;
        let (columns, rows) = parse_edge_rows(path, text.as_bytes())?;
        let [field_a, field_b] = &columns;
        let mut g = Self::empty(vocab.len(), path.display().to_string());
        g.source.sha256 = Some(sha256);
        let mut codes_known = 0usize;
        for (line, a, b) in &rows {
            g.source.edges_in_source += 1;
            let (ia, ib) = (vocab.get(a), vocab.get(b));
            codes_known += usize::from(ia.is_some()) + usize::from(ib.is_some());
            match (ia, ib) {
                (Some(ia), Some(ib)) => {
                    g.add_edge(ia, ib)
                        .map_err(|e| CoreError::input(path, *line, field_a.as_str(), e.to_string()))?;
                }
                (ia, _) => match unknown {
                    UnknownCodes::Count => g.source.edges_outside_vocab += 1,
                    UnknownCodes::Error => {
                        let (field, code) = if ia.is_none() {
                            (field_a.as_str(), a)
                        } else {
                            (field_b.as_str(), b)
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
        if let (Some((line, a, b)), 0) = (rows.first(), codes_known) {
            return Err(CoreError::input(
                path,
                *line,
                field_a.as_str(),
                format!(
                    "none of the {} interactions names a drug of the vocabulary ({} drugs; this line names `{a}` and `{b}`): \
                     the two files use different codes, and every DDI rate would read 0",
                    rows.len(),
                    vocab.len()
                ),
            ));
        }
        Ok(g)
    }

    /// Why this graph makes DDI rates uninformative, if it does: a source
    /// that listed interactions of which none lies among the drugs, or one
    /// that listed none. Commands and the runner print it as a warning beside
    /// any DDI number.
    pub fn warning(&self) -> Option<String> {
        let s = &self.source;
        // A graph built in code (the synthetic clinic, a dataset without
        // ddi.csv) holds what was meant: only files are questioned.
        s.sha256.as_ref()?;
        if s.edges_in_source == 0 {
            return Some(format!(
                "the DDI graph {} lists no interactions: every DDI rate is 0 by construction",
                s.origin
            ));
        }
        if self.edges == 0 {
            return Some(format!(
                "none of the {} interactions of {} lies between two drugs of the dataset: every DDI rate is 0 by construction",
                s.edges_in_source, s.origin
            ));
        }
        None
    }

    /// Loads an edge list on its own: the vocabulary is the codes the file
    /// names, in order of first appearance.
    pub fn load_edge_list(path: &Path) -> Result<(Vocab, Self), CoreError> {
        let text = crate::jsonl::read_text(path)?;
        let (_, rows) = parse_edge_rows(path, text.as_bytes())?;
        let mut vocab = Vocab::new();
        for (_, a, b) in &rows {
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

/// A row of an edge list: its line and its two codes.
type EdgeRow = (usize, String, String);

/// The two code columns' names and the rows of an edge list.
fn parse_edge_rows(path: &Path, bytes: &[u8]) -> Result<([String; 2], Vec<EdgeRow>), CoreError> {
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
    let column = |i: usize, suffix: &str| {
        let h = headers[i].trim().to_ascii_lowercase();
        h.strip_suffix(suffix)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
    };
    match (column(0, "_a"), column(1, "_b")) {
        (Some(a), Some(b)) if a == b => {}
        _ => {
            return Err(CoreError::input(
                path,
                1,
                "header",
                format!(
                    "the first line `{}` is not a header naming the two code columns (`code_a,code_b`); \
                     an edge list without a header would lose its first edge",
                    headers.iter().collect::<Vec<_>>().join(",")
                ),
            ));
        }
    }
    let columns = [headers[0].trim().to_string(), headers[1].trim().to_string()];
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
        rows.push((line, a.to_string(), b.to_string()));
    }
    Ok((columns, rows))
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
        assert_eq!(g.warning(), None);
    }

    fn vocab_ab() -> Vocab {
        let mut v = Vocab::new();
        v.insert("A", "a");
        v.insert("B", "b");
        v
    }

    /// Issue #12: a header-less file lost its first edge.
    #[test]
    fn a_file_without_a_header_is_refused_not_read_without_its_first_edge() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ddi.csv");
        std::fs::write(&path, "A,B\nB,C\n").unwrap();
        let e = DdiGraph::load_csv(&path, &vocab_ab(), UnknownCodes::Count).unwrap_err();
        assert!(
            e.to_string()
                .contains("ddi.csv:1: field `header`: the first line `A,B` is not a header"),
            "{e}"
        );
        for header in [
            "atc3_a,atc3_b",
            "code_a,code_b",
            "Code_A,Code_B",
            "\u{feff}code_a,code_b",
        ] {
            std::fs::write(&path, format!("{header}\nA,B\n")).unwrap();
            let g = DdiGraph::load_csv(&path, &vocab_ab(), UnknownCodes::Count).unwrap();
            assert_eq!(g.edge_count(), 1, "{header}");
        }
        // Errors name the file's own columns.
        std::fs::write(&path, "atc3_a,atc3_b\nA,Z\n").unwrap();
        let e = DdiGraph::load_csv(&path, &vocab_ab(), UnknownCodes::Error).unwrap_err();
        assert!(
            e.to_string().contains("ddi.csv:2: field `atc3_b`: drug code `Z`"),
            "{e}"
        );
        std::fs::write(&path, "code_a,atc3_b\nA,B\n").unwrap();
        assert!(DdiGraph::load_csv(&path, &vocab_ab(), UnknownCodes::Count).is_err());
    }

    /// Issue #12: a graph of which no pair lies in the vocabulary gave DDI
    /// rates of zero with no notice.
    #[test]
    fn a_graph_outside_the_vocabulary_is_an_error_or_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ddi.csv");
        // No code of the file is a drug: two code systems.
        std::fs::write(&path, "code_a,code_b\nX1,X2\nX3,X4\n").unwrap();
        let e = DdiGraph::load_csv(&path, &vocab_ab(), UnknownCodes::Count).unwrap_err();
        assert!(
            e.to_string()
                .contains("ddi.csv:2: field `code_a`: none of the 2 interactions names a drug"),
            "{e}"
        );
        // Known codes, but no pair between two drugs: a warning.
        std::fs::write(&path, "code_a,code_b\nA,X2\n").unwrap();
        let g = DdiGraph::load_csv(&path, &vocab_ab(), UnknownCodes::Count).unwrap();
        assert!(
            g.warning().unwrap().contains("none of the 1 interactions"),
            "{:?}",
            g.warning()
        );
        std::fs::write(&path, "code_a,code_b\n").unwrap();
        let g = DdiGraph::load_csv(&path, &vocab_ab(), UnknownCodes::Count).unwrap();
        assert!(g.warning().unwrap().contains("lists no interactions"));
        assert_eq!(DdiGraph::empty(2, "none").warning(), None);
    }
}
