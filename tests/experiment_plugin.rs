//! The worked example of a researcher's own plugin: a reward term defined in
//! another crate (this test is one), registered on the built-in plugins and
//! named from a RON file, with nothing of rxalign edited.

use rxalign_env::RewardTerm;
use rxalign_env::reward::ListContext;
use rxalign_experiment::runner::run_one;
use rxalign_experiment::{Plugins, load};
use serde::Deserialize;

/// Penalises lists longer than a cap: `−max(|S| − cap, 0)`.
#[derive(Debug)]
struct ListCapReward {
    cap: usize,
}

impl RewardTerm for ListCapReward {
    fn name(&self) -> &str {
        "list_cap"
    }
    fn definition(&self) -> &str {
        "−max(|S| − cap, 0)"
    }
    fn potential(&self, ctx: &ListContext<'_>) -> f64 {
        0.0 - ctx.list.len().saturating_sub(self.cap) as f64
    }
}

/// Its parameters: a reward term's always include its `weight`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListCapConfig {
    #[expect(dead_code, reason = "the weight is read by the reward, not the term")]
    weight: f64,
    #[serde(default = "default_cap")]
    cap: usize,
}

fn default_cap() -> usize {
    8
}

#[test]
fn a_custom_reward_term_runs_from_a_ron_file() {
    let mut plugins = Plugins::builtin();
    plugins
        .reward
        .register::<ListCapConfig>("list_cap", |c, _| {
            Ok(Box::new(ListCapReward { cap: c.cap }) as Box<dyn RewardTerm>)
        })
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("custom.ron");
    std::fs::write(
        &path,
        r#"(
    schema_version: 1,
    name: "custom",
    data: (kind: "synthetic", patients: 60),
    reward: [(kind: "jaccard", weight: 1.0), (kind: "list_cap", weight: 0.1, cap: 4)],
    stages: [(kind: "baselines", methods: ["everything_indicated"])],
)"#,
    )
    .unwrap();
    let (_, plans) = load(&path, &plugins).unwrap();
    run_one(&plans[0], &plugins, &tmp.path().join("run")).unwrap();
    let metrics = std::fs::read_to_string(tmp.path().join("run/metrics.jsonl")).unwrap();
    assert!(
        metrics.contains("\"reward/list_cap\":-"),
        "the custom term is scored: {metrics}"
    );
    // Its parameters are checked like the built-ins'.
    std::fs::write(
        &path,
        std::fs::read_to_string(&path)
            .unwrap()
            .replace("cap: 4", "cpa: 4"),
    )
    .unwrap();
    let e = load(&path, &plugins).unwrap_err().to_string();
    assert!(
        e.contains("custom.ron:5:") && e.contains("unknown field `cpa` of reward term `list_cap`"),
        "{e}"
    );
    // Without the registration the kind is unknown.
    let e = load(&path, &Plugins::builtin()).unwrap_err().to_string();
    assert!(e.contains("unknown reward term kind `list_cap`"), "{e}");
}

/// A model of a researcher's own that one stage trains and a later stage
/// reads (a stand-in for a reward model or a DPO reference): the most
/// drugs a list may hold, fitted on the training visits.
#[derive(Debug)]
struct CapModel(usize);

impl rxalign_experiment::stage::Artifact for CapModel {
    const KIND: &'static str = "cap model";
    const GIVEN_BY: &'static str = "a `fit_cap` stage";
}

/// `fit_cap`: the median ground-truth list size of the training visits,
/// given to later stages as a [`CapModel`] named `name`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct FitCapConfig {
    name: String,
}

#[derive(Debug)]
struct FitCap(FitCapConfig);

impl rxalign_experiment::stage::Stage for FitCap {
    fn kind(&self) -> &str {
        "fit_cap"
    }
    fn method(&self) -> &str {
        &self.0.name
    }
    fn contract(&self) -> rxalign_experiment::stage::Contract {
        rxalign_experiment::stage::Contract {
            records: Some(Vec::new()),
            gives: vec![rxalign_experiment::stage::ArtifactId::of::<CapModel>(
                &self.0.name,
            )],
            ..Default::default()
        }
    }
    fn run(
        &self,
        ctx: &mut rxalign_experiment::stage::RunContext<'_>,
    ) -> Result<(), rxalign_experiment::ExperimentError> {
        let cohort = ctx.cohort();
        let mut sizes: Vec<usize> = ctx
            .split
            .train
            .iter()
            .map(|&v| cohort.visits[v].drugs.len())
            .collect();
        sizes.sort_unstable();
        let cap = sizes.get(sizes.len() / 2).copied().unwrap_or(1).max(1);
        ctx.artifacts.give(&self.0.name, CapModel(cap));
        Ok(())
    }
}

/// `capped`: every visit's ground truth cut to the cap of the model `from`
/// (its lowest drug indices), recorded as method `capped`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct CappedConfig {
    from: String,
}

#[derive(Debug)]
struct Capped(CappedConfig);

impl rxalign_experiment::stage::Stage for Capped {
    fn kind(&self) -> &str {
        "capped"
    }
    fn contract(&self) -> rxalign_experiment::stage::Contract {
        rxalign_experiment::stage::Contract {
            needs: vec![rxalign_experiment::stage::Need::named::<CapModel>(&self.0.from)],
            records: Some(vec!["capped".into()]),
            ..Default::default()
        }
    }
    fn run(
        &self,
        ctx: &mut rxalign_experiment::stage::RunContext<'_>,
    ) -> Result<(), rxalign_experiment::ExperimentError> {
        let cap = ctx.artifacts.get::<CapModel>(&self.0.from)?.0;
        let cohort = ctx.cohort();
        let predictions: rxalign_core::Predictions = cohort
            .visits
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let kept = v.drugs.iter().take(cap);
                (i, rxalign_core::DrugSet::from_indices(cohort.drugs.len(), kept))
            })
            .collect();
        ctx.record_method("capped", 0, &predictions)?;
        Ok(())
    }
}

/// Issue #23: a stage that hands on a model of a new kind needs no new
/// field of the run's context: `fit_cap` gives a `CapModel` by name, and
/// `capped` reads it. The plan checks that its producer comes first
/// (with the line and the closest name), and the run hands it on.
#[test]
fn a_stage_of_ones_own_hands_a_new_kind_of_artifact_to_a_later_stage() {
    use rxalign_experiment::stage::Stage;
    let mut plugins = Plugins::builtin();
    plugins
        .stage
        .register::<FitCapConfig>("fit_cap", |c, _| Ok(Box::new(FitCap(c)) as Box<dyn Stage>))
        .unwrap();
    plugins
        .stage
        .register::<CappedConfig>("capped", |c, _| Ok(Box::new(Capped(c)) as Box<dyn Stage>))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("cap.ron");
    let file = |stages: &str| {
        format!(
            "(\n    schema_version: 1,\n    name: \"cap\",\n    data: (kind: \"synthetic\", patients: 60),\n    reward: [(kind: \"jaccard\", weight: 1.0)],\n    stages: [\n{stages}\n    ],\n)"
        )
    };
    // The reader before its producer, and a misspelt name.
    std::fs::write(
        &path,
        file("        (kind: \"capped\", from: \"median\"),\n        (kind: \"fit_cap\", name: \"median\"),\n        (kind: \"capped\", from: \"medain\"),"),
    )
    .unwrap();
    let e = load(&path, &plugins).unwrap_err().to_string();
    assert!(
        e.contains("cap.ron:7:")
            && e.contains(
                "reads cap model `median`, which no earlier stage gives (stages[1] gives it, after this stage"
            ),
        "{e}"
    );
    assert!(
        e.contains("cap.ron:9:") && e.contains("did you mean `median`?"),
        "{e}"
    );
    // In order, the model is handed on.
    std::fs::write(
        &path,
        file("        (kind: \"fit_cap\", name: \"median\"),\n        (kind: \"capped\", from: \"median\"),"),
    )
    .unwrap();
    let (_, plans) = load(&path, &plugins).unwrap();
    run_one(&plans[0], &plugins, &tmp.path().join("run")).unwrap();
    let lists = std::fs::read_to_string(tmp.path().join("run/predictions/capped.jsonl")).unwrap();
    let sizes: Vec<usize> = lists
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["drugs"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    let cap = *sizes.iter().max().unwrap();
    assert!(cap >= 1 && sizes.len() > 1, "{lists}");
}
