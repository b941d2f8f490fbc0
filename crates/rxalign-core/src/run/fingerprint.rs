//! The data fingerprint and the drug table of a run, computed from its
//! cohort.

use sha2::{Digest, Sha256};

use super::records::{DataFingerprint, DdiPair, DrugEntry, DrugsRecord, RUN_FORMAT};
use crate::{Cohort, DrugSet, Vocab};

/// Feeds length-prefixed fields into a digest, so that no two different
/// visit lists hash the same bytes.
struct Feed(Sha256);

impl Feed {
    fn bytes(&mut self, b: &[u8]) {
        self.0.update((b.len() as u64).to_le_bytes());
        self.0.update(b);
    }

    fn text(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn opt(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.0.update([1]);
                self.text(s);
            }
            None => self.0.update([0]),
        }
    }

    fn codes(&mut self, vocab: &Vocab, indices: impl Iterator<Item = usize>) {
        let codes: Vec<&str> = indices.map(|i| vocab.code(i)).collect();
        self.0.update((codes.len() as u64).to_le_bytes());
        for c in codes {
            self.text(c);
        }
    }

    fn set(&mut self, vocab: &Vocab, set: &DrugSet) {
        self.codes(vocab, set.iter());
    }

    fn hex(self) -> String {
        self.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl DataFingerprint {
    /// The fingerprint of a cohort: every field of every visit in order
    /// (codes by name, not index), and the DDI pairs by code.
    pub fn of(cohort: &Cohort) -> Self {
        let mut v = Feed(Sha256::new());
        for visit in &cohort.visits {
            v.text(&visit.patient_id);
            v.text(&visit.visit_id);
            v.opt(visit.time.as_deref());
            v.opt(visit.age.map(|a| a.to_bits().to_string()).as_deref());
            v.opt(visit.sex.map(|s| format!("{s:?}")).as_deref());
            v.codes(&cohort.diagnoses, visit.diagnoses.iter().copied());
            v.codes(&cohort.procedures, visit.procedures.iter().copied());
            v.opt(visit.note.as_deref());
            v.0.update((visit.history.len() as u64).to_le_bytes());
            for h in &visit.history {
                v.set(&cohort.drugs, h);
            }
            v.set(&cohort.drugs, &visit.drugs);
        }
        let mut d = Feed(Sha256::new());
        let pairs = ddi_pairs(cohort);
        for p in &pairs {
            d.text(&p.a);
            d.text(&p.b);
        }
        Self {
            source: cohort.name.clone(),
            visits: cohort.visits.len(),
            patients: cohort.patient_count(),
            drugs: cohort.drug_count(),
            ddi_pairs: pairs.len(),
            visits_sha256: v.hex(),
            ddi_sha256: d.hex(),
        }
    }
}

/// The DDI pairs by code, each pair ordered and the list sorted.
fn ddi_pairs(cohort: &Cohort) -> Vec<DdiPair> {
    let mut pairs: Vec<DdiPair> = cohort
        .ddi
        .edges()
        .into_iter()
        .map(|(a, b)| {
            let (a, b) = (cohort.drugs.code(a), cohort.drugs.code(b));
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            DdiPair {
                a: a.to_string(),
                b: b.to_string(),
                severity: None,
            }
        })
        .collect();
    pairs.sort_by(|x, y| (&x.a, &x.b).cmp(&(&y.a, &y.b)));
    pairs
}

impl DrugsRecord {
    /// The drug table and DDI pairs of a cohort.
    pub fn of(cohort: &Cohort) -> Self {
        let source = cohort.ddi.source();
        Self {
            format: RUN_FORMAT,
            source: cohort.name.clone(),
            drugs: cohort
                .drugs
                .iter()
                .map(|(index, code, name)| DrugEntry {
                    index,
                    code: code.to_string(),
                    name: name.to_string(),
                })
                .collect(),
            ddi_origin: source.origin.clone(),
            ddi_sha256: source.sha256.clone(),
            ddi: ddi_pairs(cohort),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DdiGraph, Visit};

    fn cohort(second_drug: usize, edge: (usize, usize)) -> Cohort {
        let mut drugs = Vocab::new();
        for i in 0..3 {
            drugs.insert(format!("D{i}"), format!("drug {i}"));
        }
        let visits = vec![
            Visit::new("p1", "v1", DrugSet::from_indices(3, [0])),
            Visit::new("p2", "v2", DrugSet::from_indices(3, [second_drug])),
        ];
        Cohort::new(
            "t",
            drugs,
            Vocab::new(),
            Vocab::new(),
            visits,
            DdiGraph::from_pairs(3, [edge], "t").unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn the_fingerprint_changes_with_the_visits_and_the_graph() {
        let a = DataFingerprint::of(&cohort(1, (0, 1)));
        assert_eq!(a, DataFingerprint::of(&cohort(1, (0, 1))));
        assert_eq!((a.visits, a.patients, a.drugs, a.ddi_pairs), (2, 2, 3, 1));
        let b = DataFingerprint::of(&cohort(2, (0, 1)));
        assert_ne!(a.visits_sha256, b.visits_sha256);
        assert_eq!(a.ddi_sha256, b.ddi_sha256);
        let diff = a.differences(&b);
        assert_eq!(diff.len(), 1, "{diff:?}");
        assert!(diff[0].starts_with("visits SHA-256 "), "{diff:?}");
        let c = DataFingerprint::of(&cohort(1, (1, 2)));
        assert_ne!(a.ddi_sha256, c.ddi_sha256);
    }

    #[test]
    fn the_drug_table_names_drugs_and_pairs() {
        let d = DrugsRecord::of(&cohort(1, (1, 0)));
        assert_eq!(d.drugs.len(), 3);
        assert_eq!(d.label("D1"), "D1 (drug 1)");
        assert_eq!(d.label("X"), "X");
        assert_eq!(
            d.ddi,
            vec![DdiPair {
                a: "D0".into(),
                b: "D1".into(),
                severity: None
            }]
        );
    }
}
