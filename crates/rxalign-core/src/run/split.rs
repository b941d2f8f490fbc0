//! A run's split as `run.json` records it: how it was drawn, a fingerprint
//! of each part's patients (so two runs, or two papers' numbers, can be
//! checked to share a split), and per part the diagnostics that say
//! whether per-visit means are dominated by a few patients.
//!
//! The record holds no patient id: only SHA-256 digests of the sorted
//! lists.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Cohort, Split};

/// The share of a split's visits one patient may hold before `plan` and
/// `run` warn that the split's per-visit means are mostly that patient's.
pub const DOMINANT_PATIENT_SHARE: f64 = 0.1;

/// One part of a split (`train`, `val`, `test`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitPart {
    /// `train`, `val` or `test`.
    pub part: String,
    pub patients: usize,
    pub visits: usize,
    /// Median visits per patient (the mean of the two middle patients for
    /// an even count); 0 for no patient.
    pub visits_per_patient_median: f64,
    /// The most visits of one patient.
    pub visits_per_patient_max: usize,
    /// The largest patient's share of the part's visits (0 for no visit).
    pub largest_patient_share: f64,
    /// SHA-256 of the part's patient ids, sorted, each followed by a
    /// newline.
    pub patients_sha256: String,
}

/// `run.json`'s `split` (since run format 1.3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitRecord {
    /// The seed that drew the split (the run's seed where the split
    /// follows it).
    pub seed: u64,
    /// Shares of patients in training and validation; the rest is test.
    pub train: f64,
    pub val: f64,
    /// SHA-256 of the three parts' `patients_sha256`, in the order train,
    /// val, test: two runs with the same fingerprint have the same
    /// patients in each part.
    pub fingerprint: String,
    pub parts: Vec<SplitPart>,
}

fn hex(digest: impl AsRef<[u8]>) -> String {
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

impl SplitPart {
    /// The diagnostics of the visits `visits` (indices of `cohort`).
    pub fn of(part: &str, cohort: &Cohort, visits: &[usize]) -> Self {
        let mut per_patient: BTreeMap<&str, usize> = BTreeMap::new();
        for &i in visits {
            *per_patient
                .entry(cohort.visits[i].patient_id.as_str())
                .or_default() += 1;
        }
        let mut hasher = Sha256::new();
        for id in per_patient.keys() {
            hasher.update(id.as_bytes());
            hasher.update(b"\n");
        }
        let mut counts: Vec<usize> = per_patient.values().copied().collect();
        counts.sort_unstable();
        let n = counts.len();
        let median = match n {
            0 => 0.0,
            _ if n % 2 == 1 => counts[n / 2] as f64,
            _ => (counts[n / 2 - 1] + counts[n / 2]) as f64 / 2.0,
        };
        let max = counts.last().copied().unwrap_or(0);
        Self {
            part: part.to_string(),
            patients: n,
            visits: visits.len(),
            visits_per_patient_median: median,
            visits_per_patient_max: max,
            largest_patient_share: if visits.is_empty() {
                0.0
            } else {
                max as f64 / visits.len() as f64
            },
            patients_sha256: hex(hasher.finalize()),
        }
    }

    /// One line: `test: 17 patients, 20 visits, visits per patient median
    /// 1, max 3; the largest patient holds 15.0% of the visits`.
    pub fn describe(&self) -> String {
        format!(
            "{}: {} patients, {} visits, visits per patient median {}, max {}; the largest patient holds {:.1}% of the visits",
            self.part,
            self.patients,
            self.visits,
            self.visits_per_patient_median,
            self.visits_per_patient_max,
            100.0 * self.largest_patient_share
        )
    }
}

impl SplitRecord {
    /// The record of `split` of `cohort`.
    pub fn of(cohort: &Cohort, split: &Split) -> Self {
        let parts = vec![
            SplitPart::of("train", cohort, &split.train),
            SplitPart::of("val", cohort, &split.val),
            SplitPart::of("test", cohort, &split.test),
        ];
        let mut hasher = Sha256::new();
        for p in &parts {
            hasher.update(p.patients_sha256.as_bytes());
            hasher.update(b"\n");
        }
        Self {
            seed: split.config.seed,
            train: split.config.train,
            val: split.config.val,
            fingerprint: hex(hasher.finalize()),
            parts,
        }
    }

    /// A warning per part where one patient holds more than
    /// [`DOMINANT_PATIENT_SHARE`] of the visits.
    pub fn warnings(&self) -> Vec<String> {
        self.parts
            .iter()
            .filter(|p| p.largest_patient_share > DOMINANT_PATIENT_SHARE)
            .map(|p| {
                format!(
                    "split `{}` (seed {}): one patient holds {:.1}% of its {} visits ({} visits; more than {:.0}%): its per-visit means are largely that patient's; read the per-patient means too (`rxalign compare DIR --mean per-patient`)",
                    p.part,
                    self.seed,
                    100.0 * p.largest_patient_share,
                    p.visits,
                    p.visits_per_patient_max,
                    100.0 * DOMINANT_PATIENT_SHARE
                )
            })
            .collect()
    }

    /// The first 12 hex digits of the fingerprint, as tables show it.
    pub fn short_fingerprint(&self) -> &str {
        &self.fingerprint[..self.fingerprint.len().min(12)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SplitConfig;
    use crate::cohort::tests::cohort_of as cohort;

    #[test]
    fn parts_count_patients_visits_and_the_largest_share() {
        let c = cohort(&[1, 2, 3, 10]);
        let all: Vec<usize> = (0..c.visits.len()).collect();
        let p = SplitPart::of("test", &c, &all);
        assert_eq!((p.patients, p.visits, p.visits_per_patient_max), (4, 16, 10));
        assert_eq!(p.visits_per_patient_median, 2.5);
        assert!((p.largest_patient_share - 10.0 / 16.0).abs() < 1e-12);
        let empty = SplitPart::of("val", &c, &[]);
        assert_eq!((empty.patients, empty.largest_patient_share), (0, 0.0));
    }

    #[test]
    fn the_fingerprint_is_that_of_the_patient_lists() {
        let c = cohort(&[2; 60]);
        let a = SplitRecord::of(&c, &c.split(&SplitConfig::with_seed(1)));
        let b = SplitRecord::of(&c, &c.split(&SplitConfig::with_seed(1)));
        let other = SplitRecord::of(&c, &c.split(&SplitConfig::with_seed(2)));
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, other.fingerprint);
        assert!(a.warnings().is_empty());
        let skewed = cohort(&[1, 1, 1, 1, 1, 1, 1, 1, 1, 30]);
        let all: Vec<usize> = (0..skewed.visits.len()).collect();
        let split = Split {
            config: SplitConfig::with_seed(0),
            train: Vec::new(),
            val: Vec::new(),
            test: all,
        };
        let warnings = SplitRecord::of(&skewed, &split).warnings();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("split `test`"), "{}", warnings[0]);
        assert!(warnings[0].contains("76.9%"), "{}", warnings[0]);
    }
}
