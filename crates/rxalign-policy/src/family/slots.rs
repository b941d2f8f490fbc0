//! Acting over action slots (add drug `d` at slot `d`, remove it at
//! `drugs + d`, stop at `2·drugs`): for any family whose decision is one
//! slot of [`rxalign_core::Action::space`], such as the `set_encoder` list
//! policy or a researcher's tabular family.

use burn::prelude::*;
use rand::Rng as _;
use rxalign_core::Rng;

use super::{ActMode, Acted, LOG_FLOOR};
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

/// The smallest argument [`masked_exp`] hands to `exp`. `e^-87` is about
/// 1.6e-38, just above `f32`'s smallest normal number. Below about -88,
/// glibc's `expf` (which `flex` calls once per element) leaves its fast
/// path, and below -103 it takes its underflow path, many times slower.
/// Masked action slots hold about -1e9, and they are half of a list
/// policy's slots.
pub const EXP_FLOOR: f32 = -87.0;

/// `exp(x)`, with exactly 0 wherever `x` is below [`EXP_FLOOR`], without
/// calling `exp` there. Above the floor the values and gradients are
/// `exp`'s own. Below it, `exp` itself gives 0 or a subnormal number under
/// 1.2e-38, and the gradient `exp(x) · grad` is that small too; here both
/// are exactly 0 (masked slots: exactly what `exp` gave them).
///
/// # Shapes
/// - `x`, output: any shape, the same
pub fn masked_exp<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let below = x.clone().lower_elem(EXP_FLOOR);
    x.mask_fill(below.clone(), EXP_FLOOR).exp().mask_fill(below, 0.0)
}

/// `log_softmax` along `dim` through [`masked_exp`]: burn's composition
/// (`s = x − max(x)`, then `s − log Σ exp(s)`) with every `exp` of a masked
/// slot skipped. The sum counts each masked slot as exactly 0, where
/// `exp` gave 0 too (the sum is at least 1, the maximum's own term).
///
/// # Shapes
/// - `x`, output: any shape, the same
pub fn masked_log_softmax<B: Backend, const D: usize>(x: Tensor<B, D>, dim: usize) -> Tensor<B, D> {
    let shifted = x.clone() - x.detach().max_dim(dim);
    shifted.clone() - masked_exp(shifted).sum_dim(dim).log()
}

/// The entropy `−Σ p log p` of each distribution along `dim`, from its
/// log-probabilities: masked slots (log-probability about -1e9) count 0,
/// through [`masked_exp`] and a log clamped at [`LOG_FLOOR`] (so that
/// `0 · (−∞)` never appears).
///
/// # Shapes
/// - `logp`: any shape
/// - output: `logp`'s shape with `dim` of size 1
pub fn entropy<B: Backend, const D: usize>(logp: Tensor<B, D>, dim: usize) -> Tensor<B, D> {
    (masked_exp(logp.clone()) * logp.clamp_min(LOG_FLOOR))
        .sum_dim(dim)
        .neg()
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

#[cfg(test)]
mod tests {
    use burn::tensor::activation::log_softmax;

    use super::*;
    use crate::CpuTrainBackend as B;

    /// Rows of logits: masked slots (about -1e9), valid slots far below
    /// the maximum (-200: `exp` gives 0 there too) and near it.
    ///
    /// # Shapes
    /// - output: `[3, 5]`
    fn logits() -> Tensor<B, 2> {
        let m = -1.0e9;
        let rows = [
            [0.5, m, -1.0, m, 2.0],
            [m, 3.0, m + 4.0, -200.0, 1.5],
            [-40.0, 0.0, 40.0, m, -0.25],
        ];
        Tensor::<B, 2>::from_data(rows, &Default::default()).require_grad()
    }

    /// A weight on every slot, masked ones included. The slot 80 below its
    /// row's maximum weighs 0: its gradient is then `exp`'s term alone,
    /// about 1e-35, which a floor set too high would zero.
    fn weights() -> Tensor<B, 2> {
        Tensor::from_data(
            [
                [0.3, -0.7, 1.1, 0.2, -0.4],
                [0.9, -1.3, 0.6, 0.5, 0.1],
                [0.0, 0.8, 0.4, -0.6, 1.2],
            ],
            &Default::default(),
        )
    }

    fn values<const D: usize>(t: Tensor<impl Backend, D>) -> Vec<f32> {
        t.into_data().to_vec().unwrap()
    }

    #[test]
    fn masked_log_softmax_is_burns_log_softmax_with_its_gradients() {
        let (ours_in, burns_in) = (logits(), logits());
        let ours = masked_log_softmax(ours_in.clone(), 1);
        let burns = log_softmax(burns_in.clone(), 1);
        assert_eq!(values(ours.clone()), values(burns.clone()));

        let ours_grads = (ours * weights()).sum().backward();
        let burns_grads = (burns * weights()).sum().backward();
        let grad = |t: &Tensor<B, 2>, g| values(t.grad(g).unwrap());
        assert_eq!(grad(&ours_in, &ours_grads), grad(&burns_in, &burns_grads));
    }

    #[test]
    fn masked_exp_is_exp_above_the_floor_and_zero_below_it() {
        let x = Tensor::<B, 1>::from_data(
            [0.0, -1.5, EXP_FLOOR, -90.0, -1.0e9, 3.0, -50.0],
            &Default::default(),
        )
        .require_grad();
        let ours = masked_exp(x.clone());
        let exact = values(x.clone().exp());
        let got = values(ours.clone());
        for (i, (&g, &e)) in got.iter().zip(&exact).enumerate() {
            if i == 3 || i == 4 {
                // -90: exp gives a subnormal number; -1e9: exp gives 0.
                assert_eq!(g, 0.0, "slot {i}");
                assert!(e < f32::MIN_POSITIVE, "slot {i}: {e}");
            } else {
                assert_eq!(g, e, "slot {i}");
            }
        }
        let grads = ours.sum().backward();
        let grad = values(x.grad(&grads).unwrap());
        assert_eq!(grad, got, "d exp(x) / dx = exp(x) above the floor, 0 below");
    }
}
