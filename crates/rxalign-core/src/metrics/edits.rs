//! How well an editor edits: the edit metrics of a method that starts each
//! visit from a list (FLAME's list policy, from the classifier's lists),
//! counted per visit from the start list, the final list and the ground
//! truth, then summed over visits.
//!
//! FLAME reports edits this way ("28 lists edited, 89% correctly"); the
//! mean Jaccard hides it: an editor that changes few lists, mostly for the
//! better, and one that changes many, half for the worse, can have the same
//! mean. Each metric is named `edit/<name>` in every file and table, and
//! [`EDIT_METRICS`] gives its definition.

use serde::{Deserialize, Serialize};

use super::jaccard;
use crate::DrugSet;

/// A change smaller than this (in Jaccard or in the outcome reward) counts
/// as staying the same: two different lists can score the same, and sums of
/// floating-point terms differ in their last bits.
pub const STAYED_WITHIN: f64 = 1e-9;

/// The edit metrics, `(name, definition)`, in report order.
pub const EDIT_METRICS: [(&str, &str); 15] = [
    (
        "edit/lists_changed",
        "test lists whose final list differs from the start list the method started from (count)",
    ),
    ("edit/lists_changed_share", "edit/lists_changed / test lists"),
    (
        "edit/jaccard_improved",
        "share of the changed lists whose Jaccard against the ground truth rose (by more than 1e-9)",
    ),
    (
        "edit/jaccard_worsened",
        "share of the changed lists whose Jaccard against the ground truth fell (by more than 1e-9)",
    ),
    (
        "edit/jaccard_stayed",
        "share of the changed lists whose Jaccard against the ground truth stayed (within 1e-9)",
    ),
    (
        "edit/outcome_improved",
        "share of the changed lists whose outcome reward Phi(final) - Phi(start) is above 1e-9",
    ),
    (
        "edit/outcome_worsened",
        "share of the changed lists whose outcome reward Phi(final) - Phi(start) is below -1e-9",
    ),
    (
        "edit/outcome_stayed",
        "share of the changed lists whose outcome reward Phi(final) - Phi(start) is within 1e-9 of 0",
    ),
    (
        "edit/jaccard_net",
        "sum over test lists of Jaccard(final) - Jaccard(start): the net change the edits made",
    ),
    (
        "edit/jaccard_net_per_visit",
        "edit/jaccard_net / test lists (the change in mean Jaccard the edits made)",
    ),
    (
        "edit/outcome_net_per_visit",
        "mean over test lists of the outcome reward Phi(final) - Phi(start)",
    ),
    (
        "edit/added",
        "drugs added (in the final list, not in the start list), summed over test lists",
    ),
    (
        "edit/added_right",
        "share of the added drugs that are in the ground truth",
    ),
    (
        "edit/removed",
        "drugs removed (in the start list, not in the final list), summed over test lists",
    ),
    (
        "edit/removed_right",
        "share of the removed drugs that are not in the ground truth",
    ),
];

/// The definition of an edit metric, by name.
pub fn edit_definition(name: &str) -> Option<&'static str> {
    EDIT_METRICS.iter().find(|(n, _)| *n == name).map(|(_, d)| *d)
}

/// Whether `name` is an edit metric.
pub fn is_edit_metric(name: &str) -> bool {
    edit_definition(name).is_some()
}

/// How many changed lists rose, fell and stayed in one measure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcomes {
    pub improved: usize,
    pub worsened: usize,
    pub stayed: usize,
}

impl Outcomes {
    fn push(&mut self, delta: f64) {
        if delta > STAYED_WITHIN {
            self.improved += 1;
        } else if delta < -STAYED_WITHIN {
            self.worsened += 1;
        } else {
            self.stayed += 1;
        }
    }

    fn total(&self) -> usize {
        self.improved + self.worsened + self.stayed
    }
}

/// The list-level edit counts of a method over visits: the raw counts
/// behind [`EDIT_METRICS`], as `summary.json` keeps them (each method's
/// `edits.lists`, since run format 1.2).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ListEdits {
    /// Visits counted.
    pub visits: usize,
    /// Lists whose final list differs from the start list.
    pub changed: usize,
    /// Of the changed lists: how their Jaccard moved.
    pub jaccard: Outcomes,
    /// Of the changed lists: how their outcome reward moved (`None` where a
    /// visit was counted without one).
    #[serde(default)]
    pub outcome: Option<Outcomes>,
    /// Sum over visits of Jaccard(final) - Jaccard(start).
    pub jaccard_net: f64,
    /// Sum over visits of the outcome reward (`None` as for `outcome`).
    #[serde(default)]
    pub outcome_net: Option<f64>,
    pub added: usize,
    /// Added drugs in the ground truth.
    pub added_right: usize,
    pub removed: usize,
    /// Removed drugs not in the ground truth.
    pub removed_right: usize,
}

impl ListEdits {
    /// No visits yet; outcomes are counted until a visit comes without one.
    pub fn new() -> Self {
        Self {
            outcome: Some(Outcomes::default()),
            outcome_net: Some(0.0),
            ..Self::default()
        }
    }

    /// Counts one visit: its start list, final list, ground truth and,
    /// where known, its outcome reward `Phi(end) - Phi(start)`.
    pub fn count(&mut self, start: &DrugSet, end: &DrugSet, truth: &DrugSet, outcome: Option<f64>) {
        self.visits += 1;
        let delta = jaccard(end, truth) - jaccard(start, truth);
        self.jaccard_net += delta;
        match outcome {
            Some(o) => {
                if let Some(net) = &mut self.outcome_net {
                    *net += o;
                }
            }
            None => {
                self.outcome = None;
                self.outcome_net = None;
            }
        }
        for d in end.iter().filter(|&d| !start.contains(d)) {
            self.added += 1;
            self.added_right += usize::from(truth.contains(d));
        }
        for d in start.iter().filter(|&d| !end.contains(d)) {
            self.removed += 1;
            self.removed_right += usize::from(!truth.contains(d));
        }
        if start != end {
            self.changed += 1;
            self.jaccard.push(delta);
            if let (Some(counts), Some(o)) = (&mut self.outcome, outcome) {
                counts.push(o);
            }
        }
    }

    /// Every edit metric by name, in [`EDIT_METRICS`] order (`None` where
    /// undefined: a share of nothing, or outcomes not known).
    pub fn metrics(&self) -> Vec<(&'static str, Option<f64>)> {
        let share = |n: usize, of: usize| (of > 0).then(|| n as f64 / of as f64);
        let per_visit = |x: f64| share(1, self.visits).map(|s| x * s);
        let o = self.outcome;
        let changed = self.jaccard.total();
        let values = [
            Some(self.changed as f64),
            share(self.changed, self.visits),
            share(self.jaccard.improved, changed),
            share(self.jaccard.worsened, changed),
            share(self.jaccard.stayed, changed),
            o.and_then(|o| share(o.improved, o.total())),
            o.and_then(|o| share(o.worsened, o.total())),
            o.and_then(|o| share(o.stayed, o.total())),
            Some(self.jaccard_net),
            per_visit(self.jaccard_net),
            self.outcome_net.and_then(per_visit),
            Some(self.added as f64),
            share(self.added_right, self.added),
            Some(self.removed as f64),
            share(self.removed_right, self.removed),
        ];
        EDIT_METRICS.iter().map(|(n, _)| *n).zip(values).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ix: &[usize]) -> DrugSet {
        DrugSet::from_indices(4, ix.iter().copied())
    }

    #[test]
    fn each_visit_is_counted_by_how_its_edits_moved_it() {
        let mut e = ListEdits::new();
        let truth = set(&[0, 1]);
        // Better: start {0, 2} (J 1/3) -> {0, 1} (J 1); one added right, one removed right.
        e.count(&set(&[0, 2]), &set(&[0, 1]), &truth, Some(0.5));
        // Worse: {0, 1} -> {0} (J 1 -> 1/2); a true drug removed.
        e.count(&set(&[0, 1]), &set(&[0]), &truth, Some(-0.2));
        // Same Jaccard, other list: {0, 2} -> {0, 3}; the reward stays too.
        e.count(&set(&[0, 2]), &set(&[0, 3]), &truth, Some(0.0));
        // Unchanged.
        e.count(&set(&[1]), &set(&[1]), &truth, Some(0.0));
        assert_eq!((e.visits, e.changed), (4, 3));
        let o = Outcomes {
            improved: 1,
            worsened: 1,
            stayed: 1,
        };
        assert_eq!((e.jaccard, e.outcome), (o, Some(o)));
        assert_eq!((e.added, e.added_right, e.removed, e.removed_right), (2, 1, 3, 2));
        let m: std::collections::BTreeMap<&str, Option<f64>> = e.metrics().into_iter().collect();
        assert_eq!(m["edit/lists_changed"], Some(3.0));
        assert_eq!(m["edit/lists_changed_share"], Some(0.75));
        assert_eq!(m["edit/jaccard_improved"], Some(1.0 / 3.0));
        let net = (1.0 - 1.0 / 3.0) + (0.5 - 1.0);
        assert!((m["edit/jaccard_net"].unwrap() - net).abs() < 1e-12);
        assert!((m["edit/jaccard_net_per_visit"].unwrap() - net / 4.0).abs() < 1e-12);
        assert!((m["edit/outcome_net_per_visit"].unwrap() - 0.3 / 4.0).abs() < 1e-12);
        assert_eq!(m["edit/added_right"], Some(0.5));
        assert_eq!(m["edit/removed_right"], Some(2.0 / 3.0));
        assert_eq!(m.len(), EDIT_METRICS.len());
        // A visit without an outcome makes the outcome metrics undefined.
        e.count(&set(&[1]), &set(&[]), &truth, None);
        let m: std::collections::BTreeMap<&str, Option<f64>> = e.metrics().into_iter().collect();
        assert_eq!(
            (m["edit/outcome_improved"], m["edit/outcome_net_per_visit"]),
            (None, None)
        );
        assert_eq!(m["edit/jaccard_worsened"], Some(0.5));
        // No list changed: the shares of changed lists are undefined.
        let mut none = ListEdits::new();
        none.count(&set(&[1]), &set(&[1]), &truth, Some(0.0));
        let m: std::collections::BTreeMap<&str, Option<f64>> = none.metrics().into_iter().collect();
        assert_eq!(
            (m["edit/lists_changed"], m["edit/jaccard_improved"]),
            (Some(0.0), None)
        );
        assert_eq!(m["edit/added_right"], None);
    }
}
