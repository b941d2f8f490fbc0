use super::{ListContext, RewardTerm};

/// Minus the list size beyond the ground truth's, relative to it:
/// `−max(|S| − |G|, 0) / max(|G|, 1)`. Unlike `overprescription` it charges
/// only the count, not which drugs.
#[derive(Debug, Default)]
pub struct OverprescriptionSizeReward;

impl RewardTerm for OverprescriptionSizeReward {
    fn name(&self) -> &str {
        "overprescription_size"
    }
    fn definition(&self) -> &str {
        "−max(|S|−|G|,0)/max(|G|,1): list size beyond the ground truth's"
    }
    fn potential(&self, ctx: &ListContext<'_>) -> f64 {
        let s = ctx.stats;
        0.0 - f64::from(s.size.saturating_sub(s.truth_size)) / f64::from(s.truth_size.max(1))
    }
}
