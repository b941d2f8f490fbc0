//! The action-head list policy as a policy family (`set_encoder`): a
//! decision is one action slot (add drug `d` at `d`, remove it at
//! `drugs + d`, stop at `2·drugs`), invalid slots are masked, and the whole
//! action distribution is enumerable (exact KL and entropy).

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use rxalign_core::{Action, Cohort, Rng};
use serde::{Deserialize, Serialize};

use rxalign_policy::PolicyError;
use rxalign_policy::family::{
    ActMode, Acted, Effect, FamilyConfig, FamilyContext, PolicyFamily, Scored, State, act_on_slots,
};
use rxalign_policy::features::VisitFeatures;

use crate::classifier::DropoutMasks;
use crate::policy::{log_probs_at, rows};
use crate::{ActionPolicy, ListPolicy, ListPolicyConfig, StateBatch};

/// The `policy: (kind: "set_encoder", ...)` settings of an experiment file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SetEncoderConfig {
    /// Width of the visit and list encodings and of the hidden layer.
    pub hidden: usize,
    /// At most this many decisions per episode (edits and stop).
    pub budget: usize,
    /// Dropout on the visit's encoding and the hidden layer in SFT steps
    /// (masks drawn from the loop's seeded generator; none in GRPO, whose
    /// ratios must compare the same network, nor when acting).
    pub dropout: f64,
}

impl Default for SetEncoderConfig {
    fn default() -> Self {
        Self {
            hidden: 128,
            budget: 30,
            dropout: 0.0,
        }
    }
}

impl SetEncoderConfig {
    pub fn validate(&self) -> Result<(), PolicyError> {
        for (field, value) in [("hidden", self.hidden), ("budget", self.budget)] {
            if value == 0 {
                return Err(PolicyError::Config {
                    field,
                    message: "must be positive".into(),
                });
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(PolicyError::Config {
                field: "dropout",
                message: format!("must lie in [0, 1) (found {})", self.dropout),
            });
        }
        // Before the data is known: the hidden layer alone (`2·hidden ×
        // hidden`); [`Self::build`] checks the whole network.
        let h = self.hidden as u128;
        rxalign_policy::device::check_memory(
            "list policy",
            "hidden",
            self.hidden,
            rxalign_policy::device::training_bytes(2 * h * h + h, 0),
        )
    }

    /// Parameters of the list policy over `features` visit features and
    /// `drugs` drugs (see [`crate::ListPolicyConfig::init`]).
    pub(crate) fn parameters(&self, features: usize, drugs: usize) -> u128 {
        let (h, f, d) = (self.hidden as u128, features as u128, drugs as u128);
        let actions = 2 * d + 1;
        f * h + (d + 1) * h + 2 * h * h + h + h * actions + actions
    }

    /// The family for a run's features.
    pub fn build(&self, features: &VisitFeatures) -> Result<SetEncoder, PolicyError> {
        self.validate()?;
        rxalign_policy::device::check_memory(
            "list policy",
            "hidden",
            self.hidden,
            rxalign_policy::device::training_bytes(self.parameters(features.size(), features.drugs), 0),
        )?;
        Ok(SetEncoder {
            features: features.clone(),
            hidden: self.hidden,
            dropout: self.dropout,
        })
    }
}

/// The list policy family: a [`ListPolicy`] over a run's visit features.
#[derive(Clone, Debug)]
pub struct SetEncoder {
    pub features: VisitFeatures,
    pub hidden: usize,
    /// Dropout in SFT steps (see [`SetEncoderConfig::dropout`]).
    pub dropout: f64,
}

impl SetEncoder {
    fn batch<B: Backend>(&self, cohort: &Cohort, states: &[State<'_>], device: &B::Device) -> StateBatch<B> {
        let states: Vec<_> = states.iter().map(|s| (s.visit, s.list)).collect();
        StateBatch::new(&self.features, cohort, &states, device)
    }
}

impl PolicyFamily for SetEncoder {
    type Model<B: Backend> = ListPolicy<B>;
    type Trainable<B: AutodiffBackend> = ListPolicy<B>;
    type Decision = usize;

    fn as_model<B: AutodiffBackend>(model: &ListPolicy<B>) -> &ListPolicy<B> {
        model
    }

    fn into_trainable<B: AutodiffBackend>(model: ListPolicy<B>) -> ListPolicy<B> {
        model
    }

    fn kind(&self) -> &str {
        crate::KIND
    }

    fn init<B: Backend>(&self, rng: &mut Rng, device: &B::Device) -> Result<ListPolicy<B>, PolicyError> {
        Ok(ListPolicyConfig::for_features(&self.features, self.hidden).init(rng, device))
    }

    fn act<B: Backend>(
        &self,
        model: &ListPolicy<B>,
        cohort: &Cohort,
        states: &[State<'_>],
        mode: ActMode,
        rng: &mut Rng,
        device: &B::Device,
    ) -> Result<Vec<Acted<usize>>, PolicyError> {
        let batch = self.batch(cohort, states, device);
        let temperature = match mode {
            ActMode::Greedy => 1.0,
            ActMode::Sample { temperature } => temperature,
        };
        act_on_slots(rows(model.log_probs(batch, temperature))?, mode, rng)
    }

    fn score<B: Backend>(
        &self,
        model: &ListPolicy<B>,
        cohort: &Cohort,
        states: &[State<'_>],
        decisions: &[usize],
        temperature: f64,
        device: &B::Device,
    ) -> Result<Scored<B>, PolicyError> {
        let batch = self.batch(cohort, states, device);
        Ok(Scored::of_slots(
            model.log_probs(batch, temperature),
            decisions,
            device,
        ))
    }

    fn score_train<B: AutodiffBackend>(
        &self,
        model: &ListPolicy<B>,
        cohort: &Cohort,
        states: &[State<'_>],
        decisions: &[usize],
        temperature: f64,
        rng: &mut Rng,
        device: &B::Device,
    ) -> Result<Scored<B>, PolicyError> {
        if self.dropout == 0.0 {
            return self.score(model, cohort, states, decisions, temperature, device);
        }
        let batch = self.batch(cohort, states, device);
        let masks = DropoutMasks::draw(states.len(), self.hidden, self.dropout, rng, device);
        let logits = model.forward_with(batch, Some(masks)); // [n, actions]
        Ok(Scored::of_slots(
            log_probs_at(logits, temperature),
            decisions,
            device,
        ))
    }

    fn effect(&self, decision: &usize, cohort: &Cohort) -> Effect {
        Effect::Act(Action::from_index(*decision, cohort.drug_count()))
    }

    fn expert(&self, _: State<'_>, action: Action, cohort: &Cohort) -> usize {
        action.index(cohort.drug_count())
    }
}

impl FamilyConfig for SetEncoderConfig {
    type Family = SetEncoder;

    fn validate(&self) -> Result<(), PolicyError> {
        SetEncoderConfig::validate(self)
    }

    fn budget(&self) -> usize {
        self.budget
    }

    fn build(&self, ctx: &FamilyContext<'_>) -> Result<SetEncoder, PolicyError> {
        SetEncoderConfig::build(self, ctx.features)
    }
}
