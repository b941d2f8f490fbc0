//! The line parser: one generated line becomes an edit of the list or a
//! refusal.
//!
//! Normalisation, in order:
//! 1. trim white space;
//! 2. strip one list marker: a bullet (`*`, `•`, and `-`, `+` in the
//!    two-prompt style) or a number (`1.`, `1)`), each followed by white
//!    space;
//! 3. in the one-prompt `edit` style, a leading `+` (add) or `-` (remove)
//!    is the sign of the edit and is required (white space after it is
//!    optional); in the two-prompt style the prompt says whether the line
//!    adds or removes;
//! 4. collapse runs of white space into one space and compare the name
//!    case-insensitively (Unicode lower case) with the drug vocabulary's
//!    names, exactly otherwise.
//!
//! A line is a refusal when it is empty after normalisation, names no drug
//! of the vocabulary, adds a drug already in the list (a duplicate), or
//! removes a drug that is not in the list (for FLAME's remove prompt: not
//! in the start list, or already removed).

use std::collections::HashMap;

use rxalign_core::{Action, DrugSet, Vocab};

use crate::EnvError;

/// Which edit a line makes when its drug is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    /// FLAME's add prompt: the line names a drug to add.
    Add,
    /// FLAME's remove prompt: the line names a drug of the start list to
    /// remove.
    Remove,
    /// The one-prompt variant: `+ name` adds, `- name` removes, against the
    /// current list.
    Signed,
}

/// Why a line is a refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    Empty,
    NoSign,
    Unknown(String),
    Duplicate(usize),
    NotInList(usize),
}

/// Drug names, normalised, to drug indices.
#[derive(Clone, Debug)]
pub struct DrugNames {
    index: HashMap<String, usize>,
}

/// Lower case with runs of white space collapsed to one space.
pub fn fold(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl DrugNames {
    /// The names of `drugs`; two drugs whose names fold to the same text
    /// are an error (a line could not tell them apart).
    pub fn new(drugs: &Vocab) -> Result<Self, EnvError> {
        let mut index = HashMap::new();
        for (i, code, name) in drugs.iter() {
            let key = fold(name);
            if key.is_empty() {
                return Err(EnvError::Config(format!("drug `{code}` has an empty name")));
            }
            if let Some(j) = index.insert(key, i) {
                return Err(EnvError::Config(format!(
                    "drugs `{}` and `{code}` have the same name up to case and spaces (`{name}`)",
                    drugs.code(j)
                )));
            }
        }
        Ok(Self { index })
    }

    pub fn get(&self, name: &str) -> Option<usize> {
        self.index.get(&fold(name)).copied()
    }
}

/// Strips one list marker (`* `, `• `, and `- `, `+ ` unless they are the
/// sign of a `signed` line; or `12. ` / `12) `) from the start of `line`.
fn strip_marker(line: &str, signed: bool) -> &str {
    if let Some(c) = line.chars().next() {
        let bullet = matches!(c, '*' | '•') || (!signed && matches!(c, '-' | '+'));
        if bullet {
            let rest = &line[c.len_utf8()..];
            if rest.starts_with(char::is_whitespace) {
                return rest.trim_start();
            }
        }
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 {
        let rest = &line[digits..];
        if let Some(after) = rest.strip_prefix('.').or_else(|| rest.strip_prefix(')'))
            && after.starts_with(char::is_whitespace)
        {
            return after.trim_start();
        }
    }
    line
}

/// The edit `line` makes to `list` (the episode started from `start`), or
/// why it is a refusal.
pub fn parse_line(
    line: &str,
    kind: LineKind,
    names: &DrugNames,
    list: &DrugSet,
    start: &DrugSet,
) -> Result<Action, Refused> {
    let text = line.trim();
    let (text, add) = match kind {
        LineKind::Add => (strip_marker(text, false), true),
        LineKind::Remove => (strip_marker(text, false), false),
        LineKind::Signed => {
            let text = strip_marker(text, true);
            if let Some(rest) = text.strip_prefix('+') {
                (rest.trim_start(), true)
            } else if let Some(rest) = text.strip_prefix('-') {
                (rest.trim_start(), false)
            } else if text.is_empty() {
                return Err(Refused::Empty);
            } else {
                return Err(Refused::NoSign);
            }
        }
    };
    if text.is_empty() {
        return Err(Refused::Empty);
    }
    let drug = names
        .get(text)
        .ok_or_else(|| Refused::Unknown(text.to_string()))?;
    if add {
        if list.contains(drug) {
            return Err(Refused::Duplicate(drug));
        }
        Ok(Action::Add(drug))
    } else {
        let removable = list.contains(drug) && (kind == LineKind::Signed || start.contains(drug));
        if !removable {
            return Err(Refused::NotInList(drug));
        }
        Ok(Action::Remove(drug))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> Vocab {
        let mut v = Vocab::new();
        for (code, name) in [("A", "Aspirin"), ("B", "Beta Blocker"), ("C", "Calcium")] {
            v.insert(code, name);
        }
        v
    }

    #[test]
    fn names_case_spaces_and_markers() {
        let names = DrugNames::new(&vocab()).unwrap();
        let empty = DrugSet::empty(3);
        for line in [
            "Aspirin",
            "  aspirin ",
            "ASPIRIN",
            "- Aspirin",
            "* aspirin",
            "• Aspirin",
            "+ Aspirin",
            "1. Aspirin",
            "12) aspirin",
        ] {
            assert_eq!(
                parse_line(line, LineKind::Add, &names, &empty, &empty),
                Ok(Action::Add(0)),
                "{line:?}"
            );
        }
        assert_eq!(
            parse_line("beta   blocker", LineKind::Add, &names, &empty, &empty),
            Ok(Action::Add(1))
        );
        // A marker needs white space after it; a near name is not a name.
        for line in ["-Aspirin", "Aspirin.", "Aspirins", "Asp irin"] {
            assert!(
                matches!(
                    parse_line(line, LineKind::Add, &names, &empty, &empty),
                    Err(Refused::Unknown(_))
                ),
                "{line:?}"
            );
        }
        assert_eq!(
            parse_line("   ", LineKind::Add, &names, &empty, &empty),
            Err(Refused::Empty)
        );
        assert_eq!(
            parse_line("- ", LineKind::Add, &names, &empty, &empty),
            Err(Refused::Unknown("-".into()))
        );
    }

    #[test]
    fn duplicates_and_removals_outside_the_list_are_refused() {
        let names = DrugNames::new(&vocab()).unwrap();
        let start = DrugSet::from_indices(3, [0, 1]);
        // The add prompt: a drug already in the list (the start, or added
        // by an earlier line) is a duplicate.
        let mut list = start.clone();
        list.insert(2);
        assert_eq!(
            parse_line("aspirin", LineKind::Add, &names, &list, &start),
            Err(Refused::Duplicate(0))
        );
        assert_eq!(
            parse_line("calcium", LineKind::Add, &names, &list, &start),
            Err(Refused::Duplicate(2))
        );
        // The remove prompt: only drugs of the start list, once.
        assert_eq!(
            parse_line("Beta Blocker", LineKind::Remove, &names, &list, &start),
            Ok(Action::Remove(1))
        );
        assert_eq!(
            parse_line("calcium", LineKind::Remove, &names, &list, &start),
            Err(Refused::NotInList(2)),
            "added, not in the start list"
        );
        list.remove(1);
        assert_eq!(
            parse_line("beta blocker", LineKind::Remove, &names, &list, &start),
            Err(Refused::NotInList(1)),
            "already removed"
        );
    }

    #[test]
    fn signed_lines_edit_the_current_list() {
        let names = DrugNames::new(&vocab()).unwrap();
        let start = DrugSet::from_indices(3, [0]);
        let mut list = start.clone();
        list.insert(2);
        let p = |line| parse_line(line, LineKind::Signed, &names, &list, &start);
        assert_eq!(p("+ Beta Blocker"), Ok(Action::Add(1)));
        assert_eq!(p("+beta blocker"), Ok(Action::Add(1)));
        assert_eq!(
            p("- calcium"),
            Ok(Action::Remove(2)),
            "added earlier, removable now"
        );
        assert_eq!(p("- aspirin"), Ok(Action::Remove(0)));
        assert_eq!(p("+ aspirin"), Err(Refused::Duplicate(0)));
        assert_eq!(p("- beta blocker"), Err(Refused::NotInList(1)));
        assert_eq!(p("aspirin"), Err(Refused::NoSign));
        assert_eq!(
            p("1. + aspirin"),
            Err(Refused::Duplicate(0)),
            "numbering, then the sign"
        );
        assert_eq!(p("+ nothing"), Err(Refused::Unknown("nothing".into())));
    }

    #[test]
    fn names_that_fold_together_are_an_error() {
        let mut v = vocab();
        v.insert("D", "aspirin ");
        assert!(DrugNames::new(&v).is_err());
    }
}
