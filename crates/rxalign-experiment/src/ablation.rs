//! Ablations: paths into the experiment file with values; the runs are the
//! product of the grid, for each named variant.
//!
//! A path names fields by name and list elements by index:
//! `stages[1].step_weight`, `reward[1].weight`, `data.patients`, `seed`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ExperimentError;
use crate::plugin::Schemas;
use crate::schema::{Ablations, Experiment, ExperimentFile, locate};

/// One run of an experiment: its name, its group (the variant and grid
/// values without the seed: what `compare` averages over seeds), its seed,
/// its overrides and the fully resolved file.
#[derive(Clone, Debug)]
pub struct RunPlan {
    pub name: String,
    pub group: String,
    pub seed: u64,
    pub overrides: Vec<(String, ron::Value)>,
    pub file: ExperimentFile,
}

/// What a run folder's `resolved.ron` holds: the run's identity and every
/// setting, ablation values and seed included.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedRun {
    pub run: String,
    pub group: String,
    pub seed: u64,
    pub overrides: BTreeMap<String, ron::Value>,
    pub experiment: ExperimentFile,
}

#[derive(Debug)]
enum Step {
    Field(String),
    Index(usize),
}

fn steps(path: &str) -> Result<Vec<Step>, String> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`{part}` is not a field name"));
        }
        out.push(Step::Field(name.to_string()));
        while !rest.is_empty() {
            let (index, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("unclosed `[` in `{part}`"))?;
            out.push(Step::Index(
                index.parse().map_err(|_| format!("`{index}` is not an index"))?,
            ));
            rest = after.strip_prefix('[').unwrap_or(after);
            if !after.is_empty() && !after.starts_with('[') {
                return Err(format!("unexpected `{after}` in `{part}`"));
            }
        }
    }
    Ok(out)
}

/// Sets `value` at `path` in a file's value tree. The last field may be
/// absent (a defaulted setting); everything before it must exist.
pub fn set_path(tree: &mut ron::Value, path: &str, value: ron::Value) -> Result<(), String> {
    let steps = steps(path)?;
    let mut node = tree;
    let mut at = String::new();
    for (i, step) in steps.iter().enumerate() {
        let last = i + 1 == steps.len();
        while let ron::Value::Option(Some(inner)) = node {
            node = inner.as_mut();
        }
        match step {
            Step::Field(name) => {
                let ron::Value::Map(map) = node else {
                    return Err(format!("`{at}` has no fields"));
                };
                let key = ron::Value::String(name.clone());
                if last {
                    map.insert(key, value);
                    return Ok(());
                }
                node = map.get_mut(&key).ok_or_else(|| {
                    format!(
                        "no field `{name}`{} in the file",
                        if at.is_empty() {
                            String::new()
                        } else {
                            format!(" under `{at}`")
                        }
                    )
                })?;
                at = if at.is_empty() {
                    name.clone()
                } else {
                    format!("{at}.{name}")
                };
            }
            Step::Index(k) => {
                let ron::Value::Seq(items) = node else {
                    return Err(format!("`{at}` is not a list"));
                };
                let len = items.len();
                let item = items
                    .get_mut(*k)
                    .ok_or_else(|| format!("`{at}` has {len} elements, no [{k}]"))?;
                if last {
                    *item = value;
                    return Ok(());
                }
                node = item;
                at = format!("{at}[{k}]");
            }
        }
    }
    Ok(())
}

fn label(value: &ron::Value) -> String {
    match value {
        ron::Value::String(s) => s.clone(),
        other => ron::to_string(other).unwrap_or_default(),
    }
}

/// Folder-safe text.
fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._=-".contains(c) {
                c
            } else if c == ',' {
                '.'
            } else {
                '_'
            }
        })
        .collect()
}

/// Expands an experiment into its runs, checking each override: a bad path
/// or value is an error at the line and column of the path in the file.
pub fn expand(exp: &Experiment, schemas: std::sync::Arc<Schemas>) -> Result<Vec<RunPlan>, ExperimentError> {
    let Ablations { grid, variants } = &exp.file.ablations;
    let ablations_at = exp.text.find("ablations").unwrap_or(0);
    let error_at = |path: &str, message: String| {
        let (line, column) = locate(&exp.text, &format!("\"{path}\""), ablations_at).unwrap_or((1, 1));
        ExperimentError::File {
            path: exp.path.clone(),
            line,
            column,
            message: format!("ablation path `{path}`: {message}"),
        }
    };
    let base: Vec<(String, Vec<(String, ron::Value)>)> = if variants.is_empty() {
        vec![(String::new(), Vec::new())]
    } else {
        variants
            .iter()
            .map(|v| {
                (
                    v.name.clone(),
                    v.set.iter().map(|(k, x)| (k.clone(), x.clone())).collect(),
                )
            })
            .collect()
    };
    let mut combos: Vec<Vec<(String, ron::Value)>> = vec![Vec::new()];
    for (path, values) in grid {
        let values = values.values(path).map_err(|m| error_at(path, m))?;
        if values.is_empty() {
            return Err(error_at(path, "lists no values".into()));
        }
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values
                    .iter()
                    .map(move |v| [c.clone(), vec![(path.clone(), v.clone())]].concat())
            })
            .collect();
    }
    let mut runs = Vec::new();
    for (variant, set) in &base {
        for combo in &combos {
            let mut overrides = set.clone();
            for (path, value) in combo {
                if overrides.iter().any(|(p, _)| p == path) {
                    return Err(error_at(
                        path,
                        format!("is set by variant `{variant}` and by the grid"),
                    ));
                }
                overrides.push((path.clone(), value.clone()));
            }
            let mut tree = exp.tree.clone();
            if let ron::Value::Map(m) = &mut tree {
                m.remove(&ron::Value::String("ablations".into()));
            }
            for (path, value) in &overrides {
                set_path(&mut tree, path, value.clone()).map_err(|m| error_at(path, m))?;
            }
            let file: ExperimentFile =
                crate::plugin::with_schemas(schemas.clone(), || tree.clone().into_rust()).map_err(|e| {
                    let culprit = overrides
                        .iter()
                        .map(|(p, _)| p.as_str())
                        .find(|p| e.to_string().contains(p.rsplit('.').next().unwrap_or(p)));
                    error_at(
                        culprit
                            .or(overrides.last().map(|(p, _)| p.as_str()))
                            .unwrap_or(""),
                        e.to_string(),
                    )
                })?;
            let mut parts: Vec<String> = Vec::new();
            if !variant.is_empty() {
                parts.push(variant.clone());
            }
            parts.extend(
                overrides
                    .iter()
                    .filter(|(p, _)| p != "seed" && !set.iter().any(|(q, _)| q == p))
                    .map(|(p, v)| format!("{p}={}", label(v))),
            );
            let group = if parts.is_empty() {
                "base".to_string()
            } else {
                parts.join(",")
            };
            let name = safe(&format!("{group}.seed={}", file.seed));
            runs.push(RunPlan {
                name,
                group,
                seed: file.seed,
                overrides,
                file,
            });
        }
    }
    let mut seen = std::collections::HashSet::new();
    for r in &runs {
        if !seen.insert(r.name.clone()) {
            return Err(ExperimentError::Invalid(format!(
                "two runs are both named `{}`; give the variants distinct names",
                r.name
            )));
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> ron::Value {
        ron::from_str("(seed: 1, reward: [(kind: \"jaccard\", weight: 1.0), (kind: \"ddi_rate\", weight: 0.2)], policy: (kind: \"x\", hidden: 8))").unwrap()
    }

    fn get<'a>(v: &'a ron::Value, key: &str) -> &'a ron::Value {
        let ron::Value::Map(m) = v else {
            panic!("not a map")
        };
        &m[&ron::Value::String(key.into())]
    }

    #[test]
    fn paths_set_fields_elements_and_options() {
        let mut t = tree();
        set_path(&mut t, "reward[1].weight", ron::Value::from(0.5)).unwrap();
        let ron::Value::Seq(items) = get(&t, "reward") else {
            panic!()
        };
        assert_eq!(get(&items[1], "weight"), &ron::Value::from(0.5));
        set_path(&mut t, "seed", ron::Value::from(7u64)).unwrap();
        set_path(&mut t, "device", ron::Value::from("cpu")).unwrap();
        set_path(&mut t, "policy.hidden", ron::Value::from(16u64)).unwrap();
        assert!(
            set_path(&mut t, "reward[5].weight", ron::Value::Unit)
                .unwrap_err()
                .contains("has 2 elements")
        );
        assert!(
            set_path(&mut t, "rewards[0].weight", ron::Value::Unit)
                .unwrap_err()
                .contains("no field `rewards`")
        );
        assert!(
            set_path(&mut t, "seed.x", ron::Value::Unit)
                .unwrap_err()
                .contains("has no fields")
        );
        assert!(
            set_path(&mut t, "reward[x]", ron::Value::Unit)
                .unwrap_err()
                .contains("not an index")
        );
    }
}
