use super::{ListContext, RewardTerm};

/// Minus the share of drug pairs in `S` that interact (FLAME's DDI term);
/// 0 below two drugs.
#[derive(Debug, Default)]
pub struct DdiRateReward;

impl RewardTerm for DdiRateReward {
    fn name(&self) -> &str {
        "ddi_rate"
    }
    fn definition(&self) -> &str {
        "−(interacting pairs / all pairs in S) (0 below 2 drugs)"
    }
    fn potential(&self, ctx: &ListContext<'_>) -> f64 {
        let s = ctx.stats;
        if s.size < 2 {
            return 0.0;
        }
        let pairs = f64::from(s.size) * f64::from(s.size - 1) / 2.0;
        0.0 - f64::from(s.ddi_pairs) / pairs
    }
}
