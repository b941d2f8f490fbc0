//! `rxalign plan FILE --resources`: what each training stage of a run
//! needs before it runs ([`rxalign_policy::resources`] holds the counts).
//!
//! The `llama` family's shape is read from its folder's `config.json` (no
//! weights) or its `scratch` shape. Its prompt length is the caller's
//! (`--prompt-tokens`), or else measured: the data is loaded and the
//! family built as a run would (the folder's tokenizer, or the BPE trained
//! on the prompts), and the longest first prompt over every visit is taken,
//! each with its own drugs as the start list. The `set_encoder` list
//! policy's size depends on the data's codes and drugs, so its data is
//! loaded too.

use rxalign_llama::resources::LlamaConfig;
use rxalign_llama::{KIND as LLAMA, LlamaPolicyConfig};
pub use rxalign_policy::device::human_bytes;
use rxalign_policy::resources::Work;
pub use rxalign_policy::resources::{CARD_SHARE, CARDS, FLOAT_BYTES, Footprint};
use rxalign_set_encoder::SetEncoderConfig;
use rxalign_train::grpo::GrpoSettings;
use rxalign_train::sft::SftSettings;

use crate::plugin::PluginSpec;
use crate::{ExperimentError, TypedPlan};

/// One stage's estimate, or why there is none.
#[derive(Debug)]
pub struct StageResources {
    /// The stage's kind and place (`sft (stage 4)`).
    pub stage: String,
    pub footprint: Result<Footprint, String>,
}

fn params<T: serde::de::DeserializeOwned, S>(spec: &PluginSpec<S>) -> Result<T, ExperimentError> {
    ron::Value::Map(spec.params.clone())
        .into_rust::<T>()
        .map_err(|e| ExperimentError::Invalid(format!("`{}`: {e}", spec.kind)))
}

enum Family {
    /// The settings, the shape, and the prompt's tokens.
    Llama(Box<(LlamaPolicyConfig, LlamaConfig)>, usize),
    List(SetEncoderConfig, usize, usize),
}

/// The longest first prompt of the data's visits, each with its own drugs
/// as the start list.
fn longest_prompt(c: &LlamaPolicyConfig, plan: &TypedPlan) -> Result<usize, ExperimentError> {
    let data = plan.data.load()?;
    let cohort = &data.cohort;
    let policy = c.build(cohort)?;
    let mut longest = 0;
    for (v, visit) in cohort.visits.iter().enumerate() {
        let state = rxalign_policy::family::State::first(v, &visit.drugs);
        longest = longest.max(policy.context(cohort, &state)?.len());
    }
    Ok(longest)
}

fn family(plan: &TypedPlan, prompt_tokens: Option<usize>) -> Result<Option<Family>, ExperimentError> {
    let policy = &plan.plan.file.policy;
    match policy.kind.as_str() {
        LLAMA => {
            let c: LlamaPolicyConfig = params(policy)?;
            let llama = c
                .shape()
                .map_err(|e| ExperimentError::Invalid(format!("policy: {e}")))?;
            let prompt = match prompt_tokens {
                Some(n) => n,
                None => longest_prompt(&c, plan)?,
            };
            Ok(Some(Family::Llama(Box::new((c, llama)), prompt)))
        }
        rxalign_set_encoder::KIND => {
            let c: SetEncoderConfig = params(policy)?;
            let data = plan.data.load()?;
            let split = data.cohort.split(&plan.split);
            let features = crate::runner::features(&plan.notes, &data.cohort, &split)?.0;
            Ok(Some(Family::List(c, features.size(), features.drugs)))
        }
        _ => Ok(None),
    }
}

/// The estimate of every stage of `plan` that trains the policy (`sft`,
/// `grpo`, `step_grpo`), with prompts of `prompt_tokens` tokens for a
/// language model (`None`: measured on the data, see the module's text).
/// Other stages are listed with why they have none.
pub fn estimate(
    typed: &TypedPlan,
    prompt_tokens: Option<usize>,
) -> Result<Vec<StageResources>, ExperimentError> {
    let family = family(typed, prompt_tokens)?;
    let plan = &typed.plan;
    let mut out = Vec::new();
    for (i, spec) in plan.file.stages.iter().enumerate() {
        let work = match spec.kind.as_str() {
            "sft" => Some(Work::Sft {
                batch: params::<SftSettings, _>(spec)?.batch_size,
            }),
            "grpo" | "step_grpo" => {
                let g: GrpoSettings = params(spec)?;
                Some(Work::Grpo {
                    visits: g.visits,
                    group: g.group,
                    ppo_epochs: g.ppo_epochs,
                })
            }
            _ => None,
        };
        let footprint = match (work, &family) {
            (None, _) => Err("trains no policy of the family (not estimated)".to_string()),
            (Some(_), None) => Err(format!(
                "the `{}` family is not modelled (set_encoder and llama are)",
                plan.file.policy.kind
            )),
            (Some(w), Some(Family::Llama(c, prompt))) => Ok(c.0.footprint(&c.1, *prompt, w)),
            (Some(w), Some(Family::List(c, features, drugs))) => Ok(c.footprint(*features, *drugs, w)),
        };
        out.push(StageResources {
            stage: format!("{} (stage {})", spec.kind, i + 1),
            footprint,
        });
    }
    Ok(out)
}
