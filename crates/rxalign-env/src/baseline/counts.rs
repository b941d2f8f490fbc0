use rxalign_core::Cohort;

/// Training counts of diagnoses and of diagnosis-drug co-occurrences.
#[derive(Clone, Debug, Default)]
pub(crate) struct DiagnosisDrugCounts {
    drugs: usize,
    /// Visits coded with each diagnosis.
    diagnosis: Vec<u32>,
    /// `pair[dx * drugs + d]`: visits coded with `dx` that were given `d`.
    pair: Vec<u32>,
}

impl DiagnosisDrugCounts {
    pub(crate) fn fit(cohort: &Cohort, train: &[usize]) -> Self {
        let drugs = cohort.drug_count();
        let dx = cohort.diagnoses.len();
        let mut c = Self { drugs, diagnosis: vec![0; dx], pair: vec![0; dx * drugs] };
        for &v in train {
            let visit = &cohort.visits[v];
            for &x in &visit.diagnoses {
                c.diagnosis[x] += 1;
                for d in visit.drugs.iter() {
                    c.pair[x * drugs + d] += 1;
                }
            }
        }
        c
    }

    /// For each drug, the largest `P(drug | diagnosis)` over the visit's
    /// diagnoses seen in training (0 when none was seen).
    pub(crate) fn max_conditional(&self, cohort: &Cohort, visit: usize) -> Vec<f64> {
        let mut scores = vec![0.0; self.drugs];
        for &x in &cohort.visits[visit].diagnoses {
            let n = self.diagnosis.get(x).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            for (d, s) in scores.iter_mut().enumerate() {
                *s = f64::max(*s, f64::from(self.pair[x * self.drugs + d]) / f64::from(n));
            }
        }
        scores
    }
}
