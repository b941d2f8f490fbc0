//! Resolving a file's runs into validated plans before anything trains (as
//! ripgrep resolves its arguments before it searches): every plugin is
//! built with its settings checked, the device and splits parsed, and the
//! stage order checked against what each stage needs and gives. Every
//! problem of every run is reported at once, each at the line of the
//! setting at fault.

use std::collections::{BTreeMap, BTreeSet};

use rxalign_core::SplitName;
use rxalign_core::run::validate_name;

use crate::ExperimentError;
use crate::ablation::RunPlan;
use crate::plugin::{PluginSpec, StageSlot};
use crate::plugins::Plugins;
use crate::schema::Experiment;

/// Where in the file a problem lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Place {
    Key(&'static str),
    Stage(usize),
    Reward(usize),
}

/// Checks every run of `exp`; all problems at once, or nothing.
pub fn check(exp: &Experiment, plans: &[RunPlan], plugins: &Plugins) -> Result<(), ExperimentError> {
    // The same problem in several runs of a grid is said once, with its runs.
    let mut problems: Vec<(Place, String, Vec<String>)> = Vec::new();
    if let Err(e) = validate_name("experiment name", &exp.file.name) {
        problems.push((Place::Key("name"), e.to_string(), Vec::new()));
    }
    if find_key(&exp.text, "devices").is_some() && find_key(&exp.text, "device").is_some() {
        problems.push((
            Place::Key("devices"),
            "`device` and `devices` both name where the run trains; give one `device`, or several `devices` (data parallel), not both".into(),
            Vec::new(),
        ));
    }
    for plan in plans {
        for (place, message) in problems_of(plan, plugins) {
            match problems.iter_mut().find(|(p, m, _)| *p == place && *m == message) {
                Some((.., runs)) => runs.push(plan.name.clone()),
                None => problems.push((place, message, vec![plan.name.clone()])),
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
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

/// Every problem of one run's plan.
fn problems_of(plan: &RunPlan, plugins: &Plugins) -> Vec<(Place, String)> {
    let file = &plan.file;
    let mut out = Vec::new();
    if let Err(e) = validate_name("run name", &plan.name) {
        out.push((Place::Key("ablations"), e.to_string()));
    }
    if let Err(e) = file.train_devices() {
        let key = if file.devices.is_empty() {
            "device"
        } else {
            "devices"
        };
        out.push((Place::Key(key), e.to_string()));
    }
    if let Err(e) = file.split.config(plan.seed) {
        out.push((Place::Key("split"), e.to_string()));
    }
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
    if let Err(e) = file.notes.check() {
        out.push((Place::Key("notes"), e.to_string()));
    }
    if let Err(e) = plugins.data.build(&file.data, &()) {
        out.push((Place::Key("data"), e.to_string()));
    }
    if let Err(e) = plugins.policy.build(&file.policy, &()) {
        out.push((Place::Key("policy"), e.to_string()));
    }
    let mut terms_built = true;
    for (i, spec) in file.reward.iter().enumerate() {
        if let Err(e) = plugins.reward.build(spec, &()) {
            out.push((Place::Reward(i), e.to_string()));
            terms_built = false;
        }
    }
    // The reward as a whole (weights, names), once its terms build.
    if terms_built && let Err(e) = plugins.reward_of(&file.reward) {
        let place = if file.reward.is_empty() {
            Place::Key("reward")
        } else {
            Place::Reward(0)
        };
        out.push((place, format!("reward: {e}")));
    }
    // The stage order: what each stage needs, from what the earlier gave.
    let mut trained = false;
    let mut recorded: Option<BTreeSet<String>> = Some([crate::runner::GROUND_TRUTH.to_string()].into());
    // Which stage records each method: one method, one stage (its
    // predictions file and summary row are the method's).
    let mut owners: BTreeMap<String, usize> = BTreeMap::new();
    if file.stages.is_empty() {
        out.push((
            Place::Key("stages"),
            "stages: the list is empty; a run needs at least one stage (`references`, `baselines`, `classifier`, `sft`, ...)".into(),
        ));
    }
    for (i, spec) in file.stages.iter().enumerate() {
        let (stage, valid) = match plugins.stage.build(spec, &()) {
            Ok(stage) => (stage, true),
            Err(e) => {
                out.push((Place::Stage(i), format!("stages[{i}]: {e}")));
                // The stage is there, only wrong: the later stages are
                // checked against what it would give with its defaults (so
                // it is reported once, not again as missing by the next
                // stage); when even that cannot be told, not checked.
                match stand_in(spec, plugins) {
                    Some(stage) => (stage, false),
                    None => {
                        trained = true;
                        recorded = None;
                        continue;
                    }
                }
            }
        };
        let contract = stage.contract();
        let methods = contract
            .records
            .clone()
            .unwrap_or_else(|| vec![stage.method().to_string()]);
        // A stand-in's methods are its defaults', not the file's: they
        // count as recorded, but are not said to clash (nor are its needs
        // checked: the stage is said once, by its own error).
        for method in methods.into_iter().filter(|_| valid) {
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
        if valid && contract.needs_policy && !trained {
            out.push((
                Place::Stage(i),
                format!(
                    "stages[{i}]: stage `{}` starts from a trained policy: put an `sft` stage before it",
                    spec.kind
                ),
            ));
        }
        if let Some(known) = recorded.as_ref().filter(|_| valid) {
            for method in &contract.needs_methods {
                if !known.contains(method) {
                    out.push((
                        Place::Stage(i),
                        format!(
                            "stages[{i}]: stage `{}` reads method `{method}`, which no earlier stage records{}; earlier stages record: {}",
                            spec.kind,
                            rxalign_core::suggest::did_you_mean(method, known.iter().map(String::as_str)),
                            known.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
        }
        trained |= contract.trains_policy;
        match (&mut recorded, contract.records) {
            (Some(known), Some(methods)) => known.extend(methods),
            (recorded, _) => *recorded = None,
        }
    }
    out
}

/// A stage of the same kind and `name` as `spec` with default settings:
/// what an invalid stage would give the later ones, once corrected.
fn stand_in(spec: &PluginSpec<StageSlot>, plugins: &Plugins) -> Option<Box<dyn crate::stage::Stage>> {
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
