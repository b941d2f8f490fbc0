use rxalign_core::Cohort;

/// Training counts of diagnoses and of diagnosis-drug co-occurrences.
#[derive(Clone, Debug, Default)]
pub(crate) struct DiagnosisDrugCounts {
    drugs: usize,
    /// Visits coded with each diagnosis.
    diagnosis: Vec<u32>,
    /// `pair[dx * drugs + d]`: visits coded with `dx` that were given `d`.
    pair: Vec<u32>,
    /// Visits given each drug.
    drug: Vec<u32>,
    visits: u32,
}

impl DiagnosisDrugCounts {
    pub(crate) fn fit(cohort: &Cohort, train: &[usize]) -> Self {
        let drugs = cohort.drug_count();
        let dx = cohort.diagnoses.len();
        let mut c = Self {
            drugs,
            diagnosis: vec![0; dx],
            pair: vec![0; dx * drugs],
            drug: vec![0; drugs],
            visits: 0,
        };
        for &v in train {
            let visit = &cohort.visits[v];
            c.visits += 1;
            for d in visit.drugs.iter() {
                c.drug[d] += 1;
            }
            for &x in &visit.diagnoses {
                c.diagnosis[x] += 1;
                for d in visit.drugs.iter() {
                    c.pair[x * drugs + d] += 1;
                }
            }
        }
        c
    }

    /// `P(drug)` over the training visits.
    pub(crate) fn base_rate(&self, drug: usize) -> f64 {
        if self.visits == 0 {
            0.0
        } else {
            f64::from(self.drug[drug]) / f64::from(self.visits)
        }
    }

    /// For each drug, the largest `P(drug | diagnosis)` over the visit's
    /// diagnoses seen in training (0 when none was seen).
    pub(crate) fn max_conditional(&self, cohort: &Cohort, visit: usize) -> Vec<f64> {
        let mut scores = vec![0.0; self.drugs];
        self.each_conditional(cohort, visit, |d, p| scores[d] = f64::max(scores[d], p));
        scores
    }

    /// Calls `f(drug, P(drug | diagnosis))` for each of the visit's
    /// diagnoses seen in training and each drug.
    pub(crate) fn each_conditional(&self, cohort: &Cohort, visit: usize, mut f: impl FnMut(usize, f64)) {
        for &x in &cohort.visits[visit].diagnoses {
            let n = self.diagnosis.get(x).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            for d in 0..self.drugs {
                f(d, f64::from(self.pair[x * self.drugs + d]) / f64::from(n));
            }
        }
    }
}
