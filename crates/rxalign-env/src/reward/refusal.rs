use super::{ListContext, RewardTerm};

/// Minus the share of output lines that named no known drug (FLAME's refusal
/// rate); 0 before any output.
#[derive(Debug, Default)]
pub struct RefusalReward;

impl RewardTerm for RefusalReward {
    fn name(&self) -> &str {
        "refusal"
    }
    fn definition(&self) -> &str {
        "−(output lines naming no known drug / output lines) (0 before any output)"
    }
    fn potential(&self, ctx: &ListContext<'_>) -> f64 {
        let s = ctx.stats;
        if s.outputs == 0 {
            0.0
        } else {
            0.0 - f64::from(s.refusals) / f64::from(s.outputs)
        }
    }
}
