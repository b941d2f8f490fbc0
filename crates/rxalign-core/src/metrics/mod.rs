//! Every metric of rxalign, one per file, each with a stable name and a
//! one-line definition that is printed beside its value.
//!
//! Every metric is computed per visit and averaged over visits unless its
//! name says `pooled`; [`MetricSet::standard`] is the one list of them, in
//! the order reports print them.

mod ddi_rate;
mod ddi_rate_pooled;
pub mod edits;
mod f1;
mod gt_med_count;
mod jaccard;
mod med_count;
mod overprescription_ratio;
mod prauc;
mod precision;
mod recall;

use serde_json::{Map, Value};

pub use ddi_rate::{DdiRateMetric, ddi_rate};
pub use ddi_rate_pooled::DdiRatePooledMetric;
pub use edits::{EDIT_METRICS, ListEdits, edit_definition, is_edit_metric};
pub use f1::{F1Metric, f1};
pub use gt_med_count::GtMedCountMetric;
pub use jaccard::{JaccardMetric, jaccard};
pub use med_count::MedCountMetric;
pub use overprescription_ratio::OverprescriptionRatioMetric;
pub use prauc::{PraucMetric, average_precision};
pub use precision::{PrecisionMetric, precision};
pub use recall::{RecallMetric, recall};

use crate::{DdiGraph, DrugSet};

/// What a metric sees of one visit.
#[derive(Clone, Copy, Debug)]
pub struct MetricInput<'a> {
    /// The recommended list `P`.
    pub predicted: &'a DrugSet,
    /// The prescribed list `G`.
    pub truth: &'a DrugSet,
    /// A score per drug index when the recommender gives them.
    pub scores: Option<&'a [f64]>,
    pub ddi: &'a DdiGraph,
}

/// A metric accumulated over visits.
pub trait Metric: Send + std::fmt::Debug {
    /// The stable name, used as the key in every file and table.
    fn name(&self) -> &'static str;
    /// One line saying exactly what is computed.
    fn definition(&self) -> &'static str;
    /// Takes one visit into account.
    fn update(&mut self, input: &MetricInput<'_>);
    /// The value over the visits seen; `None` where it is undefined (no
    /// visits, or scores missing for PRAUC).
    fn value(&self) -> Option<f64>;
}

/// A running mean of per-visit values.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Mean {
    sum: f64,
    count: usize,
}

impl Mean {
    pub(crate) fn push(&mut self, x: f64) {
        self.sum += x;
        self.count += 1;
    }
    pub(crate) fn value(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

/// A list of metrics updated together.
#[derive(Debug)]
pub struct MetricSet {
    metrics: Vec<Box<dyn Metric>>,
    visits: usize,
}

impl MetricSet {
    /// Every metric of the design, in report order.
    pub fn standard() -> Self {
        Self::new(vec![
            Box::new(JaccardMetric::default()),
            Box::new(PrecisionMetric::default()),
            Box::new(RecallMetric::default()),
            Box::new(F1Metric::default()),
            Box::new(PraucMetric::default()),
            Box::new(DdiRateMetric::default()),
            Box::new(DdiRatePooledMetric::default()),
            Box::new(MedCountMetric::default()),
            Box::new(GtMedCountMetric::default()),
            Box::new(OverprescriptionRatioMetric::default()),
        ])
    }

    pub fn new(metrics: Vec<Box<dyn Metric>>) -> Self {
        Self { metrics, visits: 0 }
    }

    pub fn update(&mut self, input: &MetricInput<'_>) {
        self.visits += 1;
        for m in &mut self.metrics {
            m.update(input);
        }
    }

    pub fn report(&self) -> MetricReport {
        MetricReport {
            visits: self.visits,
            values: self
                .metrics
                .iter()
                .map(|m| MetricValue {
                    name: m.name().to_string(),
                    definition: m.definition().to_string(),
                    value: m.value(),
                })
                .collect(),
        }
    }
}

/// The standard metrics over some visits.
pub fn evaluate<'a>(inputs: impl IntoIterator<Item = MetricInput<'a>>) -> MetricReport {
    let mut set = MetricSet::standard();
    for input in inputs {
        set.update(&input);
    }
    set.report()
}

/// One metric's value with its name and definition.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricValue {
    pub name: String,
    pub definition: String,
    pub value: Option<f64>,
}

/// The values of a metric set over some visits.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricReport {
    pub visits: usize,
    pub values: Vec<MetricValue>,
}

impl MetricReport {
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.iter().find(|v| v.name == name).and_then(|v| v.value)
    }

    /// `{"visits": n, "<name>": value or null, ...}`: the keys of
    /// `rxalign eval --json` and of each method in `summary.json`.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("visits".into(), Value::from(self.visits));
        for v in &self.values {
            map.insert(v.name.clone(), v.value.map_or(Value::Null, Value::from));
        }
        Value::Object(map)
    }

    /// Name, value and definition, one metric a line.
    pub fn render(&self) -> String {
        let width = self.values.iter().map(|v| v.name.len()).max().unwrap_or(6).max(6);
        let mut out = format!("{:width$}  {:>8}  {}\n", "visits", self.visits, "visits scored");
        for v in &self.values {
            let value = v.value.map_or_else(|| "n/a".to_string(), |x| format!("{x:.4}"));
            out.push_str(&format!("{:width$}  {value:>8}  {}\n", v.name, v.definition));
        }
        out
    }
}

/// The one-line definitions of the standard metrics, by name.
pub fn definitions() -> Vec<(String, String)> {
    MetricSet::standard()
        .report()
        .values
        .into_iter()
        .map(|v| (v.name, v.definition))
        .collect()
}

#[cfg(test)]
mod tests;
