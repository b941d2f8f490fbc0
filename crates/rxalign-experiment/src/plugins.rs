//! The plugin registry of experiment files: one explicit list per plugin
//! kind, each entry a schema (for errors at the right line) and a builder.
//!
//! A researcher's plugin, in their own crate, is registered on
//! [`Plugins::builtin`]'s result before the file is read; nothing of ours
//! changes (see `tests/experiment_plugin.rs`).

use std::path::PathBuf;
use std::sync::Arc;

use rxalign_core::Cohort;
use rxalign_core::registry::{Registry, params};
use rxalign_data::SyntheticConfig;
use rxalign_env::{RewardTerm, StartList};
use rxalign_policy::family::FamilyConfig;
use rxalign_train::plugin::{FamilyKind, PolicyKind};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::data::{DataSource, FolderSource, SyntheticSource};
use crate::logger::{RunLogger, TensorboardConfig};
use crate::plugin::{PluginSchema, Schemas};
use crate::stage::{BaselinesConfig, BaselinesStage, ReferencesStage, Stage};

/// The schemas and builders of one plugin kind.
pub struct PluginKinds<P: ?Sized, C> {
    slot: &'static str,
    schemas: Vec<PluginSchema>,
    registry: Registry<P, C>,
}

impl<P: ?Sized, C> std::fmt::Debug for PluginKinds<P, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginKinds")
            .field("slot", &self.slot)
            .field("kinds", &self.registry.kinds())
            .finish()
    }
}

impl<P: ?Sized, C> PluginKinds<P, C> {
    fn new(slot: &'static str) -> Self {
        Self {
            slot,
            schemas: Vec::new(),
            registry: Registry::new(slot),
        }
    }

    /// Registers `kind`, whose parameters deserialise into `T` (a plain
    /// serde struct with `deny_unknown_fields`, deriving
    /// `schemars::JsonSchema` so that `rxalign plugins` lists its fields
    /// with their types, defaults and doc comments). `build` makes the
    /// plugin from checked parameters; its error fails the run that names
    /// the kind. The kind's one line of documentation is `T`'s doc comment
    /// (see [`PluginKinds::describe`]).
    pub fn register<T: DeserializeOwned + schemars::JsonSchema + 'static>(
        &mut self,
        kind: &str,
        build: impl Fn(T, &C) -> Result<Box<P>, String> + Send + Sync + 'static,
    ) -> Result<(), crate::ExperimentError> {
        self.registry
            .register(kind, move |value, ctx| build(params::<T>(value)?, ctx))?;
        self.schemas.push(PluginSchema::of::<T>(kind));
        Ok(())
    }

    /// Sets the one line of documentation `rxalign plugins` shows for
    /// `kind` (by default its settings type's doc comment, which kinds that
    /// share a settings type share too).
    pub fn describe(&mut self, kind: &str, doc: &str) -> Result<(), crate::ExperimentError> {
        let schema = self.schemas.iter_mut().find(|s| s.kind == kind).ok_or_else(|| {
            crate::ExperimentError::Invalid(format!("no {} kind `{kind}` to describe", self.slot))
        })?;
        *schema = schema.clone().with_doc(doc);
        Ok(())
    }

    /// The slot's name (`reward term`, `stage`, ...).
    pub fn slot(&self) -> &'static str {
        self.slot
    }

    /// The schemas of the registered kinds, in the order they were
    /// registered.
    pub fn schemas(&self) -> &[PluginSchema] {
        &self.schemas
    }

    /// Builds a plugin from its specification.
    pub fn build<S>(
        &self,
        spec: &crate::plugin::PluginSpec<S>,
        ctx: &C,
    ) -> Result<Box<P>, crate::ExperimentError> {
        Ok(self.registry.build(&spec.kind, &spec.params_json(), ctx)?)
    }

    /// The registered kinds' names.
    pub fn kinds(&self) -> Vec<&str> {
        self.registry.kinds()
    }
}

impl PluginKinds<dyn PolicyKind, ()> {
    /// Registers a policy family under `kind`: its settings `C` are read
    /// and checked with the file, and build the family on each run's data.
    pub fn register_family<C: FamilyConfig + DeserializeOwned + schemars::JsonSchema>(
        &mut self,
        kind: &'static str,
    ) -> Result<(), crate::ExperimentError> {
        self.register::<C>(kind, move |c, _| {
            Ok(Box::new(FamilyKind::new(kind, c).map_err(|e| e.to_string())?) as Box<dyn PolicyKind>)
        })
    }
}

/// A reward term's parameters when it has none but its weight.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WeightOnly {
    /// The term's weight `w_k` in the list potential `Φ = Σ_k w_k φ_k`.
    pub weight: f64,
}

/// Every plugin kind an experiment file can name.
#[derive(Debug)]
pub struct Plugins {
    /// Dataset sources (`synthetic`, `folder`): the file's `data`.
    pub data: PluginKinds<dyn DataSource, ()>,
    /// Start lists, built on the run's cohort: the file's `init_list`.
    pub init_list: PluginKinds<dyn StartList, Cohort>,
    /// Policy families (`set_encoder`, a researcher's own): what the `sft`,
    /// `grpo` and `step_grpo` stages train.
    pub policy: PluginKinds<dyn PolicyKind, ()>,
    /// Reward terms; their parameters include their `weight`.
    pub reward: PluginKinds<dyn RewardTerm, ()>,
    /// Stages, run in the order the file's `stages` lists them.
    pub stage: PluginKinds<dyn Stage, ()>,
    /// Loggers beyond the run folder's JSONL, each opened in a run folder.
    pub logger: PluginKinds<dyn RunLogger, PathBuf>,
}

/// A dataset folder written by `rxalign data` (synthetic, MIMIC-III or
/// MIMIC-IV).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct FolderConfig {
    /// The folder, relative to the directory rxalign runs in.
    path: PathBuf,
}

/// No parameters.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoParams {}

impl Plugins {
    /// The built-in plugins, in one explicit list per kind.
    pub fn builtin() -> Self {
        let mut p = Self {
            data: PluginKinds::new("dataset source"),
            init_list: PluginKinds::new("start list"),
            policy: PluginKinds::new("policy"),
            reward: PluginKinds::new("reward term"),
            stage: PluginKinds::new("stage"),
            logger: PluginKinds::new("logger"),
        };
        let ok = "built-in kinds are distinct";
        p.data
            .register::<SyntheticConfig>("synthetic", |c, _| {
                // Checked when the file is planned, not when a run starts.
                c.validate().map_err(|e| e.to_string())?;
                Ok(Box::new(SyntheticSource(c)) as Box<dyn DataSource>)
            })
            .expect(ok);
        p.data
            .register::<FolderConfig>("folder", |c, _| {
                Ok(Box::new(FolderSource(c.path)) as Box<dyn DataSource>)
            })
            .expect(ok);
        // Start lists: the environment's own builders.
        let starts = rxalign_env::start::registry();
        let start = Arc::new(starts);
        for kind in ["empty", "previous_visit"] {
            let r = Arc::clone(&start);
            p.init_list
                .register::<NoParams>(kind, move |_, cohort| {
                    r.build(kind, &serde_json::Value::Null, cohort)
                        .map_err(|e| e.to_string())
                })
                .expect(ok);
        }
        let r = Arc::clone(&start);
        p.init_list
            .register::<rxalign_env::start::CorruptedStartConfig>("corrupted", move |c, cohort| {
                r.build(
                    "corrupted",
                    &serde_json::to_value(c).map_err(|e| e.to_string())?,
                    cohort,
                )
                .map_err(|e| e.to_string())
            })
            .expect(ok);
        let r = Arc::clone(&start);
        p.init_list
            .register::<rxalign_env::start::PredictionsStartConfig>("predictions", move |c, cohort| {
                r.build(
                    "predictions",
                    &serde_json::to_value(c).map_err(|e| e.to_string())?,
                    cohort,
                )
                .map_err(|e| e.to_string())
            })
            .expect(ok);
        // Reward terms: the environment's built-ins, each with its weight.
        let terms = Arc::new(rxalign_env::reward::registry());
        for kind in terms.kinds() {
            let r = Arc::clone(&terms);
            let name = kind.to_string();
            p.reward
                .register::<WeightOnly>(kind, move |_, _| {
                    r.build(&name, &serde_json::Value::Null, &())
                        .map_err(|e| e.to_string())
                })
                .expect(ok);
            // Its one line: the potential's own definition.
            if let Ok(term) = terms.build(kind, &serde_json::Value::Null, &()) {
                p.reward
                    .describe(kind, &format!("φ = {}", term.definition()))
                    .expect(ok);
            }
        }
        p.stage
            .register::<BaselinesConfig>("baselines", |c, _| {
                let known = rxalign_env::baseline::registry();
                if let Some(bad) = c.methods.iter().find(|m| !known.kinds().contains(&m.as_str())) {
                    return Err(format!(
                        "unknown baseline `{bad}`{}; known baselines: {}",
                        rxalign_core::suggest::did_you_mean(bad, known.kinds()),
                        known.kinds().join(", ")
                    ));
                }
                Ok(Box::new(BaselinesStage::new(c)) as Box<dyn Stage>)
            })
            .expect(ok);
        p.stage
            .register::<rxalign_set_encoder::classifier::ClassifierSettings>("classifier", |c, _| {
                c.validate().map_err(|e| e.to_string())?;
                Ok(Box::new(crate::stage::ClassifierStage::new(c)) as Box<dyn Stage>)
            })
            .expect(ok);
        p.stage
            .register::<NoParams>("references", |_, _| {
                Ok(Box::new(ReferencesStage) as Box<dyn Stage>)
            })
            .expect(ok);
        p.stage
            .register::<crate::stage::HeadroomConfig>("headroom", |c, _| {
                c.validate()?;
                Ok(Box::new(crate::stage::HeadroomStage(c)) as Box<dyn Stage>)
            })
            .expect(ok);
        p.policy
            .register_family::<rxalign_set_encoder::SetEncoderConfig>(rxalign_set_encoder::KIND)
            .expect(ok);
        p.policy
            .register_family::<rxalign_llama::LlamaPolicyConfig>(rxalign_llama::KIND)
            .expect(ok);
        p.stage
            .register::<rxalign_train::sft::SftSettings>("sft", |c, _| {
                Ok(Box::new(crate::stage::SftStage::new(c)?) as Box<dyn Stage>)
            })
            .expect(ok);
        p.stage
            .register::<rxalign_train::grpo::GrpoSettings>("grpo", |c, _| {
                Ok(Box::new(crate::stage::GrpoStage::grpo(c)?) as Box<dyn Stage>)
            })
            .expect(ok);
        p.stage
            .register::<rxalign_train::grpo::GrpoSettings>("step_grpo", |c, _| {
                Ok(Box::new(crate::stage::GrpoStage::step_grpo(c)?) as Box<dyn Stage>)
            })
            .expect(ok);
        p.stage
            .register::<crate::stage::StartFromConfig>("start_from", |c, _| {
                Ok(Box::new(crate::stage::StartFromStage(c)) as Box<dyn Stage>)
            })
            .expect(ok);
        p.stage
            .register::<rxalign_llama::lamo::LamoSettings>("lamo", |c, _| {
                c.validate().map_err(|e| e.to_string())?;
                Ok(Box::new(crate::stage::LamoStage::new(c)) as Box<dyn Stage>)
            })
            .expect(ok);
        p.init_list
            .describe("empty", "Every episode starts from the empty list.")
            .expect(ok);
        p.init_list
            .describe(
                "previous_visit",
                "Episodes start from the patient's previous visit's drugs (empty at a first visit).",
            )
            .expect(ok);
        p.stage
            .describe(
                "references",
                "Scores the synthetic clinic's reference lists (the ceiling and two rules) beside the other methods.",
            )
            .expect(ok);
        p.stage
            .describe(
                "grpo",
                "GRPO on the list potential's outcome reward (step_weight 0 unless set).",
            )
            .expect(ok);
        p.stage
            .describe(
                "step_grpo",
                "Step-wise GRPO (FLAME Eq. 6): the outcome advantage plus step_weight times each step's shaped reward.",
            )
            .expect(ok);
        p.logger
            .register::<TensorboardConfig>("tensorboard", |c, run_root| {
                Ok(Box::new(c.init(run_root).map_err(|e| e.to_string())?) as Box<dyn RunLogger>)
            })
            .expect(ok);
        p
    }

    /// The reward of a file's `reward` list: each term built by its plugin
    /// ([`Plugins::reward_term`]), checked as a whole (`Reward::from_terms`).
    pub fn reward_of(
        &self,
        specs: &[crate::plugin::PluginSpec<crate::plugin::RewardSlot>],
    ) -> Result<rxalign_env::Reward, crate::ExperimentError> {
        let terms = specs
            .iter()
            .map(|spec| self.reward_term(spec))
            .collect::<Result<Vec<_>, crate::ExperimentError>>()?;
        Ok(rxalign_env::Reward::from_terms(terms)?)
    }

    /// One term of a file's `reward` list, built by its plugin, with its
    /// `weight` read as a number (every reward term's parameters carry one).
    pub fn reward_term(
        &self,
        spec: &crate::plugin::PluginSpec<crate::plugin::RewardSlot>,
    ) -> Result<(f64, Box<dyn RewardTerm>), crate::ExperimentError> {
        #[derive(Deserialize)]
        struct Weight {
            weight: f64,
        }
        let term = self.reward.build(spec, &())?;
        let Weight { weight } = serde_json::from_value(spec.params_json())
            .map_err(|e| crate::ExperimentError::Invalid(format!("reward term `{}`: {e}", spec.kind)))?;
        Ok((weight, term))
    }

    /// The schemas of every slot, for reading files.
    pub fn schemas(&self) -> Arc<Schemas> {
        let mut s = Schemas::default();
        s.slots
            .insert(crate::plugin::DataSlot::NAME, self.data.schemas.clone());
        s.slots
            .insert(crate::plugin::StartSlot::NAME, self.init_list.schemas.clone());
        s.slots
            .insert(crate::plugin::PolicySlot::NAME, self.policy.schemas.clone());
        s.slots
            .insert(crate::plugin::RewardSlot::NAME, self.reward.schemas.clone());
        s.slots
            .insert(crate::plugin::StageSlot::NAME, self.stage.schemas.clone());
        s.slots
            .insert(crate::plugin::LoggerSlot::NAME, self.logger.schemas.clone());
        Arc::new(s)
    }
}

use crate::plugin::Slot as _;
