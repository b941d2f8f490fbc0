//! How a dataset's prescriptions are structured: list sizes, how strongly
//! drugs are prescribed together, and how often the lists interact. The
//! regime a list-wise decision works in (FLAME and LAMO report on lists of
//! about 20 drugs given in bundles), computed the same way for any dataset.

use serde::Serialize;

use crate::{Cohort, DrugSet};

/// Drugs seen in fewer visits are left out of the co-prescription
/// statistics (their correlations are noise).
pub const MIN_DRUG_COUNT: usize = 5;
/// A pair whose phi exceeds this is counted as strongly coupled.
pub const STRONG_PHI: f64 = 0.3;

/// The structure of a set of visits' prescriptions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Structure {
    /// Visits described.
    pub visits: usize,
    /// Mean drugs per visit.
    pub list_size_mean: f64,
    /// Sample standard deviation of drugs per visit.
    pub list_size_std: f64,
    /// Drugs seen in at least [`MIN_DRUG_COUNT`] visits and in not all of
    /// them: the drugs whose pairs are counted.
    pub drugs_counted: usize,
    /// Pairs of those drugs.
    pub pairs: usize,
    /// Quantiles of the pairwise phi (Pearson correlation of the two
    /// drugs' presence over visits; linear interpolation between ranks).
    pub phi_median: Option<f64>,
    pub phi_p90: Option<f64>,
    pub phi_p99: Option<f64>,
    /// Share of the pairs with phi above [`STRONG_PHI`].
    pub strongly_coupled_share: Option<f64>,
}

impl Structure {
    /// The structure of the given visits of a cohort.
    pub fn of(cohort: &Cohort, visits: &[usize]) -> Self {
        let lists: Vec<&DrugSet> = visits.iter().map(|&i| &cohort.visits[i].drugs).collect();
        Self::of_lists(&lists, cohort.drugs.len())
    }

    /// The structure of lists over a vocabulary of `width` drugs.
    pub fn of_lists(lists: &[&DrugSet], width: usize) -> Self {
        let n = lists.len();
        let sizes: Vec<f64> = lists.iter().map(|l| l.len() as f64).collect();
        let mean = if n == 0 {
            0.0
        } else {
            sizes.iter().sum::<f64>() / n as f64
        };
        let std = if n < 2 {
            0.0
        } else {
            (sizes.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        };
        let mut count = vec![0usize; width];
        for l in lists {
            for d in l.iter() {
                count[d] += 1;
            }
        }
        let kept: Vec<usize> = (0..width)
            .filter(|&d| count[d] >= MIN_DRUG_COUNT && count[d] < n)
            .collect();
        // Co-occurrence counts of the kept drugs.
        let k = kept.len();
        let mut position = vec![usize::MAX; width];
        for (i, &d) in kept.iter().enumerate() {
            position[d] = i;
        }
        let mut both = vec![0usize; k * k];
        for l in lists {
            let present: Vec<usize> = l
                .iter()
                .map(|d| position[d])
                .filter(|&p| p != usize::MAX)
                .collect();
            for (x, &a) in present.iter().enumerate() {
                for &b in &present[x + 1..] {
                    both[a.min(b) * k + a.max(b)] += 1;
                }
            }
        }
        let nf = n as f64;
        let mut phis = Vec::with_capacity(k * k.saturating_sub(1) / 2);
        for a in 0..k {
            for b in a + 1..k {
                let (na, nb) = (count[kept[a]] as f64, count[kept[b]] as f64);
                let nab = both[a * k + b] as f64;
                let denom = (na * (nf - na) * nb * (nf - nb)).sqrt();
                phis.push((nf * nab - na * nb) / denom);
            }
        }
        phis.sort_by(f64::total_cmp);
        let strong = phis.iter().filter(|&&p| p > STRONG_PHI).count();
        Self {
            visits: n,
            list_size_mean: mean,
            list_size_std: std,
            drugs_counted: k,
            pairs: phis.len(),
            phi_median: quantile(&phis, 0.5),
            phi_p90: quantile(&phis, 0.9),
            phi_p99: quantile(&phis, 0.99),
            strongly_coupled_share: (!phis.is_empty()).then(|| strong as f64 / phis.len() as f64),
        }
    }
}

/// The structure averaged over disjoint blocks of consecutive visits.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BlockStructure {
    /// Visits per block.
    pub block: usize,
    /// Blocks averaged (the visits past the last whole block are left out).
    pub blocks: usize,
    /// Each field's mean over the blocks (`visits` is the block size; a
    /// quantile is `None` if any block has no pair).
    pub mean: Structure,
}

impl Structure {
    /// The structure of each block of `block` consecutive visits, averaged.
    pub fn of_blocks(cohort: &Cohort, block: usize) -> Result<BlockStructure, crate::CoreError> {
        let blocks = cohort.visits.len().checked_div(block).unwrap_or(0);
        if blocks == 0 {
            return Err(crate::CoreError::Invalid(format!(
                "blocks of {block} visits: the dataset has {} visits",
                cohort.visits.len()
            )));
        }
        let each: Vec<Self> = (0..blocks)
            .map(|b| Self::of(cohort, &(b * block..(b + 1) * block).collect::<Vec<_>>()))
            .collect();
        let n = blocks as f64;
        let mean = |f: &dyn Fn(&Self) -> f64| each.iter().map(f).sum::<f64>() / n;
        let mean_opt =
            |f: &dyn Fn(&Self) -> Option<f64>| each.iter().map(f).sum::<Option<f64>>().map(|s| s / n);
        Ok(BlockStructure {
            block,
            blocks,
            mean: Self {
                visits: block,
                list_size_mean: mean(&|s| s.list_size_mean),
                list_size_std: mean(&|s| s.list_size_std),
                drugs_counted: (mean(&|s| s.drugs_counted as f64)).round() as usize,
                pairs: (mean(&|s| s.pairs as f64)).round() as usize,
                phi_median: mean_opt(&|s| s.phi_median),
                phi_p90: mean_opt(&|s| s.phi_p90),
                phi_p99: mean_opt(&|s| s.phi_p99),
                strongly_coupled_share: mean_opt(&|s| s.strongly_coupled_share),
            },
        })
    }
}

/// The `q` quantile of sorted values, interpolating linearly between ranks
/// (numpy's default); `None` for no values.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let pos = q * last as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phi_of_always_together_and_never_together() {
        // Drugs 0 and 1 always together, 2 exactly when they are absent.
        let width = 3;
        let mut lists = Vec::new();
        for v in 0..20 {
            lists.push(if v % 2 == 0 {
                DrugSet::from_indices(width, [0, 1])
            } else {
                DrugSet::from_indices(width, [2])
            });
        }
        let refs: Vec<&DrugSet> = lists.iter().collect();
        let s = Structure::of_lists(&refs, width);
        assert_eq!(s.pairs, 3);
        // Sorted phis: -1, -1, 1.
        assert_eq!(s.phi_median, Some(-1.0));
        assert!((s.phi_p99.unwrap() - (-1.0 + 2.0 * 0.98)).abs() < 1e-12);
        assert!((s.strongly_coupled_share.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert!((s.list_size_mean - 1.5).abs() < 1e-12);
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), Some(2.5));
        assert!((quantile(&v, 0.9).unwrap() - 3.7).abs() < 1e-12);
        assert_eq!(quantile(&[], 0.5), None);
    }
}
