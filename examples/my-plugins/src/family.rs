//! The policy family `diagnosis_linear`.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use rxalign_core::{Action, Cohort, Rng};
use rxalign_policy::PolicyError;
use rxalign_policy::family::act_on_slots;
use rxalign_policy::family::{ActMode, Acted, Effect, PolicyFamily, Scored, State};
use rxalign_policy::family::{FamilyConfig, FamilyContext};
use serde::Deserialize;

/// The family's `kind` in experiment files.
pub const KIND: &str = "diagnosis_linear";

/// A linear layer from the visit's diagnoses and the current list to one
/// logit per action slot (add `d`, remove `d`, stop), zero at the start.
#[derive(Module, Debug)]
pub struct Linear<B: Backend> {
    /// `[diagnoses + drugs, 2·drugs + 1]`
    weight: Param<Tensor<B, 2>>,
    /// `[2·drugs + 1]`
    bias: Param<Tensor<B, 1>>,
}

/// A softmax over the valid edits whose logits are linear in a multi-hot of
/// the visit's diagnosis codes and of the drugs in the list: logistic
/// regression over edits, the smallest policy that sees the visit.
#[derive(Debug)]
pub struct DiagnosisLinear {
    diagnoses: usize,
    drugs: usize,
}

impl DiagnosisLinear {
    /// Masked log-probabilities of every state's action slots.
    ///
    /// # Shapes
    /// - output: `[states, 2·drugs + 1]`
    fn log_probs<B: Backend>(
        &self,
        model: &Linear<B>,
        cohort: &Cohort,
        states: &[State<'_>],
        temperature: f64,
        device: &B::Device,
    ) -> Tensor<B, 2> {
        let (n, width, space) = (
            states.len(),
            self.diagnoses + self.drugs,
            Action::space(self.drugs),
        );
        let mut features = vec![0f32; n * width];
        let mut mask = vec![0f32; n * space];
        for (row, s) in states.iter().enumerate() {
            for &code in &cohort.visits[s.visit].diagnoses {
                features[row * width + code] = 1.0;
            }
            for d in s.list.iter() {
                features[row * width + self.diagnoses + d] = 1.0;
            }
            // Adding a drug in the list, or removing one not in it, is invalid.
            for d in 0..self.drugs {
                let invalid = if s.list.contains(d) { d } else { self.drugs + d };
                mask[row * space + invalid] = -1.0e9;
            }
        }
        let features = Tensor::<B, 2>::from_data(TensorData::new(features, [n, width]), device);
        let mask = Tensor::<B, 2>::from_data(TensorData::new(mask, [n, space]), device);
        let logits = features.matmul(model.weight.val()) + model.bias.val().unsqueeze_dim(0);
        log_softmax((logits + mask) / temperature, 1)
    }
}

impl PolicyFamily for DiagnosisLinear {
    type Model<B: Backend> = Linear<B>;
    type Trainable<B: AutodiffBackend> = Linear<B>;
    type Decision = usize;

    fn as_model<B: AutodiffBackend>(model: &Linear<B>) -> &Linear<B> {
        model
    }

    fn into_trainable<B: AutodiffBackend>(model: Linear<B>) -> Linear<B> {
        model
    }

    fn kind(&self) -> &str {
        KIND
    }

    fn init<B: Backend>(&self, _: &mut Rng, device: &B::Device) -> Result<Linear<B>, PolicyError> {
        let space = Action::space(self.drugs);
        Ok(Linear {
            weight: Param::from_tensor(Tensor::zeros([self.diagnoses + self.drugs, space], device)),
            bias: Param::from_tensor(Tensor::zeros([space], device)),
        })
    }

    fn act<B: Backend>(
        &self,
        model: &Linear<B>,
        cohort: &Cohort,
        states: &[State<'_>],
        mode: ActMode,
        rng: &mut Rng,
        device: &B::Device,
    ) -> Result<Vec<Acted<usize>>, PolicyError> {
        let temperature = match mode {
            ActMode::Greedy => 1.0,
            ActMode::Sample { temperature } => temperature,
        };
        let logp: Vec<f32> = self
            .log_probs(model, cohort, states, temperature, device)
            .into_data()
            .to_vec()
            .map_err(|e| PolicyError::Invalid(format!("{e:?}")))?;
        act_on_slots(logp.chunks(Action::space(self.drugs)), mode, rng)
    }

    fn score<B: Backend>(
        &self,
        model: &Linear<B>,
        cohort: &Cohort,
        states: &[State<'_>],
        decisions: &[usize],
        temperature: f64,
        device: &B::Device,
    ) -> Result<Scored<B>, PolicyError> {
        let logp = self.log_probs(model, cohort, states, temperature, device);
        Ok(Scored::of_slots(logp, decisions, device))
    }

    fn effect(&self, decision: &usize, _: &Cohort) -> Effect {
        Effect::Act(Action::from_index(*decision, self.drugs))
    }

    fn expert(&self, _: State<'_>, action: Action, _: &Cohort) -> usize {
        action.index(self.drugs)
    }
}

/// A linear softmax over the edits, from the visit's diagnoses and the
/// current list.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiagnosisLinearConfig {
    /// At most this many decisions (edits and stop) per episode.
    #[serde(default = "default_budget")]
    pub budget: usize,
}

fn default_budget() -> usize {
    16
}

impl FamilyConfig for DiagnosisLinearConfig {
    type Family = DiagnosisLinear;

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

    fn build(&self, ctx: &FamilyContext<'_>) -> Result<DiagnosisLinear, PolicyError> {
        Ok(DiagnosisLinear {
            diagnoses: ctx.cohort.diagnoses.len(),
            drugs: ctx.cohort.drug_count(),
        })
    }
}
