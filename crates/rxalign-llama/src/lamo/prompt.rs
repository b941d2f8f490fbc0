//! The yes/no question of one (visit, drug), rendered from a plain-text
//! template that researchers can edit.
//!
//! A template is text with placeholders in braces:
//!
//! | placeholder | replaced by |
//! | --- | --- |
//! | `{age}` | the age in whole years, or `unknown` |
//! | `{sex}` | `woman`, `man`, or `patient` where unknown |
//! | `{diagnoses}` | the diagnoses' names (the code where a name is missing), `; `-separated, or `none` |
//! | `{procedures}` | the procedures' names, likewise |
//! | `{previous}` | the drugs of the previous visit by name, or `none` |
//! | `{note}` | the clinical note (at most `max_note_chars` characters, cut at a word), or `none` |
//! | `{drug}` | the drug asked about, by name |
//!
//! Any other `{...}` is an error when the template is read, so a misspelt
//! placeholder cannot silently stay in every prompt. The default template is
//! `experiments/prompts/lamo-yes-no.txt`.

use std::path::Path;

use rxalign_core::{Cohort, Sex, Vocab};

use rxalign_policy::PolicyError;

/// The template shipped with the project.
pub const DEFAULT_TEMPLATE: &str = include_str!("../../../../experiments/prompts/lamo-yes-no.txt");

const PLACEHOLDERS: [&str; 7] = [
    "age",
    "sex",
    "diagnoses",
    "procedures",
    "previous",
    "note",
    "drug",
];

/// A checked prompt template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptTemplate {
    text: String,
    /// Longest note kept, in characters.
    max_note_chars: usize,
}

impl PromptTemplate {
    /// Checks the placeholders of `text`; the rendered prompt ends where the
    /// text ends (trailing whitespace removed), right before the answer.
    pub fn new(text: &str, max_note_chars: usize) -> Result<Self, PolicyError> {
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or_else(|| {
                PolicyError::Invalid(format!(
                    "prompt template: `{{` without `}}` near `{}`",
                    after.chars().take(20).collect::<String>()
                ))
            })?;
            let name = &after[..close];
            if !PLACEHOLDERS.contains(&name) {
                return Err(PolicyError::Invalid(format!(
                    "prompt template: unknown placeholder `{{{name}}}`; known: {}",
                    PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
                )));
            }
            rest = &after[close + 1..];
        }
        if !text.contains("{drug}") {
            return Err(PolicyError::Invalid(
                "prompt template: no `{drug}`: every question must name its drug".into(),
            ));
        }
        Ok(Self {
            text: text.trim_end().to_string(),
            max_note_chars,
        })
    }

    /// Reads a template file.
    pub fn from_file(path: &Path, max_note_chars: usize) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            PolicyError::Invalid(format!("reading the prompt template {}: {e}", path.display()))
        })?;
        Self::new(&text, max_note_chars).map_err(|e| PolicyError::Invalid(format!("{}: {e}", path.display())))
    }

    /// The question about `drug` for visit `visit` of `cohort`.
    pub fn render(&self, cohort: &Cohort, visit: usize, drug: usize) -> String {
        let v = &cohort.visits[visit];
        let names = |vocab: &Vocab, items: &mut dyn Iterator<Item = usize>| {
            let all: Vec<&str> = items
                .map(|i| match vocab.name(i) {
                    "" => vocab.code(i),
                    n => n,
                })
                .collect();
            if all.is_empty() {
                "none".to_string()
            } else {
                all.join("; ")
            }
        };
        let age = v.age.map_or("unknown".to_string(), |a| format!("{a:.0}"));
        let sex = match v.sex {
            Some(Sex::Female) => "woman",
            Some(Sex::Male) => "man",
            None => "patient",
        };
        let previous = v
            .previous_drugs()
            .map_or("none".to_string(), |p| names(&cohort.drugs, &mut p.iter()));
        let note = match v.note.as_deref().map(str::trim) {
            None | Some("") => "none".to_string(),
            Some(n) => cut(n, self.max_note_chars),
        };
        let drug_name = match cohort.drugs.name(drug) {
            "" => cohort.drugs.code(drug),
            n => n,
        };
        let values = [
            ("{age}", age),
            ("{sex}", sex.to_string()),
            (
                "{diagnoses}",
                names(&cohort.diagnoses, &mut v.diagnoses.iter().copied()),
            ),
            (
                "{procedures}",
                names(&cohort.procedures, &mut v.procedures.iter().copied()),
            ),
            ("{previous}", previous),
            ("{note}", note),
            ("{drug}", drug_name.to_string()),
        ];
        // One pass over the template, so that a value containing braces
        // (a note quoting `{drug}`) is never expanded again.
        let mut out = String::with_capacity(self.text.len() + 256);
        let mut rest = self.text.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open..];
            let close = after.find('}').map_or(after.len(), |c| c + 1);
            let key = &after[..close];
            match values.iter().find(|(k, _)| *k == key) {
                Some((_, value)) => out.push_str(value),
                None => out.push_str(key),
            }
            rest = &after[close..];
        }
        out.push_str(rest);
        out
    }
}

/// `text` cut to at most `max` characters, at the last space before the
/// limit where there is one, with `...` marking the cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let head: String = text.chars().take(max).collect();
    let head = match head.rfind(' ') {
        Some(i) if i > 0 => &head[..i],
        _ => head.as_str(),
    };
    format!("{head} ...")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rxalign_policy::test_support::tiny;

    #[test]
    fn the_default_template_renders_every_field_with_names() {
        let mut cohort = tiny();
        cohort.visits[0].age = Some(71.6);
        cohort.visits[0].sex = Some(Sex::Female);
        cohort.visits[0].note = Some("Allergic to {drug} and penicillin.".into());
        let t = PromptTemplate::new(DEFAULT_TEMPLATE, 1000).unwrap();
        let p = t.render(&cohort, 0, 2);
        assert!(p.starts_with("Patient: 72-year-old woman."), "{p}");
        assert!(p.contains("Diagnoses: a."), "{p}");
        assert!(p.contains("Procedures: none."), "{p}");
        assert!(p.contains("Drugs at the previous visit: none."), "{p}");
        // A note's braces are text, not placeholders.
        assert!(p.contains("Note: Allergic to {drug} and penicillin."), "{p}");
        assert!(p.ends_with("prescribed d2? Answer Yes or No."), "{p}");
        let other = t.render(&cohort, 1, 4);
        assert!(other.contains("unknown-year-old patient") && other.contains("prescribed d4?"));
        assert!(other.contains("Diagnoses: b."));
    }

    #[test]
    fn unknown_placeholders_and_a_missing_drug_are_refused() {
        let e = PromptTemplate::new("{age} {drugs}", 10).unwrap_err().to_string();
        assert!(
            e.contains("unknown placeholder `{drugs}`") && e.contains("{drug}"),
            "{e}"
        );
        let e = PromptTemplate::new("{age} {sex}", 10).unwrap_err().to_string();
        assert!(e.contains("no `{drug}`"), "{e}");
        let e = PromptTemplate::new("{drug} {note", 10).unwrap_err().to_string();
        assert!(e.contains("without"), "{e}");
    }

    #[test]
    fn long_notes_are_cut_at_a_word() {
        assert_eq!(cut("short note", 20), "short note");
        assert_eq!(cut("one two three four", 12), "one two ...");
        assert_eq!(cut("abcdefghij", 4), "abcd ...");
    }
}
