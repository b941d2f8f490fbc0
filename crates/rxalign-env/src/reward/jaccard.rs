use super::{ListContext, RewardTerm};

/// `|S∩G| / |S∪G|`, 0 when `S` or `G` is empty (as the Jaccard metric).
#[derive(Debug, Default)]
pub struct JaccardReward;

impl RewardTerm for JaccardReward {
    fn name(&self) -> &str {
        "jaccard"
    }
    fn definition(&self) -> &str {
        "|S∩G|/|S∪G| (0 if S or G empty)"
    }
    fn potential(&self, ctx: &ListContext<'_>) -> f64 {
        let s = ctx.stats;
        if s.size == 0 || s.truth_size == 0 {
            return 0.0;
        }
        f64::from(s.hits) / f64::from(s.size + s.truth_size - s.hits)
    }
}
