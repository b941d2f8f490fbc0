//! Prompts: plain-text templates (shipped defaults in `templates/`, or files
//! an experiment names) with placeholders filled from the visit and the
//! list, wrapped in the model's chat template by the tokenizer.
//!
//! Placeholders: `{age}`, `{sex}`, `{diagnoses}` and `{procedures}` (names,
//! comma-separated), `{previous}` (the previous visit's drug names),
//! `{note}` (the note, cut to `note_chars` characters), `{list}` (the list's
//! drug names, one per line, in drug-index order; `(empty)` when empty).

use std::path::{Path, PathBuf};

use rxalign_core::visit::Sex;
use rxalign_core::{Cohort, DrugSet};
use serde::{Deserialize, Serialize};

use rxalign_policy::PolicyError;

/// The placeholders a template may use.
pub const PLACEHOLDERS: [&str; 7] = [
    "age",
    "sex",
    "diagnoses",
    "procedures",
    "previous",
    "note",
    "list",
];

const SYSTEM: &str = include_str!("templates/system.txt");
const ADD: &str = include_str!("templates/add.txt");
const REMOVE: &str = include_str!("templates/remove.txt");
const EDIT: &str = include_str!("templates/edit.txt");

/// Template files of an experiment; unset ones are the shipped defaults.
/// Paths are read as given (relative to the working directory).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TemplateFiles {
    /// The system message.
    #[serde(deserialize_with = "some", skip_serializing_if = "Option::is_none")]
    pub system: Option<PathBuf>,
    /// FLAME's add prompt.
    #[serde(deserialize_with = "some", skip_serializing_if = "Option::is_none")]
    pub add: Option<PathBuf>,
    /// FLAME's remove prompt.
    #[serde(deserialize_with = "some", skip_serializing_if = "Option::is_none")]
    pub remove: Option<PathBuf>,
    /// The one-prompt `+ name` / `- name` variant.
    #[serde(deserialize_with = "some", skip_serializing_if = "Option::is_none")]
    pub edit: Option<PathBuf>,
}

/// An optional field written as a plain value (`add: "add.txt"`).
pub(crate) fn some<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The templates' texts.
#[derive(Clone, Debug, PartialEq)]
pub struct Templates {
    pub system: String,
    pub add: String,
    pub remove: String,
    pub edit: String,
}

fn read(path: Option<&Path>, default: &str) -> Result<String, PolicyError> {
    let text = match path {
        None => default.to_string(),
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| PolicyError::Invalid(format!("reading the prompt template {}: {e}", p.display())))?,
    };
    check(&text, path)?;
    Ok(text.trim_end().to_string())
}

/// Refuses a `{word}` that is not a known placeholder.
fn check(text: &str, path: Option<&Path>) -> Result<(), PolicyError> {
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        let word = &after[..close];
        if !word.is_empty()
            && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !PLACEHOLDERS.contains(&word)
        {
            return Err(PolicyError::Invalid(format!(
                "prompt template {}: unknown placeholder `{{{word}}}`; known: {}",
                path.map_or("(default)".into(), |p| p.display().to_string()),
                PLACEHOLDERS.join(", ")
            )));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

impl TemplateFiles {
    /// The texts, defaults where unset; a file's unknown placeholder is an
    /// error.
    pub fn load(&self) -> Result<Templates, PolicyError> {
        Ok(Templates {
            system: read(self.system.as_deref(), SYSTEM)?,
            add: read(self.add.as_deref(), ADD)?,
            remove: read(self.remove.as_deref(), REMOVE)?,
            edit: read(self.edit.as_deref(), EDIT)?,
        })
    }
}

fn names(cohort_vocab: &rxalign_core::Vocab, codes: impl Iterator<Item = usize>, sep: &str) -> String {
    let v: Vec<&str> = codes.map(|c| cohort_vocab.name(c)).collect();
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(sep)
    }
}

/// The user message of `template` for `visit` with `list`.
pub fn render(template: &str, cohort: &Cohort, visit: usize, list: &DrugSet, note_chars: usize) -> String {
    let v = &cohort.visits[visit];
    let age = v
        .age
        .map_or("age unknown".into(), |a| format!("{} years", a.round()));
    let sex = match v.sex {
        Some(Sex::Female) => "female",
        Some(Sex::Male) => "male",
        None => "sex unknown",
    };
    let note = v.note.as_deref().map_or("(none)".to_string(), |n| {
        let n = n.trim();
        match n.char_indices().nth(note_chars) {
            Some((cut, _)) => format!("{} ...", &n[..cut]),
            None => n.to_string(),
        }
    });
    let previous = v
        .previous_drugs()
        .map_or("(none)".into(), |p| names(&cohort.drugs, p.iter(), ", "));
    let list = if list.is_empty() {
        "(empty)".into()
    } else {
        names(&cohort.drugs, list.iter(), "\n")
    };
    let mut out = template.to_string();
    for (key, value) in [
        ("{age}", age.as_str()),
        ("{sex}", sex),
        (
            "{diagnoses}",
            &names(&cohort.diagnoses, v.diagnoses.iter().copied(), ", "),
        ),
        (
            "{procedures}",
            &names(&cohort.procedures, v.procedures.iter().copied(), ", "),
        ),
        ("{previous}", &previous),
        ("{note}", &note),
        ("{list}", &list),
    ] {
        out = out.replace(key, value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_render_the_visit_and_the_list() {
        let cohort = rxalign_policy::test_support::tiny();
        let t = TemplateFiles::default().load().unwrap();
        let text = render(&t.add, &cohort, 0, &DrugSet::from_indices(6, [1, 3]), 100);
        assert!(text.contains("Diagnoses: a\n"), "{text}");
        assert!(text.contains("Medication list:\nd1\nd3\n"), "{text}");
        assert!(text.contains("age unknown, sex unknown"), "{text}");
        assert!(!text.contains('{'), "{text}");
        let empty = render(&t.remove, &cohort, 1, &DrugSet::empty(6), 100);
        assert!(empty.contains("Medication list:\n(empty)\n"), "{empty}");
    }

    #[test]
    fn an_unknown_placeholder_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("add.txt");
        std::fs::write(&path, "Age {age}; {weight}").unwrap();
        let files = TemplateFiles {
            add: Some(path),
            ..TemplateFiles::default()
        };
        let e = files.load().unwrap_err().to_string();
        assert!(e.contains("`{weight}`"), "{e}");
        // JSON-like braces are text.
        assert!(check("{\"a\": 1} {age}", None).is_ok());
    }
}
