//! `visits.jsonl`: what a reader shows of an inspected visit without the
//! dataset: age, sex, diagnoses and procedures with their names, the drugs
//! of the previous visit, the ground truth, and the note with its mentions
//! of drugs, conditions and allergies marked by byte ranges.
//!
//! One line per visit that has a recorded trajectory (the visits of
//! `trajectories.jsonl`, each once), so the file stays as small as
//! `eval.trajectories` keeps it; a note longer than [`MAX_NOTE_BYTES`] is
//! cut (and says so). The lines follow the version of their folder's
//! `run.json`; the file was added in run format 1.1, and a run folder of
//! format 1.0 has none.

use serde::{Deserialize, Serialize};

use crate::{Cohort, Sex};

/// The longest note kept in a visit line, in bytes (cut at a character
/// boundary below it).
pub const MAX_NOTE_BYTES: usize = 16 * 1024;

/// A code with its human name (the code again where the vocabulary has none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedCode {
    pub code: String,
    pub name: String,
}

/// What a mention in a note names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MentionKind {
    /// A drug of the run's vocabulary, by name.
    Drug,
    /// A condition: a diagnosis's name, or a phrase the data source maps to
    /// a diagnosis code.
    Condition,
    /// An allergy: a named allergen the data source knows, or an allergy
    /// cue (`allerg…`, `NKDA`).
    Allergy,
}

impl MentionKind {
    pub fn word(self) -> &'static str {
        match self {
            Self::Drug => "drug",
            Self::Condition => "condition",
            Self::Allergy => "allergy",
        }
    }
}

/// A span of a note, `note[start..end]` (byte offsets on character
/// boundaries), and what it names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mention {
    pub start: usize,
    pub end: usize,
    pub kind: MentionKind,
    /// The drug or diagnosis code it names, where it names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The note says it is absent: a negation (`No known drug allergies`,
    /// `NKDA`), or a mention in the scope of one (`denies chest pain`).
    /// A reader shows it as a negation, not as a finding (since run
    /// format 1.2; a reader of 1.1 shows it as a finding).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub negated: bool,
}

/// One line of `visits.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VisitDetails {
    pub visit_id: String,
    pub patient_id: String,
    /// The split the visit is in (`train`, `val`, `test`).
    pub split: String,
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default)]
    pub age: Option<f32>,
    #[serde(default)]
    pub sex: Option<Sex>,
    pub diagnoses: Vec<NamedCode>,
    pub procedures: Vec<NamedCode>,
    /// The drugs of the patient's previous visit (codes), if there was one.
    #[serde(default)]
    pub previous_drugs: Option<Vec<String>>,
    /// The prescribed drugs (codes).
    pub ground_truth: Vec<String>,
    #[serde(default)]
    pub note: Option<String>,
    /// Whether the note was cut at [`MAX_NOTE_BYTES`].
    #[serde(default)]
    pub note_cut: bool,
    /// The note's mentions, in order, none overlapping.
    #[serde(default)]
    pub mentions: Vec<Mention>,
}

impl VisitDetails {
    /// The details of visit `index` of `cohort`, its note's mentions found
    /// with `lexicon`.
    pub fn of(cohort: &Cohort, index: usize, split: &str, lexicon: &Lexicon) -> Self {
        let v = &cohort.visits[index];
        let named = |vocab: &crate::Vocab, codes: &[usize]| {
            codes
                .iter()
                .map(|&i| NamedCode {
                    code: vocab.code(i).to_string(),
                    name: vocab.name(i).to_string(),
                })
                .collect()
        };
        let (note, note_cut) = match &v.note {
            Some(n) if n.len() > MAX_NOTE_BYTES => {
                let mut end = MAX_NOTE_BYTES;
                while !n.is_char_boundary(end) {
                    end -= 1;
                }
                (Some(n[..end].to_string()), true)
            }
            other => (other.clone(), false),
        };
        let mentions = note.as_deref().map(|n| lexicon.find(n)).unwrap_or_default();
        Self {
            visit_id: v.visit_id.clone(),
            patient_id: v.patient_id.clone(),
            split: split.to_string(),
            time: v.time.clone(),
            age: v.age,
            sex: v.sex,
            diagnoses: named(&cohort.diagnoses, &v.diagnoses),
            procedures: named(&cohort.procedures, &v.procedures),
            previous_drugs: v
                .previous_drugs()
                .map(|d| crate::trajectory::codes_of(d, &cohort.drugs)),
            ground_truth: crate::trajectory::codes_of(&v.drugs, &cohort.drugs),
            note,
            note_cut,
            mentions,
        }
    }
}

/// One phrase to look for.
#[derive(Clone, Debug)]
struct Entry {
    /// ASCII-lowercased.
    phrase: String,
    kind: MentionKind,
    code: Option<String>,
    /// Whether the phrase may be the start of a longer word (`allerg`).
    prefix: bool,
    /// Whether the phrase itself says the thing is absent (`NKDA`).
    negation: bool,
}

/// Phrases that say there is no allergy, marked as negated allergy
/// mentions (as clinical notes write them: MIMIC's `Patient recorded as
/// having No Known Allergies to Drugs`, `NKDA`, `Allergies: none known`).
const NO_ALLERGY: [&str; 11] = [
    "no known allergies to drugs",
    "no known drug allergies",
    "no known drug allergy",
    "no known allergies",
    "no known allergy",
    "no drug allergies",
    "no allergies",
    "allergies: none known",
    "allergies: none",
    "nkda",
    "nka",
];

/// Words that put what follows them, in the same clause, in a negation's
/// scope (after NegEx: Chapman et al., 2001).
const NEGATION_TRIGGERS: [&str; 13] = [
    "no",
    "not",
    "denies",
    "denied",
    "deny",
    "without",
    "negative for",
    "no history of",
    "no evidence of",
    "no signs of",
    "free of",
    "ruled out",
    "absence of",
];

/// A negation reaches this many words past its trigger, at most.
const NEGATION_SCOPE_WORDS: usize = 8;

/// Words that end a negation's scope (besides `.`, `;`, `:` and line ends).
const SCOPE_ENDS: [&str; 5] = ["but", "however", "although", "except", "though"];

/// Phrases to mark in notes: found case-insensitively (ASCII), as whole
/// words, longest first, never overlapping.
#[derive(Clone, Debug, Default)]
pub struct Lexicon {
    entries: Vec<Entry>,
}

/// Phrases shorter than this are not looked for (too many false hits).
const MIN_PHRASE: usize = 3;

impl Lexicon {
    /// Drug names (kind `drug`) and diagnosis names (kind `condition`) of a
    /// cohort's vocabularies, with the allergy cues `allerg…` and `NKDA`.
    pub fn of(cohort: &Cohort) -> Self {
        let mut l = Self::default();
        for (_, code, name) in cohort.drugs.iter() {
            l.add(MentionKind::Drug, name, Some(code));
        }
        for (_, code, name) in cohort.diagnoses.iter() {
            l.add(MentionKind::Condition, name, Some(code));
        }
        l.add_prefix(MentionKind::Allergy, "allerg");
        l.add_no_allergy_phrases();
        l
    }

    /// Adds the phrases that say there is no allergy (`NO_ALLERGY`), as
    /// negated allergy mentions; [`Lexicon::of`] has them.
    pub fn add_no_allergy_phrases(&mut self) {
        for phrase in NO_ALLERGY {
            self.entries.push(Entry {
                phrase: phrase.to_string(),
                kind: MentionKind::Allergy,
                code: None,
                prefix: false,
                negation: true,
            });
        }
    }

    /// Adds a whole-word phrase (skipped when shorter than three bytes or
    /// the same as the code).
    pub fn add(&mut self, kind: MentionKind, phrase: &str, code: Option<&str>) {
        let phrase = phrase.trim();
        if phrase.len() < MIN_PHRASE || code.is_some_and(|c| c == phrase) {
            return;
        }
        self.entries.push(Entry {
            phrase: phrase.to_ascii_lowercase(),
            kind,
            code: code.map(str::to_string),
            prefix: false,
            negation: false,
        });
    }

    /// Adds a phrase that may start a longer word.
    pub fn add_prefix(&mut self, kind: MentionKind, phrase: &str) {
        self.entries.push(Entry {
            phrase: phrase.to_ascii_lowercase(),
            kind,
            code: None,
            prefix: true,
            negation: false,
        });
    }

    /// The mentions in `text`, in order.
    pub fn find(&self, text: &str) -> Vec<Mention> {
        let lower = text.to_ascii_lowercase();
        let bytes = lower.as_bytes();
        let word = |i: usize| bytes.get(i).is_some_and(|b| b.is_ascii_alphanumeric());
        let mut order: Vec<&Entry> = self.entries.iter().collect();
        order.sort_by_key(|e| std::cmp::Reverse(e.phrase.len()));
        let mut taken = vec![false; bytes.len()];
        let mut out = Vec::new();
        for e in order {
            let mut from = 0;
            while let Some(at) = lower[from..].find(e.phrase.as_str()).map(|i| from + i) {
                let end = at + e.phrase.len();
                from = at + 1;
                while !lower.is_char_boundary(from) {
                    from += 1;
                }
                let bounded = (at == 0 || !word(at - 1)) && (e.prefix || !word(end));
                if !bounded || taken[at..end].iter().any(|&t| t) {
                    continue;
                }
                // A prefix mention runs to the end of its word.
                let mut stop = end;
                if e.prefix {
                    while word(stop) && !taken[stop] {
                        stop += 1;
                    }
                }
                taken[at..stop].iter_mut().for_each(|t| *t = true);
                out.push(Mention {
                    start: at,
                    end: stop,
                    kind: e.kind,
                    code: e.code.clone(),
                    negated: e.negation,
                });
            }
        }
        out.sort_by_key(|m| m.start);
        negate(&lower, &mut out);
        out
    }
}

/// Marks the mentions in a negation's scope: those that begin within
/// [`NEGATION_SCOPE_WORDS`] words after a trigger, in the same clause; and
/// an allergy heading (`Allergies:`) whose next mention, within the same
/// reach, is negated (`Allergies: NKDA`). `lower` is the ASCII-lowercased
/// note, `mentions` its mentions in order.
fn negate(lower: &str, mentions: &mut [Mention]) {
    let bytes = lower.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric();
    // Word starts, for counting words between two offsets.
    let word_starts: Vec<usize> = (0..bytes.len())
        .filter(|&i| is_word(bytes[i]) && (i == 0 || !is_word(bytes[i - 1])))
        .collect();
    let words_between = |a: usize, b: usize| {
        word_starts.partition_point(|&w| w < b) - word_starts.partition_point(|&w| w < a)
    };
    let clause_ends_between = |a: usize, b: usize| {
        lower[a..b].contains(['.', ';', ':', '\n'])
            || SCOPE_ENDS.iter().any(|w| {
                lower[a..b].match_indices(w).any(|(i, _)| {
                    let (s, e) = (a + i, a + i + w.len());
                    (s == 0 || !is_word(bytes[s - 1])) && (e >= bytes.len() || !is_word(bytes[e]))
                })
            })
    };
    let in_scope = |from: usize, to: usize| {
        from <= to && !clause_ends_between(from, to) && words_between(from, to) <= NEGATION_SCOPE_WORDS
    };
    let mut triggers: Vec<(usize, usize)> = Vec::new();
    for t in NEGATION_TRIGGERS {
        for (i, _) in lower.match_indices(t) {
            let end = i + t.len();
            if (i == 0 || !is_word(bytes[i - 1])) && (end >= bytes.len() || !is_word(bytes[end])) {
                triggers.push((i, end));
            }
        }
    }
    triggers.sort_unstable_by_key(|&(_, end)| end);
    for m in mentions.iter_mut() {
        // The triggers that end before it, nearest first, within a reach
        // no scope of a few words exceeds.
        let before = triggers.partition_point(|&(_, end)| end <= m.start);
        if !m.negated
            && triggers[..before]
                .iter()
                .rev()
                .take_while(|&&(_, end)| m.start - end <= 40 * NEGATION_SCOPE_WORDS)
                .any(|&(_, end)| in_scope(end, m.start))
        {
            m.negated = true;
        }
    }
    // A heading such as `Allergies:` says what its section says.
    for k in 0..mentions.len() {
        let m = &mentions[k];
        let heading = m.kind == MentionKind::Allergy
            && !m.negated
            && lower[m.end..].trim_start_matches(' ').starts_with(':');
        if !heading {
            continue;
        }
        let colon = m.end + lower[m.end..].find(':').unwrap_or(0) + 1;
        if let Some(next) = mentions.get(k + 1)
            && next.negated
            && next.start >= colon
            && words_between(colon, next.start) <= NEGATION_SCOPE_WORDS
            && !lower[colon..next.start].contains(['.', ';'])
        {
            mentions[k].negated = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_whole_words_longest_first_and_never_overlap() {
        let mut l = Lexicon::default();
        l.add(MentionKind::Condition, "COPD", Some("496"));
        l.add(MentionKind::Condition, "COPD exacerbation", Some("49121"));
        l.add(MentionKind::Drug, "metformin", Some("A10BA02"));
        l.add(MentionKind::Drug, "in", Some("X"));
        l.add_prefix(MentionKind::Allergy, "allerg");
        l.add(MentionKind::Allergy, "penicillin", None);
        let note = "Severe COPD exacerbation. Allergic to penicillin; on Metformin. Not metformins. COPD.";
        let ms = l.find(note);
        let found: Vec<(&str, MentionKind, Option<&str>)> = ms
            .iter()
            .map(|m| (&note[m.start..m.end], m.kind, m.code.as_deref()))
            .collect();
        assert_eq!(
            found,
            vec![
                ("COPD exacerbation", MentionKind::Condition, Some("49121")),
                ("Allergic", MentionKind::Allergy, None),
                ("penicillin", MentionKind::Allergy, None),
                ("Metformin", MentionKind::Drug, Some("A10BA02")),
                ("COPD", MentionKind::Condition, Some("496")),
            ]
        );
    }

    /// Real phrasings of clinical notes (MIMIC-III discharge summaries'
    /// allergy section, admission notes' review of systems).
    #[test]
    fn negated_mentions_are_negations_not_findings() {
        let mut l = Lexicon::default();
        l.add_prefix(MentionKind::Allergy, "allerg");
        l.add_no_allergy_phrases();
        l.add(MentionKind::Allergy, "penicillin", None);
        l.add(MentionKind::Condition, "chest pain", Some("78650"));
        l.add(MentionKind::Condition, "shortness of breath", Some("78605"));
        l.add(MentionKind::Condition, "hypertension", Some("4019"));
        l.add(MentionKind::Condition, "diabetes", Some("25000"));
        l.add(MentionKind::Drug, "aspirin", Some("B01AC06"));
        let marks = |note: &str| -> Vec<(String, bool)> {
            l.find(note)
                .iter()
                .map(|m| (note[m.start..m.end].to_string(), m.negated))
                .collect()
        };
        let m = |pairs: &[(&str, bool)]| -> Vec<(String, bool)> {
            pairs.iter().map(|(s, n)| (s.to_string(), *n)).collect()
        };
        assert_eq!(
            marks("Allergies:\nPatient recorded as having No Known Allergies to Drugs\n"),
            m(&[("Allergies", true), ("No Known Allergies to Drugs", true)])
        );
        assert_eq!(
            marks("Allergies: NKDA"),
            m(&[("Allergies", true), ("NKDA", true)])
        );
        assert_eq!(
            marks("No known drug allergies."),
            m(&[("No known drug allergies", true)])
        );
        assert_eq!(
            marks("Allergies: none known."),
            m(&[("Allergies: none known", true)])
        );
        assert_eq!(
            marks("Pt denies chest pain, shortness of breath. Takes aspirin daily."),
            m(&[
                ("chest pain", true),
                ("shortness of breath", true),
                ("aspirin", false)
            ])
        );
        assert_eq!(
            marks("History of hypertension, no diabetes."),
            m(&[("hypertension", false), ("diabetes", true)])
        );
        // A finding stays a finding, and a clause ends a negation's scope.
        assert_eq!(
            marks("Allergies: penicillin (rash)."),
            m(&[("Allergies", false), ("penicillin", false)])
        );
        assert_eq!(
            marks("Allergic to penicillin but denies other allergies"),
            m(&[("Allergic", false), ("penicillin", false), ("allergies", true)])
        );
        assert_eq!(
            marks("No fever; chest pain since this morning."),
            m(&[("chest pain", false)])
        );
        // Far past its trigger, a mention is no longer in its scope.
        assert_eq!(
            marks("No change in the dose of the evening medicine for her known long standing hypertension"),
            m(&[("hypertension", false)])
        );
    }

    #[test]
    fn offsets_stay_on_character_boundaries() {
        let mut l = Lexicon::default();
        l.add(MentionKind::Drug, "aspirin", Some("B01AC06"));
        let note = "Ödem, aspirin – fièvre aspirin";
        let ms = l.find(note);
        assert_eq!(ms.len(), 2);
        for m in &ms {
            assert_eq!(&note[m.start..m.end], "aspirin");
        }
    }
}
