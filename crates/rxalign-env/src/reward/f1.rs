use super::{ListContext, RewardTerm};

/// `2|S∩G| / (|S| + |G|)`, which equals `2PR/(P+R)`; 0 when it is undefined.
#[derive(Debug, Default)]
pub struct F1Reward;

impl RewardTerm for F1Reward {
    fn name(&self) -> &str {
        "f1"
    }
    fn definition(&self) -> &str {
        "2|S∩G|/(|S|+|G|) = 2PR/(P+R) (0 if undefined)"
    }
    fn potential(&self, ctx: &ListContext<'_>) -> f64 {
        let s = ctx.stats;
        if s.hits == 0 {
            return 0.0;
        }
        2.0 * f64::from(s.hits) / f64::from(s.size + s.truth_size)
    }
}
