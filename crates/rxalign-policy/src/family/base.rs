//! The policy-family trait: what a kind of policy (the action-head list
//! policy, a language model, a researcher's own) tells the trainer, so that
//! one episode runner, one SFT loop and one GRPO loop serve every family.
//!
//! A family observes a state (a visit and its current list), acts on a batch
//! of states (greedily or by sampling at a temperature, with each decision's
//! log-probability), says what a decision does to the episode (an edit,
//! stop, or a refusal for output that names no valid edit), gives the expert
//! decision for an expert action (SFT), and scores given decisions
//! differentiably. A decision may be one action slot or several parts (the
//! tokens of a generated line): scores come per part, and the family says
//! whether the trainer sums or averages a decision's parts.

use std::any::Any;
use std::fmt;

use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use rxalign_core::{Action, Cohort, DrugSet, Rng};
use rxalign_env::trajectory::expert_actions;

use crate::PolicyError;
use crate::checkpoint::Keep;

/// Log-probabilities below this are treated as 0 probability in entropy
/// and KL terms (masked actions), so that `0 · (−∞)` never appears.
pub const LOG_FLOOR: f32 = -60.0;

/// What a family sees of one state: a visit of the cohort, its current
/// list, the list the episode started from, and what the episode's earlier
/// decisions did (a generative family renders its answer so far, and knows
/// which of its prompts it is answering, from these).
#[derive(Clone, Copy, Debug)]
pub struct State<'a> {
    /// The visit's index in the cohort.
    pub visit: usize,
    /// The current list `S_t`.
    pub list: &'a DrugSet,
    /// The episode's start list.
    pub start: &'a DrugSet,
    /// The effects of the episode's earlier decisions, in order.
    pub earlier: &'a [Effect],
}

impl<'a> State<'a> {
    /// The first state of an episode: nothing done yet, `list` is the start.
    pub fn first(visit: usize, list: &'a DrugSet) -> Self {
        State {
            visit,
            list,
            start: list,
            earlier: &[],
        }
    }
}

/// What a family keeps between the act calls of one episode run (see
/// [`PolicyFamily::act_with_memo`]): one value of the family's own type,
/// empty at the run's start and dropped at its end.
#[derive(Default)]
pub struct ActMemo {
    slot: Option<Box<dyn Any>>,
}

impl ActMemo {
    /// The value kept, if it is a `T` (taken out: put it back with [`ActMemo::put`]).
    pub fn take<T: 'static>(&mut self) -> Option<T> {
        self.slot.take()?.downcast().ok().map(|b| *b)
    }

    /// Keeps `value` until the next call.
    pub fn put<T: 'static>(&mut self, value: T) {
        self.slot = Some(Box::new(value));
    }
}

impl fmt::Debug for ActMemo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActMemo")
            .field("holds", &self.slot.is_some())
            .finish()
    }
}

/// How a family acts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ActMode {
    /// The most probable decision.
    Greedy,
    /// A decision drawn at this temperature.
    Sample { temperature: f64 },
}

/// A decision taken, with the log-probability of each of its parts under
/// the distribution it was taken from.
#[derive(Clone, Debug, PartialEq)]
pub struct Acted<D> {
    /// What the family decided (an action slot, a generated line, ...).
    pub decision: D,
    /// `log π(part | state, earlier parts)` of every part, in order.
    pub parts: Vec<f32>,
}

impl<D> Acted<D> {
    /// `log π(decision | state)`: the sum over the parts.
    pub fn logp(&self) -> f32 {
        self.parts.iter().sum()
    }
}

/// What a decision does to its episode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// An edit or stop. An edit that is not valid for the current list (a
    /// drug already there, say) is charged as a refusal.
    Act(Action),
    /// Output that names no valid edit, kept as written.
    Refusal(String),
    /// The end of one answer that does not end the episode: the list is
    /// unchanged and the episode goes on with the family's next prompt
    /// (FLAME's "which drugs to remove" after its "which drugs to add").
    /// Neither an edit nor a refusal; its shaped reward is 0.
    NextPrompt,
}

/// How the trainer reduces a decision's per-part terms (log-probabilities,
/// policy-gradient terms, KL) to one per decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartReduction {
    Sum,
    Mean,
}

/// Given decisions scored differentiably.
///
/// # Shapes
/// - `logp`: `[batch, parts]`, `log π(part | state, earlier parts)`
/// - `mask`: `[batch, parts]`, 1 for a real part and 0 for padding
/// - `distribution`: `[batch, parts, choices]`, the log-probability of every
///   choice at every part, where the family can enumerate its choices
///   (exact KL and entropy); `None` otherwise
#[derive(Clone, Debug)]
pub struct Scored<B: Backend> {
    pub logp: Tensor<B, 2>,
    pub mask: Tensor<B, 2>,
    pub distribution: Option<Tensor<B, 3>>,
}

impl<B: Backend> Scored<B> {
    /// The scores of decisions that are one action slot each, out of every
    /// slot's log-probabilities: what [`PolicyFamily::score`] returns for a
    /// family over [`Action`] slots (the list policy, a researcher's own).
    ///
    /// # Shapes
    /// - `logp`: `[n, slots]`
    /// - output: `logp` `[n, 1]`, `mask` `[n, 1]`, `distribution` `[n, 1, slots]`
    pub fn of_slots(logp: Tensor<B, 2>, decisions: &[usize], device: &B::Device) -> Self {
        let [n, slots] = logp.dims();
        let chosen: Vec<i64> = decisions.iter().map(|&d| d as i64).collect();
        let chosen = Tensor::<B, 2, Int>::from_data(TensorData::new(chosen, [n, 1]), device);
        Self {
            logp: logp.clone().gather(1, chosen), // [n, 1]
            mask: Tensor::ones([n, 1], device),
            distribution: Some(logp.reshape([n, 1, slots])),
        }
    }
}

/// A kind of policy, as the trainer uses it. `Model<B>` is the family's burn
/// module on backend `B`; the trainer trains it on an autodiff backend as
/// `Trainable<B>` and acts with its inner (`valid()`) module.
pub trait PolicyFamily: fmt::Debug + Send + Sync {
    type Model<B: Backend>: Module<B> + fmt::Debug;
    /// The model as it trains: for every family the same type as
    /// `Model<B>` (the two conversions below are the identity), spelt apart
    /// so that the trainer can name its autodiff bound.
    type Trainable<B: AutodiffBackend>: AutodiffModule<B, InnerModule = Self::Model<B::InnerBackend>>
        + fmt::Debug;
    type Decision: Clone + fmt::Debug + Send + Sync;

    /// The trainable model as a model (the identity).
    fn as_model<B: AutodiffBackend>(model: &Self::Trainable<B>) -> &Self::Model<B>;

    /// A model as a trainable one (the identity).
    fn into_trainable<B: AutodiffBackend>(model: Self::Model<B>) -> Self::Trainable<B>;

    /// The family's `kind`, as experiment files name it.
    fn kind(&self) -> &str;

    /// A model with parameters drawn from `rng` (never from the backend's
    /// process-wide generator), or read from where the family's settings
    /// say (a pretrained model's folder); reading can fail.
    fn init<B: Backend>(&self, rng: &mut Rng, device: &B::Device) -> Result<Self::Model<B>, PolicyError>;

    /// One decision per state, with its log-probability; sampling draws
    /// from `rng` only.
    fn act<B: Backend>(
        &self,
        model: &Self::Model<B>,
        cohort: &Cohort,
        states: &[State<'_>],
        mode: ActMode,
        rng: &mut Rng,
        device: &B::Device,
    ) -> Result<Vec<Acted<Self::Decision>>, PolicyError>;

    /// [`Self::act`] with `memo`, which the episode runner keeps for the
    /// family across the calls of one run (each call's states continue
    /// the earlier calls' episodes). A language model keeps there what it
    /// computed of its contexts (their keys and values), so that a line
    /// reads only its new tokens. The decisions and their
    /// log-probabilities must be those `act` gives; by default the memo is
    /// unused.
    #[expect(clippy::too_many_arguments, reason = "act's inputs and the memo")]
    fn act_with_memo<B: Backend>(
        &self,
        model: &Self::Model<B>,
        cohort: &Cohort,
        states: &[State<'_>],
        mode: ActMode,
        rng: &mut Rng,
        device: &B::Device,
        memo: &mut ActMemo,
    ) -> Result<Vec<Acted<Self::Decision>>, PolicyError> {
        let _ = memo;
        self.act(model, cohort, states, mode, rng, device)
    }

    /// Scores given decisions at `temperature` (see [`Scored`]).
    fn score<B: Backend>(
        &self,
        model: &Self::Model<B>,
        cohort: &Cohort,
        states: &[State<'_>],
        decisions: &[Self::Decision],
        temperature: f64,
        device: &B::Device,
    ) -> Result<Scored<B>, PolicyError>;

    /// [`Self::score`] in a supervised training step: a family with
    /// dropout draws its masks from `rng` (and nothing when its dropout is
    /// 0); by default the same as `score`. GRPO scores without dropout, so
    /// that its ratios compare the same network.
    #[expect(clippy::too_many_arguments, reason = "score's inputs and the generator")]
    fn score_train<B: AutodiffBackend>(
        &self,
        model: &Self::Trainable<B>,
        cohort: &Cohort,
        states: &[State<'_>],
        decisions: &[Self::Decision],
        temperature: f64,
        rng: &mut Rng,
        device: &B::Device,
    ) -> Result<Scored<B>, PolicyError> {
        let _ = rng;
        self.score(
            Self::as_model(model),
            cohort,
            states,
            decisions,
            temperature,
            device,
        )
    }

    /// What `decision` does to its episode.
    fn effect(&self, decision: &Self::Decision, cohort: &Cohort) -> Effect;

    /// The decision that takes the expert `action` at `state` (SFT's target).
    fn expert(&self, state: State<'_>, action: Action, cohort: &Cohort) -> Self::Decision;

    /// The expert's actions from `start` to the ground truth `truth`, in
    /// order, each made a decision by [`PolicyFamily::expert`] at its state
    /// (SFT's targets). By default the canonical sequence of
    /// [`expert_actions`]: removes, then adds, in increasing drug index,
    /// then stop. A family whose answers end in [`Effect::NextPrompt`]
    /// writes `Stop` where an answer ends.
    fn expert_plan(&self, start: &DrugSet, truth: &DrugSet) -> Vec<Action> {
        expert_actions(start, truth)
    }

    /// The frozen reference's scores for the KL term of GRPO: by default
    /// [`PolicyFamily::score`] on `reference`, the model GRPO started from
    /// (the SFT policy, as FLAME's reference is). A LoRA family keeps the
    /// default: its start's adapter, trained by SFT, is part of the
    /// reference, and the base with the adapters off is the model before
    /// SFT.
    fn score_reference<B: Backend>(
        &self,
        reference: &Self::Model<B>,
        cohort: &Cohort,
        states: &[State<'_>],
        decisions: &[Self::Decision],
        temperature: f64,
        device: &B::Device,
    ) -> Result<Scored<B>, PolicyError> {
        self.score(reference, cohort, states, decisions, temperature, device)
    }

    /// Which parameters the training loops' checkpoints keep: by default
    /// all of them. A family whose frozen parameters [`Self::init`] rebuilds
    /// exactly (a pretrained base read from its folder, under trained
    /// adapters) may keep only the trainable ones.
    fn checkpoint_keeps(&self) -> Keep {
        Keep::All
    }

    /// Whether the family's output can be a refusal (a generative family's
    /// lines); a run then records its refusal rate. False by default.
    fn refuses(&self) -> bool {
        false
    }

    /// Whether the decisions of one episode are cheaper to score in one
    /// call (a language model reads the lines of one answer from one
    /// forward pass: each line's context begins with the earlier lines').
    /// SFT then shuffles whole expert episodes rather than single decisions
    /// and fills each batch with whole episodes. False by default.
    fn scores_episodes_together(&self) -> bool {
        false
    }

    /// At most this many states per act call, whatever the runner's batch
    /// (a language model's batch holds every row's keys and values); no
    /// bound by default.
    fn max_act_batch(&self) -> Option<usize> {
        None
    }

    /// What a decision says as its policy wrote it (a language model's
    /// line), kept in trajectories beside the action it became; `None` by
    /// default (a decision that is its action).
    fn decision_text(&self, decision: &Self::Decision) -> Option<String> {
        let _ = decision;
        None
    }

    /// How a decision's parts are reduced; averaging by default.
    fn reduction(&self) -> PartReduction {
        PartReduction::Mean
    }
}
