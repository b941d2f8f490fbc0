//! The one episode runner: a batch of episodes stepped in lockstep by a
//! policy family, for GRPO's rollouts, greedy evaluation and recorded
//! trajectories alike.

use std::collections::HashSet;

use burn::prelude::*;
use rxalign_core::trajectory::ActionRecord;
use rxalign_core::{Action, Cohort, DrugSet, Rng, Trajectory};
use rxalign_env::trajectory::{Decided, TrajectoryRecorder};
use rxalign_env::{Episode, Reward};
use rxalign_policy::family::{ActMemo, ActMode, Acted, Effect, PolicyFamily, State};

use crate::TrainError;

/// States decoded at once in greedy evaluation.
pub const GREEDY_BATCH: usize = 512;

/// One step of an episode: the list before it, the decision with its
/// per-part log-probabilities, what it did, and its shaped reward.
#[derive(Clone, Debug)]
pub struct EpisodeStep<D> {
    pub list_before: DrugSet,
    pub acted: Acted<D>,
    pub effect: Effect,
    /// Whether the step was charged as a refusal (output that named no
    /// valid edit).
    pub refused: bool,
    /// `Phi(S_{t+1}) − Phi(S_t)`.
    pub reward: f64,
}

/// A finished episode.
#[derive(Clone, Debug)]
pub struct EpisodeResult<D> {
    pub visit: usize,
    /// The list the episode started from.
    pub start: DrugSet,
    pub steps: Vec<EpisodeStep<D>>,
    pub final_list: DrugSet,
    /// `Phi(S_T) − Phi(S_0)`.
    pub outcome: f64,
    /// Each reward term's weighted potential at the final list.
    pub final_terms: Vec<f64>,
    /// The step-by-step record, for the visits asked for.
    pub trajectory: Option<Trajectory>,
}

/// Which episodes keep a [`Trajectory`], under which method and split names.
#[derive(Clone, Copy, Debug)]
pub struct Recording<'a> {
    pub method: &'a str,
    pub split: &'a str,
    pub visits: &'a HashSet<usize>,
}

/// What the runner needs besides the family and its model.
#[derive(Clone, Copy, Debug)]
pub struct Episodes<'a> {
    pub cohort: &'a Cohort,
    pub reward: &'a Reward,
    /// At most this many decisions per episode (edits, refusals, stop and
    /// the ends of answers alike).
    pub budget: usize,
    pub mode: ActMode,
    /// States scored at once (all active episodes when `None`).
    pub max_batch: Option<usize>,
    pub record: Option<Recording<'a>>,
}

impl Episodes<'_> {
    /// Runs one episode per start `(visit, list)` to `Stop` or the budget.
    /// Sampling draws from `rng` in episode order, one decision at a time.
    pub fn run<F: PolicyFamily, B: Backend>(
        &self,
        family: &F,
        model: &F::Model<B>,
        starts: Vec<(usize, DrugSet)>,
        rng: &mut Rng,
        device: &B::Device,
    ) -> Result<Vec<EpisodeResult<F::Decision>>, TrainError> {
        let cohort = self.cohort;
        struct Running<'e, D> {
            visit: usize,
            episode: Episode<'e>,
            steps: Vec<EpisodeStep<D>>,
            /// The effects of `steps`, in order (what the states' `earlier` shows).
            effects: Vec<Effect>,
            recorder: Option<TrajectoryRecorder<'e>>,
        }
        let mut running: Vec<Running<'_, F::Decision>> = starts
            .into_iter()
            .map(|(visit, start)| {
                let episode = Episode::new(
                    self.reward,
                    &cohort.visits[visit].drugs,
                    &cohort.ddi,
                    start,
                    self.budget,
                );
                let recorder = self.record.filter(|r| r.visits.contains(&visit)).map(|r| {
                    TrajectoryRecorder::begin(cohort, visit, r.method, r.split, self.reward, &episode)
                });
                Running {
                    visit,
                    episode,
                    steps: Vec::new(),
                    effects: Vec::new(),
                    recorder,
                }
            })
            .collect();
        let budget = self.budget;
        let done = |r: &Running<'_, F::Decision>| r.episode.is_done() || r.steps.len() >= budget;
        // One memo per batch position: a batch mostly continues the
        // episodes of the same position's last batch.
        let mut memos: Vec<ActMemo> = Vec::new();
        loop {
            let active: Vec<usize> = (0..running.len()).filter(|&i| !done(&running[i])).collect();
            if active.is_empty() {
                break;
            }
            // The smaller of the runner's and the family's bounds, if any.
            let batch = [self.max_batch, family.max_act_batch()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(active.len());
            for (c, chunk) in active.chunks(batch.max(1)).enumerate() {
                if memos.len() <= c {
                    memos.push(ActMemo::default());
                }
                let lists: Vec<DrugSet> = chunk.iter().map(|&i| running[i].episode.list().clone()).collect();
                let states: Vec<State<'_>> = chunk
                    .iter()
                    .zip(&lists)
                    .map(|(&i, list)| State {
                        visit: running[i].visit,
                        list,
                        start: running[i].episode.start(),
                        earlier: &running[i].effects,
                    })
                    .collect();
                let acted =
                    family.act_with_memo(model, cohort, &states, self.mode, rng, device, &mut memos[c])?;
                for ((&i, before), acted) in chunk.iter().zip(&lists).zip(acted) {
                    let r = &mut running[i];
                    let effect = family.effect(&acted.decision, cohort);
                    let (reward, refused, record) = match &effect {
                        Effect::Act(a) if r.episode.is_valid(*a) => (
                            r.episode.step(*a)?,
                            false,
                            ActionRecord::from_action(*a, &cohort.drugs),
                        ),
                        Effect::Act(a) => (
                            r.episode.refuse()?,
                            true,
                            ActionRecord::Unrecognized(invalid_edit(*a, cohort)),
                        ),
                        Effect::Refusal(line) => (
                            r.episode.refuse()?,
                            true,
                            ActionRecord::Unrecognized(line.clone()),
                        ),
                        Effect::NextPrompt => {
                            // The list is unchanged and nothing is charged:
                            // no step of the decision process, nothing recorded.
                            r.effects.push(Effect::NextPrompt);
                            r.steps.push(EpisodeStep {
                                list_before: before.clone(),
                                acted,
                                effect: Effect::NextPrompt,
                                refused: false,
                                reward: 0.0,
                            });
                            continue;
                        }
                    };
                    if let Some(recorder) = &mut r.recorder {
                        let parts = &acted.parts;
                        let decided = Decided {
                            probability: Some(f64::from(acted.logp().exp())),
                            text: family.decision_text(&acted.decision),
                            // A decision of one part has its probability.
                            part_probabilities: if parts.len() > 1 {
                                parts.iter().map(|p| f64::from(p.exp())).collect()
                            } else {
                                Vec::new()
                            },
                        };
                        recorder.record(record, decided, reward, &r.episode);
                    }
                    r.effects.push(effect.clone());
                    r.steps.push(EpisodeStep {
                        list_before: before.clone(),
                        acted,
                        effect,
                        refused,
                        reward: reward.total,
                    });
                }
            }
        }
        Ok(running
            .into_iter()
            .map(|r| EpisodeResult {
                visit: r.visit,
                start: r.episode.start().clone(),
                final_list: r.episode.list().clone(),
                outcome: r.episode.outcome_reward(),
                final_terms: r.episode.terms().to_vec(),
                trajectory: r.recorder.map(|rec| rec.finish(&r.episode)),
                steps: r.steps,
            })
            .collect())
    }
}

/// How an edit that is not valid for the list reads in a trajectory.
fn invalid_edit(action: Action, cohort: &Cohort) -> String {
    let code = |d: usize| cohort.drugs.code(d).to_string();
    match action {
        Action::Add(d) => format!("add {} (already in the list)", code(d)),
        Action::Remove(d) => format!("remove {} (not in the list)", code(d)),
        Action::Stop => "stop".into(),
    }
}
