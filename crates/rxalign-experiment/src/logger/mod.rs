//! Loggers: where a run's scalars, histograms, texts and settings go
//! besides its `metrics.jsonl` (which every run writes). An experiment file
//! names them in `loggers: [(kind: "tensorboard")]`.
//!
//! Tags are `<method>/<split>/<name>`: `classifier/val/jaccard`,
//! `sft/train/loss/sft`, `step_grpo/train/kl`, `grpo/test/list_size` (a
//! histogram), `step_grpo/test/trajectories` (a text).

mod tensorboard;

use std::collections::BTreeMap;
use std::fmt;

use rxalign_core::run::MetricsRecord;

pub use tensorboard::{TensorboardConfig, TensorboardSink};

use crate::ExperimentError;

/// A run setting as the HParams view shows it.
#[derive(Clone, Debug, PartialEq)]
pub enum HParam {
    Number(f64),
    Text(String),
    Bool(bool),
}

/// A logger plugin, opened once per run.
pub trait RunLogger: Send + fmt::Debug {
    /// Each record's metrics as scalars tagged `<method>/<split>/<metric>`
    /// at the record's step (undefined values are left out).
    fn metrics(&mut self, records: &[MetricsRecord]) -> Result<(), ExperimentError>;

    /// A histogram of `values` under `tag` at `step`.
    fn histogram(&mut self, tag: &str, step: u64, values: &[f64]) -> Result<(), ExperimentError>;

    /// A Markdown text under `tag` at `step`.
    fn text(&mut self, tag: &str, step: u64, markdown: &str) -> Result<(), ExperimentError>;

    /// The run's settings and the tags of its final metrics, once, when the
    /// run has finished: what an ablation's runs are compared by.
    fn hparams(
        &mut self,
        hparams: &BTreeMap<String, HParam>,
        metric_tags: &[String],
    ) -> Result<(), ExperimentError>;

    /// Writes out everything logged so far.
    fn flush(&mut self) -> Result<(), ExperimentError>;
}

/// The scalar tag of a metric.
pub fn metric_tag(method: &str, split: &str, metric: &str) -> String {
    format!("{method}/{split}/{metric}")
}

/// Flattens a settings tree into `path = scalar` pairs (`stages[4].lr`,
/// `reward[1].weight`, `data.patients`), the form the HParams view shows.
pub fn flatten_settings(value: &serde_json::Value) -> BTreeMap<String, HParam> {
    fn walk(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, HParam>) {
        use serde_json::Value;
        match value {
            Value::Null => {}
            Value::Bool(b) => {
                out.insert(prefix.to_string(), HParam::Bool(*b));
            }
            Value::Number(n) => {
                if let Some(x) = n.as_f64() {
                    out.insert(prefix.to_string(), HParam::Number(x));
                }
            }
            Value::String(s) => {
                out.insert(prefix.to_string(), HParam::Text(s.clone()));
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), item, out);
                }
            }
            Value::Object(fields) => {
                for (k, v) in fields {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&path, v, out);
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", value, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_flatten_to_paths() {
        let v = serde_json::json!({
            "seed": 3,
            "reward": [{"kind": "jaccard", "weight": 1.0}],
            "notes": {"tokenizer": "trained"},
            "policy": null,
            "split": {"shuffle": true},
        });
        let flat = flatten_settings(&v);
        assert_eq!(flat["seed"], HParam::Number(3.0));
        assert_eq!(flat["reward[0].weight"], HParam::Number(1.0));
        assert_eq!(flat["reward[0].kind"], HParam::Text("jaccard".into()));
        assert_eq!(flat["notes.tokenizer"], HParam::Text("trained".into()));
        assert_eq!(flat["split.shuffle"], HParam::Bool(true));
        assert!(!flat.contains_key("policy"));
    }
}
