//! Version 1 of the experiment file.
//!
//! ```ron
//! (
//!   schema_version: 1,
//!   name: "baselines",
//!   seed: 0,
//!   data: (kind: "synthetic", patients: 1500),
//!   reward: [(kind: "jaccard", weight: 1.0), (kind: "ddi_rate", weight: 0.2)],
//!   stages: [(kind: "baselines")],
//!   ablations: (grid: {"reward[1].weight": [0.0, 0.2]}),
//! )
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rxalign_core::SplitName;
use serde::{Deserialize, Serialize};

use crate::ExperimentError;
use crate::plugin::{
    DataSlot, LoggerSlot, PluginSpec, PolicySlot, RewardSlot, Schemas, StageSlot, StartSlot,
};

/// The newest `schema_version` this build reads.
pub const SCHEMA_VERSION: u64 = 1;

/// An experiment file, as written (before ablations are applied).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentFile {
    pub schema_version: u64,
    pub name: String,
    /// Seeds every random choice of a run (an ablation axis like any other).
    #[serde(default)]
    pub seed: u64,
    /// `cpu`, or `cuda:N` where the build has CUDA.
    #[serde(default = "default_device")]
    pub device: String,
    /// Data parallel (builds with the `distributed` feature): two or more
    /// CUDA GPUs of this machine, `["cuda:0", "cuda:1"]`, over which each
    /// SFT batch and GRPO update is sharded; the first also runs
    /// everything else. Instead of `device`, never with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    pub data: PluginSpec<DataSlot>,
    #[serde(default)]
    pub split: SplitSettings,
    /// Where episodes start.
    #[serde(default = "default_init_list")]
    pub init_list: PluginSpec<StartSlot>,
    /// The policy family the training stages train (`set_encoder`, the
    /// action-head list policy, unless named).
    #[serde(default = "default_policy")]
    pub policy: PluginSpec<PolicySlot>,
    /// How notes become features of the learned methods.
    #[serde(default)]
    pub notes: NoteSettings,
    /// The terms of the list potential, each with its weight.
    pub reward: Vec<PluginSpec<RewardSlot>>,
    pub stages: Vec<PluginSpec<StageSlot>>,
    #[serde(default)]
    pub eval: EvalSettings,
    #[serde(default)]
    pub loggers: Vec<PluginSpec<LoggerSlot>>,
    #[serde(default)]
    pub ablations: Ablations,
}

fn default_device() -> String {
    "cpu".into()
}

impl ExperimentFile {
    /// The devices the run trains on: its `devices` where given, else its
    /// `device`, checked.
    pub fn train_devices(&self) -> Result<rxalign_policy::device::TrainDevices, rxalign_policy::PolicyError> {
        use rxalign_policy::device::TrainDevices;
        if self.devices.is_empty() {
            Ok(TrainDevices::one(self.device.parse()?))
        } else {
            TrainDevices::parse(&self.devices)
        }
    }

    /// The devices as the run's record names them (`cpu`; `cuda:0, cuda:1`).
    pub fn device_label(&self) -> String {
        if self.devices.is_empty() {
            self.device.clone()
        } else {
            self.devices.join(", ")
        }
    }
}

fn default_policy() -> PluginSpec<PolicySlot> {
    PluginSpec::new(rxalign_set_encoder::KIND)
}

fn default_init_list() -> PluginSpec<StartSlot> {
    PluginSpec::new("empty")
}

/// How patients are split: shares of patients for training and
/// validation (the rest is test; by default GAMENet's and SafeDrug's 2/3,
/// 1/6, 1/6), drawn by `seed`. By default the split seed is fixed apart
/// from the run seed, so seeds vary the training, not the test patients.
/// With `from_run_seed: true` each run's seed draws its split, as the DREAM
/// benchmark does per seed: `split: (train: 0.66, val: 0.17,
/// from_run_seed: true)` with `grid: {"seed": "dream"}` is its protocol,
/// and the spread over seeds then includes the split's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SplitSettings {
    pub seed: u64,
    pub train: f64,
    pub val: f64,
    /// Each run's seed draws the split (`seed` must then be left out).
    pub from_run_seed: bool,
}

impl Default for SplitSettings {
    fn default() -> Self {
        let c = rxalign_core::SplitConfig::with_seed(0);
        Self {
            seed: c.seed,
            train: c.train,
            val: c.val,
            from_run_seed: false,
        }
    }
}

impl SplitSettings {
    /// The split of a run seeded `run_seed`, checked.
    pub fn config(&self, run_seed: u64) -> Result<rxalign_core::SplitConfig, ExperimentError> {
        if self.from_run_seed && self.seed != 0 {
            return Err(ExperimentError::Invalid(format!(
                "split: `seed: {}` and `from_run_seed: true` both say what draws the split; leave out one",
                self.seed
            )));
        }
        let config = rxalign_core::SplitConfig {
            seed: if self.from_run_seed { run_seed } else { self.seed },
            train: self.train,
            val: self.val,
        };
        config
            .validate()
            .map_err(|e| ExperimentError::Invalid(format!("split: {e}")))?;
        Ok(config)
    }
}

/// How the learned methods read notes: the distinct tokens of a visit's
/// note join its codes as features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NoteSettings {
    /// `"trained"`: a BPE tokenizer trained on the training split's notes
    /// with the `tokenizers` crate's trainer; `"none"`: notes are not read;
    /// anything else: the path of a `tokenizer.json` (relative to the
    /// directory rxalign runs in), such as a BERT WordPiece tokenizer.
    pub tokenizer: String,
    /// Most tokens of a trained tokenizer.
    pub vocab_size: usize,
    /// Fewest occurrences of a pair the trainer merges.
    pub min_frequency: u64,
}

impl Default for NoteSettings {
    fn default() -> Self {
        Self {
            tokenizer: "trained".into(),
            vocab_size: 2000,
            min_frequency: 2,
        }
    }
}

impl NoteSettings {
    /// Where the tokenizer comes from, checked before anything runs: a
    /// trained tokenizer's size, and that a named tokenizer file exists.
    pub fn source(&self) -> Result<NoteSource, ExperimentError> {
        match self.tokenizer.as_str() {
            "none" => Ok(NoteSource::None),
            "trained" if self.vocab_size == 0 => Err(ExperimentError::Invalid(
                "notes.vocab_size: must be positive".into(),
            )),
            "trained" => Ok(NoteSource::Trained {
                vocab_size: self.vocab_size,
                min_frequency: self.min_frequency,
            }),
            path if !Path::new(path).is_file() => Err(ExperimentError::Invalid(format!(
                "notes.tokenizer: `{path}` is neither `trained`, `none` nor a tokenizer.json file (paths are relative to the directory rxalign runs in)"
            ))),
            path => Ok(NoteSource::File(PathBuf::from(path))),
        }
    }
}

/// Where a run's note tokenizer comes from: [`NoteSettings`] resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoteSource {
    /// Notes are not read.
    None,
    /// A BPE tokenizer trained on the training split's notes.
    Trained { vocab_size: usize, min_frequency: u64 },
    /// A `tokenizer.json` file (a BERT WordPiece tokenizer, ...).
    File(PathBuf),
}

impl NoteSource {
    /// The tokenizer, trained on the notes of `train` where asked; `None`
    /// for [`NoteSource::None`] or a cohort without notes.
    pub fn tokenizer(
        &self,
        cohort: &rxalign_core::Cohort,
        train: &[usize],
    ) -> Result<Option<rxalign_set_encoder::notes::NoteTokenizer>, ExperimentError> {
        use rxalign_set_encoder::notes::NoteTokenizer;
        let invalid =
            |e: rxalign_policy::PolicyError| ExperimentError::Invalid(format!("notes.tokenizer: {e}"));
        match self {
            Self::None => Ok(None),
            Self::Trained {
                vocab_size,
                min_frequency,
            } => {
                let notes: Vec<&str> = train
                    .iter()
                    .filter_map(|&v| cohort.visits[v].note.as_deref())
                    .collect();
                if notes.is_empty() {
                    return Ok(None);
                }
                NoteTokenizer::train(notes.into_iter(), *vocab_size, *min_frequency)
                    .map(Some)
                    .map_err(invalid)
            }
            Self::File(path) => NoteTokenizer::from_file(path).map(Some).map_err(invalid),
        }
    }
}

/// What each evaluation covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSettings {
    /// Splits every method is scored on (`train`, `val`, `test`); the
    /// summary uses `test`.
    pub splits: Vec<String>,
    /// Test visits per method whose step-by-step trajectory is kept: the
    /// first ones of the test split.
    pub trajectories: usize,
    /// Besides those, for a method that starts from a list (a trained
    /// editor), the test visits where it edited (its final list differs
    /// from its start list), at most this many, in test order: so that
    /// the visits where the policy acted can be opened. `summary.json`
    /// says how many there were and how many were kept.
    pub edited_trajectories: usize,
}

impl Default for EvalSettings {
    fn default() -> Self {
        Self {
            splits: vec!["val".into(), "test".into()],
            trajectories: 5,
            edited_trajectories: 200,
        }
    }
}

impl EvalSettings {
    /// The splits, checked.
    pub fn split_names(&self) -> Result<Vec<SplitName>, ExperimentError> {
        self.splits
            .iter()
            .map(|s| {
                s.parse::<SplitName>()
                    .map_err(|e| ExperimentError::Invalid(format!("eval.splits: {e}")))
            })
            .collect()
    }
}

/// Ablations: a grid of values by path (the runs are its product) and named
/// variants (sets of overrides). With both, every variant runs over the grid.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ablations {
    pub grid: BTreeMap<String, AxisValues>,
    pub variants: Vec<Variant>,
}

/// The values of one grid axis: a list (`[0.0, 0.5]`), or, for the `seed`
/// axis, the name of a seed set (`"dream"`: the DREAM benchmark's seeds
/// 1203, 2024, 42, 1234, 5678; see [`rxalign_core::SEED_SETS`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ron::Value", into = "ron::Value")]
pub enum AxisValues {
    List(Vec<ron::Value>),
    SeedSet(String),
}

impl TryFrom<ron::Value> for AxisValues {
    type Error = String;
    fn try_from(value: ron::Value) -> Result<Self, String> {
        match value {
            ron::Value::Seq(items) => Ok(Self::List(items)),
            ron::Value::String(name) => Ok(Self::SeedSet(name)),
            other => Err(format!(
                "an axis takes a list of values, or (the `seed` axis) the name of a seed set such as \"dream\"; found {}",
                ron::to_string(&other).unwrap_or_default()
            )),
        }
    }
}

impl From<AxisValues> for ron::Value {
    fn from(values: AxisValues) -> Self {
        match values {
            AxisValues::List(items) => ron::Value::Seq(items),
            AxisValues::SeedSet(name) => ron::Value::String(name),
        }
    }
}

impl AxisValues {
    /// The values of the axis at `path`: a seed set is named only by the
    /// `seed` axis.
    pub fn values(&self, path: &str) -> Result<Vec<ron::Value>, String> {
        match self {
            Self::List(items) => Ok(items.clone()),
            Self::SeedSet(name) if path == "seed" => rxalign_core::seed_set(name)
                .map(|seeds| seeds.iter().map(|&s| ron::Value::from(s)).collect())
                .map_err(|e| e.to_string()),
            Self::SeedSet(name) => Err(format!(
                "`\"{name}\"` names a seed set, which only the `seed` axis takes; list this axis's values (`[...]`)"
            )),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    pub set: BTreeMap<String, ron::Value>,
}

/// Just the version, read before anything else (0 when missing).
#[derive(Deserialize)]
struct VersionProbe {
    #[serde(default)]
    schema_version: u64,
}

/// RON as experiment files are read: `Some(...)` may be left out around
/// optional settings (`policy: (kind: ...)`).
pub(crate) fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
}

/// A parsed experiment file with its source text.
#[derive(Clone, Debug)]
pub struct Experiment {
    pub path: PathBuf,
    pub text: String,
    pub file: ExperimentFile,
    /// The file as a value tree, where ablation paths apply.
    pub tree: ron::Value,
}

/// Parses an experiment file against the plugin schemas.
pub fn parse(path: &Path, text: &str, schemas: Arc<Schemas>) -> Result<Experiment, ExperimentError> {
    let located = |e: ron::error::SpannedError| ExperimentError::File {
        path: path.to_path_buf(),
        line: e.position.line,
        column: e.position.col,
        message: plain_message(&e.code),
    };
    if ron_options()
        .from_str::<ron::Value>(text)
        .is_err_and(|e| e.code == ron::Error::Eof)
    {
        return Err(ExperimentError::File {
            path: path.to_path_buf(),
            line: 1,
            column: 1,
            message: format!(
                "the file holds no experiment (it is empty, or only comments); an experiment file is a RON struct: `(schema_version: {SCHEMA_VERSION}, name: ..., data: ..., reward: [...], stages: [...])`"
            ),
        });
    }
    let probe: VersionProbe = ron_options().from_str(text).map_err(located)?;
    match probe.schema_version {
        0 => {
            return Err(ExperimentError::File {
                path: path.to_path_buf(),
                line: 1,
                column: 1,
                message: format!("missing `schema_version` (this rxalign reads version {SCHEMA_VERSION})"),
            });
        }
        v if v > SCHEMA_VERSION => {
            return Err(ExperimentError::NewerSchema {
                path: path.to_path_buf(),
                found: v,
                supported: SCHEMA_VERSION,
            });
        }
        _ => {}
    }
    let file: ExperimentFile = crate::plugin::with_schemas(schemas, || {
        let options = ron_options();
        let mut de = ron::Deserializer::from_str_with_options(text, &options)?;
        // The setting's path, where the message does not name it (a
        // top-level `seed: -1`).
        let file = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let mut error = de.span_error(e.into_inner());
            let message = error.code.to_string();
            if path != "." && !path.is_empty() && !message.contains("field `") {
                error.code = ron::Error::Message(format!("setting `{path}`: {}", plain_message(&error.code)));
            }
            error
        })?;
        de.end().map_err(|e| de.span_error(e))?;
        Ok(file)
    })
    .map_err(located)?;
    let tree: ron::Value = ron_options().from_str(text).map_err(located)?;
    Ok(Experiment {
        path: path.to_path_buf(),
        text: text.to_string(),
        file,
        tree,
    })
}

/// A RON error as a user reads it: no names of our internal types, and a
/// float that is not a number said as such (RON reads `NaN` and `inf`,
/// which no setting accepts).
fn plain_message(code: &ron::Error) -> String {
    code.to_string()
        .replace("VersionProbe", "the experiment file")
        .replace("ExperimentFile", "the experiment file")
}

/// The line and column (1-based) of the first occurrence of `needle` in
/// `text` at or after byte `from`.
pub(crate) fn locate(text: &str, needle: &str, from: usize) -> Option<(usize, usize)> {
    let at = from + text.get(from..)?.find(needle)?;
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = at - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    Some((line, column))
}
