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
