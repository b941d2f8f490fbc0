use super::{ListContext, RewardTerm};

/// `|S∩G| / |S|`, 0 when `S` is empty.
#[derive(Debug, Default)]
pub struct PrecisionReward;

impl RewardTerm for PrecisionReward {
    fn name(&self) -> &str {
        "precision"
    }
    fn definition(&self) -> &str {
        "|S∩G|/|S| (0 if S empty)"
    }
    fn potential(&self, ctx: &ListContext<'_>) -> f64 {
        let s = ctx.stats;
        if s.size == 0 {
            0.0
        } else {
            f64::from(s.hits) / f64::from(s.size)
        }
    }
}
