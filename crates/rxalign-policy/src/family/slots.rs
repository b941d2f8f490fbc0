//! Acting over action slots (add drug `d` at slot `d`, remove it at
//! `drugs + d`, stop at `2·drugs`): for any family whose decision is one
//! slot of [`rxalign_core::Action::space`], such as the `set_encoder` list
//! policy or a researcher's tabular family.

use rand::Rng as _;
use rxalign_core::Rng;

use super::{ActMode, Acted};
use crate::PolicyError;

/// Each state's decision over action slots from its row of every slot's
/// log-probabilities: the most probable slot ([`ActMode::Greedy`]) or one
/// drawn from `rng` ([`ActMode::Sample`]), with its log-probability as its
/// one part. A row holding NaN or +∞ is an error (a diverged model).
pub fn act_on_slots<R: AsRef<[f32]>>(
    rows: impl IntoIterator<Item = R>,
    mode: ActMode,
    rng: &mut Rng,
) -> Result<Vec<Acted<usize>>, PolicyError> {
    rows.into_iter()
        .map(|logp| {
            let logp = logp.as_ref();
            if logp.iter().any(|l| l.is_nan() || *l == f32::INFINITY) {
                return Err(PolicyError::NonFinite {
                    what: "action log-probabilities",
                });
            }
            let slot = match mode {
                ActMode::Greedy => logp
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(0, |(slot, _)| slot),
                ActMode::Sample { .. } => sample_slot(logp, rng),
            };
            Ok(Acted {
                decision: slot,
                parts: vec![logp[slot]],
            })
        })
        .collect()
}

/// Below this log-probability `exp` rounds to 0 in `f32` (`e^-110` is
/// about 1.7e-48, under half the smallest positive `f32`, 7.0e-46), so the
/// probability is 0 without calling `exp`, whose underflow path (masked
/// slots hold about -1e9) is many times slower than its usual one.
const EXP_UNDERFLOW: f32 = -110.0;

/// A slot drawn from `rng` with probability `exp(logp)` (for a family over
/// action slots acting with [`ActMode::Sample`]).
pub fn sample_slot(logp: &[f32], rng: &mut Rng) -> usize {
    // One pass summing as it goes (in order, as `Iterator::sum` would): the
    // running sum keeps the loop scalar, so the branch stays a branch (a
    // vectorised loop computes `exp` on every lane and selects after).
    let mut total = 0f32;
    let probs: Vec<f32> = logp
        .iter()
        .map(|&l| {
            let p = if l < EXP_UNDERFLOW { 0.0 } else { l.exp() };
            total += p;
            p
        })
        .collect();
    let mut u = rng.random_range(0.0..total.max(f32::MIN_POSITIVE));
    for (i, &p) in probs.iter().enumerate() {
        if u < p {
            return i;
        }
        u -= p;
    }
    probs.iter().rposition(|&p| p > 0.0).unwrap_or(probs.len() - 1)
}
