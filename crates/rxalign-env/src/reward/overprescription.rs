use super::{ListContext, RewardTerm};

/// Minus the false positives over the ground truth's size:
/// `−|S \ G| / max(|G|, 1)`.
#[derive(Debug, Default)]
pub struct OverprescriptionReward;

impl RewardTerm for OverprescriptionReward {
    fn name(&self) -> &str {
        "overprescription"
    }
    fn definition(&self) -> &str {
        "−|S∖G|/max(|G|,1): false positives over the ground truth's size"
    }
    fn potential(&self, ctx: &ListContext<'_>) -> f64 {
        let s = ctx.stats;
        0.0 - f64::from(s.size - s.hits) / f64::from(s.truth_size.max(1))
    }
}
