//! Codes of one kind with human names.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Codes of one kind (drugs, diagnoses or procedures) with their names.
///
/// A code's index is its position of insertion and is stable within a
/// dataset: drug sets, DDI adjacency and model outputs all index by it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(from = "VocabRepr", into = "VocabRepr")]
pub struct Vocab {
    codes: Vec<String>,
    names: Vec<String>,
    index: HashMap<String, usize>,
}

#[derive(Serialize, Deserialize)]
struct VocabRepr {
    codes: Vec<String>,
    names: Vec<String>,
}

impl From<VocabRepr> for Vocab {
    fn from(r: VocabRepr) -> Self {
        let mut v = Vocab::default();
        for (code, name) in r.codes.into_iter().zip(r.names) {
            v.insert(code, name);
        }
        v
    }
}

impl From<Vocab> for VocabRepr {
    fn from(v: Vocab) -> Self {
        Self {
            codes: v.codes,
            names: v.names,
        }
    }
}

impl Vocab {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a code with its name and returns its index; a code already present
    /// keeps its index (and its first name).
    pub fn insert(&mut self, code: impl Into<String>, name: impl Into<String>) -> usize {
        let code = code.into();
        if let Some(&i) = self.index.get(&code) {
            return i;
        }
        let i = self.codes.len();
        self.index.insert(code.clone(), i);
        self.codes.push(code);
        self.names.push(name.into());
        i
    }

    /// The index of a code, if known.
    pub fn get(&self, code: &str) -> Option<usize> {
        self.index.get(code).copied()
    }

    pub fn code(&self, i: usize) -> &str {
        &self.codes[i]
    }

    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    pub fn codes(&self) -> &[String] {
        &self.codes
    }

    /// `(index, code, name)` in index order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &str, &str)> {
        self.codes
            .iter()
            .zip(&self.names)
            .enumerate()
            .map(|(i, (c, n))| (i, c.as_str(), n.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_stable_and_duplicates_keep_theirs() {
        let mut v = Vocab::new();
        assert_eq!(v.insert("C09AA03", "lisinopril"), 0);
        assert_eq!(v.insert("B01AA03", "warfarin"), 1);
        assert_eq!(v.insert("C09AA03", "other"), 0);
        assert_eq!(v.name(0), "lisinopril");
        assert_eq!(v.get("B01AA03"), Some(1));
        assert_eq!(v.get("nope"), None);
        let json = serde_json::to_string(&v).unwrap();
        let back: Vocab = serde_json::from_str(&json).unwrap();
        assert_eq!(back.get("B01AA03"), Some(1));
        assert_eq!(back.len(), 2);
    }
}
