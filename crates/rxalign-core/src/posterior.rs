//! Exact posteriors over a visit's ground truth, for generators that know
//! theirs (the synthetic clinic's `icu` preset): what a recommender with
//! perfect knowledge of the generative model could decide.
//!
//! Every built-in reward term depends on the ground truth `G` only through
//! `|S ∩ G|` and `|G|` for a given list `S`, so the expectation of any of
//! them under a posterior needs only the joint distribution of the hits
//! `|S ∩ G|` and the misses `|G ∖ S|`: an [`Overlap`].

use crate::DrugSet;

/// The joint distribution of the hits `|S ∩ G|` and the misses `|G ∖ S|`
/// of one list `S` under a posterior over `G`.
#[derive(Clone, Debug, PartialEq)]
pub struct Overlap {
    hits_max: usize,
    misses_max: usize,
    /// `p[hits * (misses_max + 1) + misses]`.
    p: Vec<f64>,
}

impl Overlap {
    /// The point mass at 0 hits and 0 misses.
    pub fn certain_empty() -> Self {
        Self {
            hits_max: 0,
            misses_max: 0,
            p: vec![1.0],
        }
    }

    /// A table of the given extent, every cell 0.
    pub fn zeros(hits_max: usize, misses_max: usize) -> Self {
        Self {
            hits_max,
            misses_max,
            p: vec![0.0; (hits_max + 1) * (misses_max + 1)],
        }
    }

    /// The most hits with non-zero room in the table.
    pub fn hits_max(&self) -> usize {
        self.hits_max
    }

    /// The most misses with non-zero room in the table.
    pub fn misses_max(&self) -> usize {
        self.misses_max
    }

    /// `P(hits, misses)`; 0 outside the table.
    pub fn get(&self, hits: usize, misses: usize) -> f64 {
        if hits > self.hits_max || misses > self.misses_max {
            return 0.0;
        }
        self.p[hits * (self.misses_max + 1) + misses]
    }

    /// Adds `p` to the cell `(hits, misses)`, which must lie in the table.
    pub fn add(&mut self, hits: usize, misses: usize, p: f64) {
        let w = self.misses_max + 1;
        self.p[hits * w + misses] += p;
    }

    /// The cells with non-zero probability as `(hits, misses, p)`.
    pub fn cells(&self) -> impl Iterator<Item = (usize, usize, f64)> + '_ {
        let w = self.misses_max + 1;
        self.p
            .iter()
            .enumerate()
            .filter(|(_, p)| **p > 0.0)
            .map(move |(i, &p)| (i / w, i % w, p))
    }

    /// The total probability (1 up to rounding for a distribution).
    pub fn total(&self) -> f64 {
        self.p.iter().sum()
    }

    /// Adds `weight × other` cell by cell, growing the table as needed.
    pub fn add_scaled(&mut self, other: &Self, weight: f64) {
        if other.hits_max > self.hits_max || other.misses_max > self.misses_max {
            let mut grown = Self::zeros(
                self.hits_max.max(other.hits_max),
                self.misses_max.max(other.misses_max),
            );
            for (h, m, p) in self.cells() {
                grown.add(h, m, p);
            }
            *self = grown;
        }
        for (h, m, p) in other.cells() {
            self.add(h, m, weight * p);
        }
    }

    /// Convolves with one independent slot that adds a hit with probability
    /// `hit`, a miss with probability `miss`, and nothing otherwise.
    pub fn convolve_slot(&mut self, hit: f64, miss: f64) {
        let none = 1.0 - hit - miss;
        let (grow_h, grow_m) = (usize::from(hit > 0.0), usize::from(miss > 0.0));
        let (hm, mm) = (self.hits_max + grow_h, self.misses_max + grow_m);
        let w_old = self.misses_max + 1;
        let w = mm + 1;
        let mut out = vec![0.0; (hm + 1) * w];
        for h in 0..=self.hits_max {
            for m in 0..=self.misses_max {
                let p = self.p[h * w_old + m];
                if p == 0.0 {
                    continue;
                }
                out[h * w + m] += p * none;
                if grow_h == 1 {
                    out[(h + 1) * w + m] += p * hit;
                }
                if grow_m == 1 {
                    out[h * w + m + 1] += p * miss;
                }
            }
        }
        *self = Self {
            hits_max: hm,
            misses_max: mm,
            p: out,
        };
    }
}

/// A posterior over one visit's ground truth list.
pub trait ListPosterior {
    /// `P(d ∈ G)` for every drug `d` of the vocabulary.
    fn marginals(&self) -> &[f64];
    /// The joint distribution of hits and misses of `list`.
    fn overlap(&self, list: &DrugSet) -> Overlap;
    /// For a posterior that is a mixture (over latent states), each
    /// component's weight and marginals: a search for the best list starts
    /// from each component's likely drugs as well, since a mixture's best
    /// list can follow one component (one unit's habits) where the
    /// marginals blur them. None by default.
    fn components(&self) -> Vec<(f64, Vec<f64>)> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_convolve_into_a_distribution() {
        let mut o = Overlap::certain_empty();
        o.convolve_slot(0.5, 0.25);
        o.convolve_slot(0.0, 0.5);
        assert!((o.total() - 1.0).abs() < 1e-12);
        // P(1 hit, 1 miss) = 0.5 · 0.5.
        assert!((o.get(1, 1) - 0.25).abs() < 1e-12);
        // P(0 hits, 2 misses) = 0.25 · 0.5.
        assert!((o.get(0, 2) - 0.125).abs() < 1e-12);
        assert_eq!(o.get(2, 0), 0.0);
        let mut mix = Overlap::certain_empty();
        mix.add_scaled(&o, 1.0);
        assert!((mix.get(0, 0) - 1.0 - o.get(0, 0)).abs() < 1e-12);
    }
}
