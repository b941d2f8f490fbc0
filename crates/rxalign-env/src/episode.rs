//! One episode of the decision process.

use rxalign_core::{Action, DdiGraph, DrugSet};

use crate::EnvError;
use crate::reward::{ListContext, Reward};

/// Counts over the current list that every built-in potential is a function
/// of, kept up to date incrementally.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListStats {
    /// `|S|`.
    pub size: u32,
    /// `|S ∩ G|`.
    pub hits: u32,
    /// `|G|`.
    pub truth_size: u32,
    /// Interacting unordered pairs inside `S`.
    pub ddi_pairs: u32,
    /// Output lines so far (add and remove decisions, and unrecognised lines).
    pub outputs: u32,
    /// Output lines that named no known drug.
    pub refusals: u32,
}

impl ListStats {
    /// The statistics of a list computed from scratch.
    pub fn of(list: &DrugSet, truth: &DrugSet, ddi: &DdiGraph) -> Self {
        Self {
            size: list.len() as u32,
            hits: list.intersection_len(truth) as u32,
            truth_size: truth.len() as u32,
            ddi_pairs: ddi.interacting_pairs(list) as u32,
            outputs: 0,
            refusals: 0,
        }
    }
}

/// The reward of one step: `Phi(S_{t+1}) − Phi(S_t)` and its weighted terms
/// (see [`Episode::last_terms`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReward {
    pub total: f64,
    /// Whether the episode ended with this step (`Stop` or the budget).
    pub done: bool,
}

/// The state of one visit's episode: the current list, its statistics and
/// potential, and the step budget.
#[derive(Debug, Clone)]
pub struct Episode<'a> {
    reward: &'a Reward,
    truth: &'a DrugSet,
    ddi: &'a DdiGraph,
    start: DrugSet,
    list: DrugSet,
    stats: ListStats,
    budget: usize,
    steps: usize,
    stopped: bool,
    start_potential: f64,
    potential: f64,
    /// Weighted potential of each term for the current list.
    terms: Vec<f64>,
    /// Weighted step reward of each term for the last step.
    last_terms: Vec<f64>,
}

impl<'a> Episode<'a> {
    /// Starts an episode from `start` against the ground truth `truth`; it
    /// ends on `Stop` or after `budget` steps.
    pub fn new(
        reward: &'a Reward,
        truth: &'a DrugSet,
        ddi: &'a DdiGraph,
        start: DrugSet,
        budget: usize,
    ) -> Self {
        assert_eq!(
            start.width(),
            truth.width(),
            "start list and ground truth differ in width"
        );
        let stats = ListStats::of(&start, truth, ddi);
        let mut terms = vec![0.0; reward.len()];
        let potential = reward.weighted_terms(
            &ListContext {
                stats: &stats,
                list: &start,
                truth,
                ddi,
            },
            &mut terms,
        );
        Self {
            reward,
            truth,
            ddi,
            list: start.clone(),
            start,
            stats,
            budget,
            steps: 0,
            stopped: false,
            start_potential: potential,
            potential,
            last_terms: vec![0.0; terms.len()],
            terms,
        }
    }

    pub fn list(&self) -> &DrugSet {
        &self.list
    }

    pub fn start(&self) -> &DrugSet {
        &self.start
    }

    pub fn truth(&self) -> &DrugSet {
        self.truth
    }

    pub fn stats(&self) -> &ListStats {
        &self.stats
    }

    /// `Phi` of the current list.
    pub fn potential(&self) -> f64 {
        self.potential
    }

    /// `Phi` of the start list.
    pub fn start_potential(&self) -> f64 {
        self.start_potential
    }

    /// The outcome reward so far: `Phi(S_t) − Phi(S_0)`.
    pub fn outcome_reward(&self) -> f64 {
        self.potential - self.start_potential
    }

    /// The weighted potential of each reward term for the current list.
    pub fn terms(&self) -> &[f64] {
        &self.terms
    }

    /// The weighted step reward of each term for the last step.
    pub fn last_terms(&self) -> &[f64] {
        &self.last_terms
    }

    pub fn steps(&self) -> usize {
        self.steps
    }

    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Whether the episode ended (`Stop`, or the budget spent).
    pub fn is_done(&self) -> bool {
        self.stopped || self.steps >= self.budget
    }

    /// Whether the budget ended the episode before `Stop`.
    pub fn is_truncated(&self) -> bool {
        !self.stopped && self.steps >= self.budget
    }

    /// Whether an action is valid now: add a drug not in the list, remove one
    /// that is, or stop.
    pub fn is_valid(&self, action: Action) -> bool {
        match action {
            Action::Add(d) => d < self.list.width() && !self.list.contains(d),
            Action::Remove(d) => d < self.list.width() && self.list.contains(d),
            Action::Stop => true,
        }
    }

    /// Writes the mask of valid actions into `mask`, indexed as
    /// [`Action::index`] (adds, then removes, then stop).
    ///
    /// # Panics
    /// When `mask.len()` is not `Action::space(width)`.
    pub fn mask_into(&self, mask: &mut [bool]) {
        let n = self.list.width();
        assert_eq!(mask.len(), Action::space(n), "mask length");
        for d in 0..n {
            let inside = self.list.contains(d);
            mask[d] = !inside;
            mask[n + d] = inside;
        }
        mask[2 * n] = true;
    }

    /// The mask of valid actions.
    pub fn mask(&self) -> Vec<bool> {
        let mut m = vec![false; Action::space(self.list.width())];
        self.mask_into(&mut m);
        m
    }

    /// Takes an action and returns its step reward.
    pub fn step(&mut self, action: Action) -> Result<StepReward, EnvError> {
        if self.is_done() {
            return Err(EnvError::Finished);
        }
        match action {
            Action::Add(d) => {
                if !self.is_valid(action) {
                    return Err(EnvError::InvalidAction {
                        action,
                        reason: "the drug is already in the list (or unknown)",
                    });
                }
                self.stats.ddi_pairs += self.ddi.neighbours(d).intersection_len(&self.list) as u32;
                self.list.insert(d);
                self.stats.size += 1;
                self.stats.hits += u32::from(self.truth.contains(d));
                self.stats.outputs += 1;
            }
            Action::Remove(d) => {
                if !self.is_valid(action) {
                    return Err(EnvError::InvalidAction {
                        action,
                        reason: "the drug is not in the list",
                    });
                }
                self.list.remove(d);
                self.stats.ddi_pairs -= self.ddi.neighbours(d).intersection_len(&self.list) as u32;
                self.stats.size -= 1;
                self.stats.hits -= u32::from(self.truth.contains(d));
                self.stats.outputs += 1;
            }
            Action::Stop => self.stopped = true,
        }
        Ok(self.advance())
    }

    /// Records an output line that names no known drug (a generative
    /// policy's refusal): the list is unchanged, the refusal term charged.
    pub fn refuse(&mut self) -> Result<StepReward, EnvError> {
        if self.is_done() {
            return Err(EnvError::Finished);
        }
        self.stats.outputs += 1;
        self.stats.refusals += 1;
        Ok(self.advance())
    }

    fn advance(&mut self) -> StepReward {
        self.steps += 1;
        let before = self.potential;
        std::mem::swap(&mut self.terms, &mut self.last_terms);
        let ctx = ListContext {
            stats: &self.stats,
            list: &self.list,
            truth: self.truth,
            ddi: self.ddi,
        };
        self.potential = self.reward.weighted_terms(&ctx, &mut self.terms);
        // last_terms holds the previous potentials: turn them into differences.
        for (last, now) in self.last_terms.iter_mut().zip(&self.terms) {
            *last = now - *last;
        }
        StepReward {
            total: self.potential - before,
            done: self.is_done(),
        }
    }
}
