//! Resolving a file's runs into typed plans before anything trains (as
//! ripgrep turns its low-level arguments into high-level ones): every
//! plugin is built once with its settings checked, the device, split and
//! note tokenizer's source parsed, and the stages checked against the
//! artifacts each reads and the earlier ones give. Every problem of every
//! run is reported at once, each at the line of the setting at fault; what
//! is built is what the runner runs ([`TypedPlan`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use rxalign_core::run::validate_name;
use rxalign_core::{Predictions, SplitConfig, SplitName};
use rxalign_env::Reward;
use rxalign_policy::device::TrainDevices;
use rxalign_train::plugin::PolicyKind;

use crate::ExperimentError;
use crate::ablation::RunPlan;
use crate::data::DataSource;
use crate::plugin::{PluginSpec, StageSlot};
use crate::plugins::Plugins;
use crate::schema::{Experiment, NoteSource};
use crate::stage::{ArtifactId, Need, Stage};

/// One run, resolved once before anything trains: its settings as plain
/// data (`plan`, what `resolved.ron` records) and everything built from
/// them, which the runner uses as they are: no plugin is built twice and
/// no setting parsed twice. The start list and the loggers are built when
/// the run starts (on its cohort and in its folder), from settings checked
/// when the file was read.
#[derive(Clone, Debug)]
pub struct TypedPlan {
    /// The run's settings.
    pub plan: RunPlan,
    /// Where its learned methods train.
    pub devices: TrainDevices,
    /// How its patients are split (the run's seed applied where the file
    /// says so).
    pub split: SplitConfig,
    /// Where its note tokenizer comes from.
    pub notes: NoteSource,
    /// Its dataset source.
    pub data: Arc<dyn DataSource>,
    /// Its policy family's settings, built on the run's data when it starts.
    pub policy: Arc<dyn PolicyKind>,
    /// The list potential.
    pub reward: Arc<Reward>,
    /// Its stages, in order.
    pub stages: Vec<Arc<dyn Stage>>,
}

impl AsRef<RunPlan> for TypedPlan {
    fn as_ref(&self) -> &RunPlan {
        &self.plan
    }
}

impl AsRef<RunPlan> for RunPlan {
    fn as_ref(&self) -> &RunPlan {
        self
    }
}

/// Where in the file a problem lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Place {
    Key(&'static str),
    Stage(usize),
    Reward(usize),
}

/// Checks every run of `exp`; all problems at once, or nothing.
pub fn check(exp: &Experiment, plans: &[RunPlan], plugins: &Plugins) -> Result<(), ExperimentError> {
    resolve(exp, plans, plugins).map(|_| ())
}

/// Resolves every run of `exp` into its typed plan; all problems of all
/// runs at once, or the plans.
pub fn resolve(
    exp: &Experiment,
    plans: &[RunPlan],
    plugins: &Plugins,
) -> Result<Vec<TypedPlan>, ExperimentError> {
    // The same problem in several runs of a grid is said once, with its runs.
    let mut problems: Vec<(Place, String, Vec<String>)> = Vec::new();
    if let Err(e) = validate_name("experiment name", &exp.file.name) {
        problems.push((Place::Key("name"), e.to_string(), Vec::new()));
    }
    let mut typed = Vec::with_capacity(plans.len());
    if find_key(&exp.text, "devices").is_some() && find_key(&exp.text, "device").is_some() {
        problems.push((
            Place::Key("devices"),
            "`device` and `devices` both name where the run trains; give one `device`, or several `devices` (data parallel), not both".into(),
            Vec::new(),
        ));
    }
    for plan in plans {
        match resolve_run(plan, plugins) {
            Ok(t) => typed.push(t),
            Err(found) => {
                for (place, message) in found {
                    match problems.iter_mut().find(|(p, m, _)| *p == place && *m == message) {
                        Some((.., runs)) => runs.push(plan.name.clone()),
                        None => problems.push((place, message, vec![plan.name.clone()])),
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        return Ok(typed);
    }
    problems.sort_by_key(|(place, ..)| line_of(&exp.text, *place));
    let errors = problems
        .into_iter()
        .map(|(place, message, runs)| {
            let (line, column) = line_of(&exp.text, place);
            let runs = if plans.len() > 1 && !runs.is_empty() {
                format!(" (runs: {})", runs.join(", "))
            } else {
                String::new()
            };
            ExperimentError::File {
                path: exp.path.clone(),
                line,
                column,
                message: format!("{message}{runs}"),
            }
        })
        .collect();
    Err(ExperimentError::Many(errors))
}

/// One run's typed plan, or every problem of it.
fn resolve_run(plan: &RunPlan, plugins: &Plugins) -> Result<TypedPlan, Vec<(Place, String)>> {
    let file = &plan.file;
    let mut out = Vec::new();
    // Each part, where it resolves; the plan is whole when every part is.
    fn part<T, E: ToString>(r: Result<T, E>, place: Place, out: &mut Vec<(Place, String)>) -> Option<T> {
        r.map_err(|e| out.push((place, e.to_string()))).ok()
    }
    if let Err(e) = validate_name("run name", &plan.name) {
        out.push((Place::Key("ablations"), e.to_string()));
    }
    let device_key = if file.devices.is_empty() {
        "device"
    } else {
        "devices"
    };
    let devices = part(file.train_devices(), Place::Key(device_key), &mut out);
    let split = part(file.split.config(plan.seed), Place::Key("split"), &mut out);
    match file.eval.split_names() {
        Err(e) => out.push((Place::Key("eval"), e.to_string())),
        Ok(splits) if !splits.contains(&SplitName::Test) => out.push((
            Place::Key("eval"),
            format!(
                "eval.splits {:?} leaves out `test`, the split every summary, `compare` and `status` report; add it",
                file.eval.splits
            ),
        )),
        Ok(_) => {}
    }
    let notes = part(file.notes.source(), Place::Key("notes"), &mut out);
    let data = part(plugins.data.build(&file.data, &()), Place::Key("data"), &mut out);
    let policy = part(
        plugins.policy.build(&file.policy, &()),
        Place::Key("policy"),
        &mut out,
    );
    let terms: Vec<_> = file
        .reward
        .iter()
        .enumerate()
        .map(|(i, spec)| part(plugins.reward_term(spec), Place::Reward(i), &mut out))
        .collect();
    // The reward as a whole (weights, names), once its terms build.
    let reward = match terms.into_iter().collect::<Option<Vec<_>>>() {
        Some(terms) => match Reward::from_terms(terms) {
            Ok(reward) => Some(reward),
            Err(e) => {
                let place = if file.reward.is_empty() {
                    Place::Key("reward")
                } else {
                    Place::Reward(0)
                };
                out.push((place, format!("reward: {e}")));
                None
            }
        },
        None => None,
    };
    let stages = stages_of(file, plugins, &mut out);
    match (devices, split, notes, data, policy, reward, stages) {
        (Some(devices), Some(split), Some(notes), Some(data), Some(policy), Some(reward), Some(stages))
            if out.is_empty() =>
        {
            Ok(TypedPlan {
                plan: plan.clone(),
                devices,
                split,
                notes,
                data: Arc::from(data),
                policy: Arc::from(policy),
                reward: Arc::new(reward),
                stages,
            })
        }
        _ if out.is_empty() => Err(vec![(
            Place::Key("name"),
            "the run could not be resolved, and no setting was said to be at fault (a bug of rxalign's: please report it)".into(),
        )]),
        _ => Err(out),
    }
}

/// The stages of `file`, each built once, and checked in order: every
/// artifact a stage reads is given by a stage before it, and no two stages
/// record one method. `None` where a stage is invalid (said once, at its
/// line: the later stages are checked against what it would give once
/// corrected, not said to miss it).
fn stages_of(
    file: &crate::ExperimentFile,
    plugins: &Plugins,
    out: &mut Vec<(Place, String)>,
) -> Option<Vec<Arc<dyn Stage>>> {
    if file.stages.is_empty() {
        out.push((
            Place::Key("stages"),
            "stages: the list is empty; a run needs at least one stage (`references`, `baselines`, `classifier`, `sft`, ...)".into(),
        ));
    }
    // Each stage, or for an invalid one a stand-in of its kind and name
    // (`false`: what it would give once corrected; `None`: not even that).
    let built: Vec<Option<(Arc<dyn Stage>, bool)>> = file
        .stages
        .iter()
        .enumerate()
        .map(|(i, spec)| match plugins.stage.build(spec, &()) {
            Ok(stage) => Some((Arc::from(stage), true)),
            Err(e) => {
                out.push((Place::Stage(i), format!("stages[{i}]: {e}")));
                stand_in(spec, plugins).map(|s| (Arc::from(s), false))
            }
        })
        .collect();
    // What the stages so far give; `None` once a stage's gifts are not
    // known before it runs (nothing after it is then checked).
    let mut given: Option<Vec<ArtifactId>> =
        Some(vec![ArtifactId::of::<Predictions>(crate::runner::GROUND_TRUTH)]);
    // Which stage records each method: one method, one stage (its
    // predictions file and summary row are the method's).
    let mut owners: BTreeMap<String, usize> = BTreeMap::new();
    for (i, (spec, stage)) in file.stages.iter().zip(&built).enumerate() {
        let Some((stage, valid)) = stage else {
            given = None;
            continue;
        };
        let contract = stage.contract();
        let methods = contract
            .records
            .clone()
            .unwrap_or_else(|| vec![stage.method().to_string()]);
        // A stand-in's methods are its defaults', not the file's: they
        // count as given, but are not said to clash (nor are its needs
        // checked: the stage is said once, by its own error).
        for method in methods.into_iter().filter(|_| *valid) {
            let taken = if method == crate::runner::GROUND_TRUTH {
                Some("the ground truth's rows".to_string())
            } else {
                owners.get(&method).map(|j| format!("stages[{j}]"))
            };
            match taken {
                Some(by) => out.push((
                    Place::Stage(i),
                    format!(
                        "stages[{i}]: stage `{}` records method `{method}`, as {by} does: one would overwrite the other's predictions and summary row; give one of them another `name`",
                        spec.kind
                    ),
                )),
                None => {
                    owners.insert(method, i);
                }
            }
        }
        if let Some(known) = given.as_ref().filter(|_| *valid) {
            for need in contract
                .needs
                .iter()
                .filter(|n| !known.iter().any(|id| n.met_by(id)))
            {
                let later = built
                    .iter()
                    .enumerate()
                    .skip(i + 1)
                    .find(|(_, s)| {
                        s.as_ref()
                            .is_some_and(|(s, _)| gifts(s.as_ref()).iter().any(|id| need.met_by(id)))
                    })
                    .map(|(j, _)| j);
                out.push((Place::Stage(i), unmet(i, &spec.kind, need, known, later)));
            }
        }
        match (&mut given, contract.records.is_some()) {
            (Some(known), true) => known.extend(gifts(stage.as_ref())),
            (given, _) => *given = None,
        }
    }
    built
        .into_iter()
        .map(|s| s.and_then(|(stage, valid)| valid.then_some(stage)))
        .collect()
}

/// The artifacts a stage says it gives: its methods' predictions and the
/// rest of its gifts.
fn gifts(stage: &dyn Stage) -> Vec<ArtifactId> {
    let contract = stage.contract();
    contract
        .records
        .unwrap_or_default()
        .into_iter()
        .map(ArtifactId::of::<Predictions>)
        .chain(contract.gives)
        .collect()
}

/// What stage `i` (of kind `kind`) is told of a need no earlier stage
/// meets, given what the earlier stages give (`known`) and the first later
/// stage that would (`later`).
fn unmet(i: usize, kind: &str, need: &Need, known: &[ArtifactId], later: Option<usize>) -> String {
    let after = later.map_or(String::new(), |j| {
        format!(" (stages[{j}] gives it, after this stage: stages run in the order listed)")
    });
    match need {
        Need::Named(id) => {
            let names: Vec<&str> = known
                .iter()
                .filter(|k| k.kind == id.kind)
                .map(|k| k.name.as_str())
                .collect();
            let (what, verb) = if id.kind == <Predictions as crate::stage::Artifact>::KIND {
                (format!("method `{}`", id.name), "records")
            } else {
                (id.to_string(), "gives")
            };
            format!(
                "stages[{i}]: stage `{kind}` reads {what}, which no earlier stage {verb}{}{after}; earlier stages {}: {}",
                rxalign_core::suggest::did_you_mean(&id.name, names.iter().copied()),
                if verb == "records" { "record" } else { "give" },
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            )
        }
        Need::Latest { kind: what, given_by } => format!(
            "stages[{i}]: stage `{kind}` starts from a {what}, which no earlier stage gives{after}: put {given_by} before it"
        ),
    }
}

/// A stage of the same kind and `name` as `spec` with default settings:
/// what an invalid stage would give the later ones, once corrected.
fn stand_in(spec: &PluginSpec<StageSlot>, plugins: &Plugins) -> Option<Box<dyn Stage>> {
    let mut bare = PluginSpec::<StageSlot>::new(&spec.kind);
    if let Some(name) = spec.param("name") {
        bare.params
            .insert(ron::Value::String("name".into()), name.clone());
    }
    plugins
        .stage
        .build(&bare, &())
        .or_else(|_| {
            plugins
                .stage
                .build(&PluginSpec::<StageSlot>::new(&spec.kind), &())
        })
        .ok()
}

/// The line and column of a place in the file's text (1-based): a
/// top-level key, or an element of the `stages` or `reward` list.
fn line_of(text: &str, place: Place) -> (usize, usize) {
    let (key, index) = match place {
        Place::Key(key) => (key, None),
        Place::Stage(i) => ("stages", Some(i)),
        Place::Reward(i) => ("reward", Some(i)),
    };
    let Some(at) = find_key(text, key) else {
        return (1, 1);
    };
    let at = index.and_then(|i| nth_element(text, at, i)).unwrap_or(at);
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    (line, at - before.rfind('\n').map_or(0, |i| i + 1) + 1)
}

/// The byte offset of `key:` at the top level of the file (outside
/// comments and strings), if written.
fn find_key(text: &str, key: &str) -> Option<usize> {
    let mut depth = 0i32;
    for (at, c, in_code) in scan(text) {
        if !in_code {
            continue;
        }
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ if depth == 1 && text[at..].starts_with(key) => {
                let rest = text[at + key.len()..].trim_start();
                let boundary = at == 0 || !text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_');
                if boundary && rest.starts_with(':') {
                    return Some(at);
                }
            }
            _ => {}
        }
    }
    None
}

/// The byte offset of the `index`-th element (from 0) of the list that
/// follows the key at `key_at`.
fn nth_element(text: &str, key_at: usize, index: usize) -> Option<usize> {
    let mut depth = 0i32;
    let mut seen = 0usize;
    let mut open = false;
    for (at, c, in_code) in scan(&text[key_at..]) {
        if !in_code {
            continue;
        }
        match c {
            '[' if depth == 0 => {
                depth = 1;
                open = true;
            }
            '(' | '[' | '{' => {
                if depth == 1 && open {
                    if seen == index {
                        return Some(key_at + at);
                    }
                    seen += 1;
                }
                depth += 1;
            }
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 && open {
                    return None;
                }
            }
            _ => {}
        }
    }
    None
}

/// Each character with its byte offset and whether it is code (not in a
/// string or a comment).
fn scan(text: &str) -> impl Iterator<Item = (usize, char, bool)> + '_ {
    let mut in_string = false;
    let mut escaped = false;
    let mut in_comment = false;
    let mut prev = '\0';
    text.char_indices().map(move |(at, c)| {
        let code = if in_comment {
            if c == '\n' {
                in_comment = false;
            }
            false
        } else if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            false
        } else if c == '"' {
            in_string = true;
            false
        } else if c == '/' && prev == '/' {
            in_comment = true;
            false
        } else {
            true
        };
        prev = c;
        (at, c, code)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_found_outside_comments_and_strings() {
        let text = "(\n  // stages: not here\n  name: \"stages: nor here\",\n  device: \"cpu\",\n  stages: [\n    (kind: \"a\"),\n    (kind: \"b\", x: (1)),\n  ],\n)";
        assert_eq!(line_of(text, Place::Key("device")), (4, 3));
        assert_eq!(line_of(text, Place::Stage(0)), (6, 5));
        assert_eq!(line_of(text, Place::Stage(1)), (7, 5));
        // A place not written falls back to the file's start.
        assert_eq!(line_of(text, Place::Key("policy")), (1, 1));
    }
}
