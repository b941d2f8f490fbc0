//! The worked example of a researcher's own policy family: a tabular policy
//! (one learned logit per action, whatever the visit), written in a crate of
//! its own against the floor alone (`rxalign-policy`, `rxalign-core`,
//! burn). It compiles no language model and no tokenizer (`.ci/run` checks
//! its `cargo tree`); registered under its `kind`
//! (`plugins.policy.register_family::<TabularConfig>(KIND)`), rxalign's own
//! SFT and step-wise GRPO loops train it from a RON file, with nothing of
//! rxalign edited (`tests/policy_family_plugin.rs` of `rxalign-cli`).

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use rxalign_core::{Action, Cohort, Rng};
use rxalign_policy::PolicyError;
use rxalign_policy::family::{
    ActMode, Acted, Effect, FamilyConfig, FamilyContext, PolicyFamily, Scored, State, act_on_slots,
};
use serde::Deserialize;

/// The family's `kind` in experiment files.
pub const KIND: &str = "tabular";

/// One logit per action slot (add `d`, remove `d`, stop), masked by what is
/// valid for the list.
#[derive(Module, Debug)]
pub struct Table<B: Backend> {
    logits: Param<Tensor<B, 1>>,
}

#[derive(Debug)]
pub struct Tabular {
    drugs: usize,
}

impl Tabular {
    /// Masked log-probabilities of every state's actions.
    ///
    /// # Shapes
    /// - output: `[states, 2·drugs + 1]`
    fn log_probs<B: Backend>(
        &self,
        table: &Table<B>,
        states: &[State<'_>],
        temperature: f64,
        device: &B::Device,
    ) -> Tensor<B, 2> {
        let space = Action::space(self.drugs);
        let mut mask = vec![0f32; states.len() * space];
        for (row, s) in states.iter().enumerate() {
            for d in 0..self.drugs {
                let invalid = if s.list.contains(d) { d } else { self.drugs + d };
                mask[row * space + invalid] = -1.0e9;
            }
        }
        let mask = Tensor::<B, 2>::from_data(TensorData::new(mask, [states.len(), space]), device);
        let logits = table.logits.val().reshape([1, space]).repeat_dim(0, states.len());
        log_softmax((logits + mask) / temperature, 1)
    }
}

impl PolicyFamily for Tabular {
    type Model<B: Backend> = Table<B>;
    type Trainable<B: AutodiffBackend> = Table<B>;
    type Decision = usize;

    fn as_model<B: AutodiffBackend>(model: &Table<B>) -> &Table<B> {
        model
    }

    fn into_trainable<B: AutodiffBackend>(model: Table<B>) -> Table<B> {
        model
    }

    fn kind(&self) -> &str {
        KIND
    }

    fn init<B: Backend>(&self, _: &mut Rng, device: &B::Device) -> Result<Table<B>, PolicyError> {
        Ok(Table {
            logits: Param::from_tensor(Tensor::zeros([Action::space(self.drugs)], device)),
        })
    }

    fn act<B: Backend>(
        &self,
        model: &Table<B>,
        _: &Cohort,
        states: &[State<'_>],
        mode: ActMode,
        rng: &mut Rng,
        device: &B::Device,
    ) -> Result<Vec<Acted<usize>>, PolicyError> {
        let temperature = match mode {
            ActMode::Greedy => 1.0,
            ActMode::Sample { temperature } => temperature,
        };
        let space = Action::space(self.drugs);
        let logp: Vec<f32> = self
            .log_probs(model, states, temperature, device)
            .into_data()
            .to_vec()
            .map_err(|e| PolicyError::Invalid(format!("{e:?}")))?;
        act_on_slots(logp.chunks(space), mode, rng)
    }

    fn score<B: Backend>(
        &self,
        model: &Table<B>,
        _: &Cohort,
        states: &[State<'_>],
        decisions: &[usize],
        temperature: f64,
        device: &B::Device,
    ) -> Result<Scored<B>, PolicyError> {
        let logp = self.log_probs(model, states, temperature, device);
        Ok(Scored::of_slots(logp, decisions, device))
    }

    fn effect(&self, decision: &usize, _: &Cohort) -> Effect {
        Effect::Act(Action::from_index(*decision, self.drugs))
    }

    fn expert(&self, _: State<'_>, action: Action, _: &Cohort) -> usize {
        action.index(self.drugs)
    }
}

/// `policy: (kind: "tabular", budget: 12)`.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TabularConfig {
    /// At most this many decisions (edits and stop) per episode.
    pub budget: usize,
}

impl FamilyConfig for TabularConfig {
    type Family = Tabular;

    fn validate(&self) -> Result<(), PolicyError> {
        if self.budget == 0 {
            return Err(PolicyError::Config {
                field: "budget",
                message: "must be positive".into(),
            });
        }
        Ok(())
    }

    fn budget(&self) -> usize {
        self.budget
    }

    fn build(&self, ctx: &FamilyContext<'_>) -> Result<Tabular, PolicyError> {
        Ok(Tabular {
            drugs: ctx.cohort.drug_count(),
        })
    }
}
