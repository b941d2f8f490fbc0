//! TensorBoard event files through `tensorboard-rs`: its scalars and raw
//! histograms as they are, and text and HParams summaries built from its
//! protobuf types (its own helpers for those are unimplemented).
//!
//! The files are read back with the official reader by
//! `tests/tensorboard_read.py` (run by `.ci/run`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use protobuf::well_known_types::Value as PbValue;
use protobuf::{Message, RepeatedField};
use rxalign_core::run::MetricsRecord;
use serde::{Deserialize, Serialize};
use tensorboard_proto::api::{Experiment, HParamInfo, MetricInfo, MetricName, Status};
use tensorboard_proto::plugin_hparams::{HParamsPluginData, SessionEndInfo, SessionStartInfo};
use tensorboard_proto::plugin_text::TextPluginData;
use tensorboard_proto::summary::{Summary, Summary_Value, SummaryMetadata, SummaryMetadata_PluginData};
use tensorboard_proto::tensor::TensorProto;
use tensorboard_proto::tensor_shape::{TensorShapeProto, TensorShapeProto_Dim};
use tensorboard_proto::types::DataType;
use tensorboard_rs::summary::{histogram_raw, scalar};
use tensorboard_rs::summary_writer::FileWriter;

use super::{HParam, RunLogger, metric_tag};
use crate::ExperimentError;

/// Settings of the `tensorboard` logger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TensorboardConfig {
    /// The event files' folder, inside the run folder.
    pub dir: String,
    /// Buckets of each histogram.
    pub buckets: usize,
}

impl Default for TensorboardConfig {
    fn default() -> Self {
        Self {
            dir: rxalign_core::run::TENSORBOARD.into(),
            buckets: 30,
        }
    }
}

impl TensorboardConfig {
    /// Opens the event file of a run whose folder is `run_root`.
    pub fn init(&self, run_root: &Path) -> Result<TensorboardSink, ExperimentError> {
        if self.dir.is_empty() || Path::new(&self.dir).is_absolute() || self.dir.contains("..") {
            return Err(ExperimentError::Invalid(format!(
                "logger `tensorboard`: dir `{}` must be a folder inside the run folder",
                self.dir
            )));
        }
        if self.buckets == 0 {
            return Err(ExperimentError::Invalid(
                "logger `tensorboard`: buckets must be positive".into(),
            ));
        }
        let dir = run_root.join(&self.dir);
        // Made here so that a failure is an error, not a panic in the writer.
        std::fs::create_dir_all(&dir).map_err(|e| rxalign_core::CoreError::io(&dir, e))?;
        Ok(TensorboardSink {
            writer: FileWriter::new(&dir),
            dir,
            buckets: self.buckets,
        })
    }
}

/// Writes one TensorBoard event file per run.
pub struct TensorboardSink {
    writer: FileWriter,
    dir: PathBuf,
    buckets: usize,
}

impl std::fmt::Debug for TensorboardSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TensorboardSink").field("dir", &self.dir).finish()
    }
}

/// A summary of one value.
fn summary_of(value: Summary_Value) -> Summary {
    let mut summary = Summary::new();
    summary.set_value(RepeatedField::from(vec![value]));
    summary
}

/// A summary value that carries only a plugin's metadata (and, for text, a
/// tensor).
fn plugin_value(tag: &str, plugin: &str, content: Vec<u8>) -> Summary_Value {
    let mut data = SummaryMetadata_PluginData::new();
    data.set_plugin_name(plugin.to_string());
    data.set_content(content);
    let mut metadata = SummaryMetadata::new();
    metadata.set_plugin_data(data);
    let mut value = Summary_Value::new();
    value.set_tag(tag.to_string());
    value.set_metadata(metadata);
    value
}

fn encode(message: &dyn Message) -> Result<Vec<u8>, ExperimentError> {
    message
        .write_to_bytes()
        .map_err(|e| ExperimentError::Invalid(format!("encoding a TensorBoard summary: {e}")))
}

impl TensorboardSink {
    /// One HParams summary (version 0) under `tag`, its data set by `fill`.
    fn add_hparams(
        &mut self,
        tag: &str,
        fill: impl FnOnce(&mut HParamsPluginData),
    ) -> Result<(), ExperimentError> {
        let mut data = HParamsPluginData::new();
        data.set_version(0);
        fill(&mut data);
        self.writer
            .add_summary(summary_of(plugin_value(tag, "hparams", encode(&data)?)), 0);
        Ok(())
    }
}

impl RunLogger for TensorboardSink {
    fn metrics(&mut self, records: &[MetricsRecord]) -> Result<(), ExperimentError> {
        for r in records {
            for (name, value) in &r.metrics {
                if let Some(v) = value {
                    self.writer.add_summary(
                        scalar(&metric_tag(&r.method, &r.split, name), *v as f32),
                        r.step as usize,
                    );
                }
            }
        }
        Ok(())
    }

    fn histogram(&mut self, tag: &str, step: u64, values: &[f64]) -> Result<(), ExperimentError> {
        let Some(h) = rxalign_core::run::histogram(values, self.buckets) else {
            return Ok(());
        };
        let finite = values.iter().filter(|x| x.is_finite());
        let (n, sum, squares) = finite.fold((0.0, 0.0, 0.0), |(n, s, q), x| (n + 1.0, s + x, q + x * x));
        self.writer.add_summary(
            histogram_raw(tag, h.min, h.max, n, sum, squares, &h.limits, &h.counts),
            step as usize,
        );
        Ok(())
    }

    fn text(&mut self, tag: &str, step: u64, markdown: &str) -> Result<(), ExperimentError> {
        let mut plugin = TextPluginData::new();
        plugin.set_version(0);
        let mut value = plugin_value(tag, "text", encode(&plugin)?);
        let mut tensor = TensorProto::new();
        tensor.set_dtype(DataType::DT_STRING);
        tensor.set_string_val(RepeatedField::from(vec![markdown.as_bytes().to_vec()]));
        let mut dim = TensorShapeProto_Dim::new();
        dim.set_size(1);
        let mut shape = TensorShapeProto::new();
        shape.set_dim(RepeatedField::from(vec![dim]));
        tensor.set_tensor_shape(shape);
        value.set_tensor(tensor);
        self.writer.add_summary(summary_of(value), step as usize);
        Ok(())
    }

    fn hparams(
        &mut self,
        hparams: &BTreeMap<String, HParam>,
        metric_tags: &[String],
    ) -> Result<(), ExperimentError> {
        // The experiment: which settings and metrics the view has columns for.
        let mut experiment = Experiment::new();
        experiment.set_hparam_infos(RepeatedField::from(
            hparams
                .keys()
                .map(|name| {
                    let mut info = HParamInfo::new();
                    info.set_name(name.clone());
                    info
                })
                .collect::<Vec<_>>(),
        ));
        experiment.set_metric_infos(RepeatedField::from(
            metric_tags
                .iter()
                .map(|tag| {
                    let mut name = MetricName::new();
                    name.set_tag(tag.clone());
                    let mut info = MetricInfo::new();
                    info.set_name(name);
                    info
                })
                .collect::<Vec<_>>(),
        ));
        self.add_hparams("_hparams_/experiment", |d| d.set_experiment(experiment))?;
        // This run's values.
        let mut start = SessionStartInfo::new();
        for (name, value) in hparams {
            let mut v = PbValue::new();
            match value {
                HParam::Number(x) => v.set_number_value(*x),
                HParam::Text(s) => v.set_string_value(s.clone()),
                HParam::Bool(b) => v.set_bool_value(*b),
            }
            start.mut_hparams().insert(name.clone(), v);
        }
        let mut data = HParamsPluginData::new();
        data.set_version(0);
        data.set_session_start_info(start);
        self.writer.add_summary(
            summary_of(plugin_value(
                "_hparams_/session_start_info",
                "hparams",
                encode(&data)?,
            )),
            0,
        );
        let mut end = SessionEndInfo::new();
        end.set_status(Status::STATUS_SUCCESS);
        let mut data = HParamsPluginData::new();
        data.set_version(0);
        data.set_session_end_info(end);
        self.writer.add_summary(
            summary_of(plugin_value(
                "_hparams_/session_end_info",
                "hparams",
                encode(&data)?,
            )),
            0,
        );
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ExperimentError> {
        self.writer.flush();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dir_outside_the_run_folder_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let config = TensorboardConfig {
            dir: "../elsewhere".into(),
            ..TensorboardConfig::default()
        };
        let e = config.init(tmp.path()).unwrap_err();
        assert!(e.to_string().contains("inside the run folder"), "{e}");
    }
}
