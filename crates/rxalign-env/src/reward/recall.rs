use super::{ListContext, RewardTerm};

/// `|S∩G| / |G|`, 0 when `G` is empty.
#[derive(Debug, Default)]
pub struct RecallReward;

impl RewardTerm for RecallReward {
    fn name(&self) -> &str {
        "recall"
    }
    fn definition(&self) -> &str {
        "|S∩G|/|G| (0 if G empty)"
    }
    fn potential(&self, ctx: &ListContext<'_>) -> f64 {
        let s = ctx.stats;
        if s.truth_size == 0 {
            0.0
        } else {
            f64::from(s.hits) / f64::from(s.truth_size)
        }
    }
}
