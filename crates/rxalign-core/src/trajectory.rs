//! A recorded episode of the decision process, as the run folder stores it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Action, DrugSet, Vocab};

/// One decision as recorded: drugs by code, so that a trajectory reads on its
/// own (the dashboard reads run folders without the dataset).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionRecord {
    Add(String),
    Remove(String),
    Stop,
    /// An output line of a generative policy that names no known drug.
    Unrecognized(String),
}

impl ActionRecord {
    pub fn from_action(action: Action, drugs: &Vocab) -> Self {
        match action {
            Action::Add(d) => Self::Add(drugs.code(d).to_string()),
            Action::Remove(d) => Self::Remove(drugs.code(d).to_string()),
            Action::Stop => Self::Stop,
        }
    }
}

/// One step: the action, its probability under the policy (when a policy
/// chose it), the step reward `Phi(S_{t+1}) - Phi(S_t)`, that reward broken
/// into its weighted terms, and the list after the step. A generative
/// policy's step also keeps what it wrote (a language model's line) and
/// the probability of each of its parts (tokens), whose product is
/// `probability`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub action: ActionRecord,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub part_probabilities: Vec<f64>,
    pub reward: f64,
    pub terms: BTreeMap<String, f64>,
    pub list: Vec<String>,
}

/// Where a trajectory's steps come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrajectorySource {
    /// The policy's own decoding, each step with its probability.
    #[default]
    Decoded,
    /// The canonical edits (removals, then additions, by drug index) from
    /// the start list to a method's final list: how a list that was not
    /// built step by step (a baseline's) is reached, with each step's reward.
    Replayed,
}

/// An episode: the start list, each step, the final list and the ground truth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trajectory {
    pub visit_id: String,
    pub patient_id: String,
    /// What produced it (`sft`, `step_grpo`, a baseline's name, ...).
    pub method: String,
    pub split: String,
    pub ground_truth: Vec<String>,
    pub start: Vec<String>,
    pub steps: Vec<StepRecord>,
    pub final_list: Vec<String>,
    /// `Phi(S_T) - Phi(S_0)`: the sum of the step rewards.
    pub outcome_reward: f64,
    /// The potential of the start list, `Phi(S_0)`.
    pub start_potential: f64,
    /// Each weighted term of the start list's potential (they sum to
    /// `start_potential`).
    #[serde(default)]
    pub start_terms: BTreeMap<String, f64>,
    /// Whether the steps are the policy's own decoding or a replay of the
    /// canonical edits to another method's list.
    #[serde(default)]
    pub source: TrajectorySource,
    /// Whether the step budget ended the episode before `Stop`.
    pub truncated: bool,
}

/// The codes of a drug set, in index order.
pub fn codes_of(set: &DrugSet, drugs: &Vocab) -> Vec<String> {
    set.iter().map(|d| drugs.code(d).to_string()).collect()
}
