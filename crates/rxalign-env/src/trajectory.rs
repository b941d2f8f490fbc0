//! Recording episodes as [`Trajectory`] records, and the canonical edit
//! sequence from one list to another.

use std::collections::BTreeMap;

use rxalign_core::trajectory::{ActionRecord, TrajectorySource, codes_of};
use rxalign_core::{Action, Cohort, DrugSet, StepRecord, Trajectory};

use crate::{EnvError, Episode, Reward, StepReward};

/// The canonical edit sequence from `start` to `target`: remove the drugs
/// that should not be there, in increasing drug index, then add the missing
/// ones, in increasing drug index, then stop.
pub fn expert_actions(start: &DrugSet, target: &DrugSet) -> Vec<Action> {
    let mut extra = start.clone();
    extra.difference_with(target);
    let mut missing = target.clone();
    missing.difference_with(start);
    extra
        .iter()
        .map(Action::Remove)
        .chain(missing.iter().map(Action::Add))
        .chain(std::iter::once(Action::Stop))
        .collect()
}

/// How a policy took a recorded step: the probability of its decision,
/// and for a generative policy what it wrote and each part's (token's)
/// probability.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decided {
    pub probability: Option<f64>,
    pub text: Option<String>,
    pub part_probabilities: Vec<f64>,
}

/// Builds the record of an episode step by step.
#[derive(Debug)]
pub struct TrajectoryRecorder<'c> {
    cohort: &'c Cohort,
    names: Vec<String>,
    trajectory: Trajectory,
}

impl<'c> TrajectoryRecorder<'c> {
    /// Starts the record of `episode` (not yet stepped) of visit `visit`.
    pub fn begin(
        cohort: &'c Cohort,
        visit: usize,
        method: &str,
        split: &str,
        reward: &Reward,
        episode: &Episode<'_>,
    ) -> Self {
        let v = &cohort.visits[visit];
        let names = reward.names();
        // Not yet stepped: the episode's terms are the start list's.
        let start_terms = names
            .iter()
            .cloned()
            .zip(episode.terms().iter().copied())
            .collect();
        Self {
            cohort,
            names,
            trajectory: Trajectory {
                visit_id: v.visit_id.clone(),
                patient_id: v.patient_id.clone(),
                method: method.to_string(),
                split: split.to_string(),
                ground_truth: codes_of(&v.drugs, &cohort.drugs),
                start: codes_of(episode.start(), &cohort.drugs),
                steps: Vec::new(),
                final_list: Vec::new(),
                outcome_reward: 0.0,
                start_potential: episode.start_potential(),
                start_terms,
                source: TrajectorySource::Decoded,
                truncated: false,
            },
        }
    }

    /// Records the step just taken on `episode`.
    /// Records a step: its action, how the policy took it (`decided`) and
    /// its reward.
    pub fn record(
        &mut self,
        action: ActionRecord,
        decided: Decided,
        reward: StepReward,
        episode: &Episode<'_>,
    ) {
        let terms: BTreeMap<String, f64> = self
            .names
            .iter()
            .cloned()
            .zip(episode.last_terms().iter().copied())
            .collect();
        self.trajectory.steps.push(StepRecord {
            action,
            probability: decided.probability,
            text: decided.text,
            part_probabilities: decided.part_probabilities,
            reward: reward.total,
            terms,
            list: codes_of(episode.list(), &self.cohort.drugs),
        });
    }

    /// Closes the record with the episode's final list.
    pub fn finish(mut self, episode: &Episode<'_>) -> Trajectory {
        self.trajectory.final_list = codes_of(episode.list(), &self.cohort.drugs);
        self.trajectory.outcome_reward = episode.outcome_reward();
        self.trajectory.truncated = episode.is_truncated();
        self.trajectory
    }
}

/// Plays the canonical edit sequence from `start` to `target` for a visit
/// and records it: how a fixed list (a baseline's, say) is reached step by
/// step, with each step's reward.
pub fn replay_edits(
    cohort: &Cohort,
    visit: usize,
    reward: &Reward,
    start: DrugSet,
    target: &DrugSet,
    method: &str,
    split: &str,
) -> Result<Trajectory, EnvError> {
    let actions = expert_actions(&start, target);
    let truth = &cohort.visits[visit].drugs;
    let mut episode = Episode::new(reward, truth, &cohort.ddi, start, actions.len());
    let mut recorder = TrajectoryRecorder::begin(cohort, visit, method, split, reward, &episode);
    recorder.trajectory.source = TrajectorySource::Replayed;
    for action in actions {
        let r = episode.step(action)?;
        recorder.record(
            ActionRecord::from_action(action, &cohort.drugs),
            Decided::default(),
            r,
            &episode,
        );
    }
    Ok(recorder.finish(&episode))
}

#[cfg(test)]
mod tests {
    use rxalign_core::{DdiGraph, Visit, Vocab};

    use super::*;
    use crate::RewardConfig;

    #[test]
    fn expert_edits_remove_then_add_in_index_order() {
        let s = DrugSet::from_indices(6, [0, 3, 5]);
        let t = DrugSet::from_indices(6, [1, 3, 4]);
        assert_eq!(
            expert_actions(&s, &t),
            vec![
                Action::Remove(0),
                Action::Remove(5),
                Action::Add(1),
                Action::Add(4),
                Action::Stop
            ]
        );
        assert_eq!(expert_actions(&t, &t), vec![Action::Stop]);
    }

    #[test]
    fn replayed_trajectory_reaches_the_target_and_sums_up() {
        let mut drugs = Vocab::new();
        for i in 0..4 {
            drugs.insert(format!("D{i}"), format!("d{i}"));
        }
        let v = Visit::new("p", "v", DrugSet::from_indices(4, [0, 1]));
        let c = Cohort::new(
            "t",
            drugs,
            Vocab::new(),
            Vocab::new(),
            vec![v],
            DdiGraph::from_pairs(4, [(0, 2)], "t").unwrap(),
        )
        .unwrap();
        let reward = RewardConfig::flame().init().unwrap();
        let t = replay_edits(
            &c,
            0,
            &reward,
            DrugSet::from_indices(4, [2]),
            &DrugSet::from_indices(4, [0, 1]),
            "m",
            "test",
        )
        .unwrap();
        assert_eq!(t.start, vec!["D2"]);
        assert_eq!(t.final_list, vec!["D0", "D1"]);
        assert_eq!(t.steps.len(), 4);
        assert_eq!(t.steps[0].action, ActionRecord::Remove("D2".into()));
        let sum: f64 = t.steps.iter().map(|s| s.reward).sum();
        assert!((sum - t.outcome_reward).abs() < 1e-12 && (t.outcome_reward - 1.0).abs() < 1e-12);
        assert_eq!(
            t.steps[2].terms.keys().collect::<Vec<_>>(),
            vec!["jaccard", "refusal"]
        );
        assert_eq!(t.source, TrajectorySource::Replayed);
        assert_eq!(
            t.start_terms.keys().collect::<Vec<_>>(),
            vec!["jaccard", "refusal"]
        );
        let sum: f64 = t.start_terms.values().sum();
        assert!((sum - t.start_potential).abs() < 1e-12);
    }
}
