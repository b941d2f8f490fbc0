//! The worked example of a researcher's own policy family: a tabular policy
//! (one learned logit per action, whatever the visit), written in another
//! crate (this test is one), registered under its own `kind` and trained by
//! rxalign's own SFT and step-wise GRPO loops from a RON file, with nothing
//! of rxalign edited.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use rxalign_core::{Action, Cohort, Rng};
use rxalign_experiment::runner::run_one;
use rxalign_experiment::{Plugins, load};
use rxalign_policy::PolicyError;
use rxalign_policy::family::{ActMode, Acted, Effect, PolicyFamily, Scored, State};
use rxalign_policy::list::act_on_slots;
use rxalign_train::plugin::{FamilyConfig, FamilyContext};
use serde::Deserialize;

/// One logit per action slot (add `d`, remove `d`, stop), masked by what is
/// valid for the list.
#[derive(Module, Debug)]
struct Table<B: Backend> {
    logits: Param<Tensor<B, 1>>,
}

#[derive(Debug)]
struct Tabular {
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
        "tabular"
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
struct TabularConfig {
    budget: usize,
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

#[test]
fn a_policy_family_of_ones_own_trains_through_the_shared_loops() {
    let mut plugins = Plugins::builtin();
    plugins
        .policy
        .register_family::<TabularConfig>("tabular")
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("tabular.ron");
    std::fs::write(
        &path,
        r#"(
    schema_version: 1,
    name: "tabular",
    data: (kind: "synthetic", patients: 90),
    policy: (kind: "tabular", budget: 12),
    reward: [(kind: "jaccard", weight: 1.0)],
    stages: [
        (kind: "sft", epochs: 3, lr: 0.05),
        (kind: "step_grpo", iterations: 4, visits: 4, group: 4, eval_every: 2),
    ],
    eval: (trajectories: 1),
)"#,
    )
    .unwrap();
    let (_, plans) = load(&path, &plugins).unwrap();
    run_one(&plans[0], &plugins, &tmp.path().join("run")).unwrap();
    let metrics = std::fs::read_to_string(tmp.path().join("run/metrics.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = metrics
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |method: &str, split: &str, metric: &str| -> Vec<f64> {
        rows.iter()
            .filter(|r| r["method"] == method && r["split"] == split)
            .filter_map(|r| r["metrics"][metric].as_f64())
            .collect()
    };
    // SFT's loss falls epoch by epoch; GRPO logs its exact and k3 KL; both
    // are evaluated on validation patients during training and on test
    // patients at the end.
    let loss = of("sft", "train", "loss/sft");
    assert_eq!(loss.len(), 3, "{metrics}");
    assert!(loss[2] < loss[0], "SFT loss {loss:?}");
    assert_eq!(of("step_grpo", "train", "kl/exact").len(), 4);
    assert_eq!(of("step_grpo", "train", "kl/k3").len(), 4);
    assert_eq!(
        of("step_grpo", "val", "jaccard").len(),
        2 + 1,
        "iterations 2 and 4, and the final decoding"
    );
    assert!(!of("step_grpo", "test", "jaccard").is_empty());
    let trajectories = std::fs::read_to_string(tmp.path().join("run/trajectories.jsonl")).unwrap();
    assert!(
        trajectories.contains("\"method\":\"step_grpo\""),
        "{trajectories}"
    );
    // Its settings are checked with the file, at their line.
    std::fs::write(
        &path,
        std::fs::read_to_string(&path)
            .unwrap()
            .replace("budget: 12", "budget: 0"),
    )
    .unwrap();
    let e = load(&path, &plugins).unwrap_err().to_string();
    assert!(e.contains("tabular.ron:5:") && e.contains("budget"), "{e}");
    // Without the registration the kind is unknown.
    let e = load(&path, &Plugins::builtin()).unwrap_err().to_string();
    assert!(e.contains("unknown policy kind `tabular`"), "{e}");
}
