//! Discharge summaries without the answer.
//!
//! A discharge summary lists what was prescribed ("Discharge Medications",
//! and the discharge instructions often repeat it): a note that kept it would
//! make every result meaningless. Only the sections FLAME and LAMO keep are
//! kept, found by their headings: history of present illness, past medical
//! history, allergies and medications on admission. Everything else is
//! dropped, and a kept section that still mentions discharge medications is
//! dropped too (and counted).

/// The sections kept, by normalised heading.
const KEPT: [&str; 4] = [
    "history of present illness",
    "past medical history",
    "allergies",
    "medications on admission",
];

/// What reading one note found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SectionStats {
    /// Kept sections.
    pub kept: u64,
    /// Kept sections dropped because they mention discharge medications.
    pub dropped_for_leak: u64,
}

/// A heading at the start of a line: up to the first colon, letters and a
/// few punctuation marks, at most 60 characters; or a whole line that is a
/// known heading without its colon. Returns the normalised heading and the
/// text after it.
fn heading(line: &str) -> Option<(String, &str)> {
    let trimmed = line.trim_start();
    let (head, rest) = match trimmed.find(':') {
        Some(at) => (&trimmed[..at], &trimmed[at + 1..]),
        None => (trimmed.trim_end(), ""),
    };
    let ok = !head.is_empty()
        && head.len() <= 60
        && head.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && head
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " /&,()'-".contains(c));
    if !ok {
        return None;
    }
    let norm = head
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    if trimmed.contains(':') || is_known(&norm) {
        Some((norm, rest))
    } else {
        None
    }
}

/// Headings recognised even without a colon on their own line.
fn is_known(norm: &str) -> bool {
    KEPT.contains(&norm)
        || norm.starts_with("discharge")
        || norm.starts_with("brief hospital course")
        || norm.starts_with("followup instructions")
        || norm.starts_with("follow-up instructions")
        || norm.starts_with("transitional issues")
}

/// The kept sections of a discharge summary, each as `Heading: text` on its
/// own paragraph.
pub fn keep_sections(note: &str, stats: &mut SectionStats) -> String {
    let mut sections: Vec<(String, String)> = Vec::new();
    let mut current: Option<usize> = None;
    for line in note.lines() {
        if let Some((head, rest)) = heading(line) {
            current = if KEPT.contains(&head.as_str()) {
                sections.push((head, rest.trim().to_string()));
                Some(sections.len() - 1)
            } else {
                None
            };
        } else if let Some(i) = current {
            let text = &mut sections[i].1;
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(line.trim_end());
        }
    }
    let mut out = Vec::new();
    for (head, text) in sections {
        let lower = text.to_lowercase();
        if lower.contains("discharge medication") || lower.contains("discharge instruction") {
            stats.dropped_for_leak += 1;
            continue;
        }
        stats.kept += 1;
        let text = text.trim();
        if !text.is_empty() {
            out.push(format!("{}: {text}", capitalise(&head)));
        }
    }
    out.join("\n\n")
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A discharge summary in the layout of MIMIC's, built here.
    fn summary() -> String {
        [
            "Admission Date:  [**2151-7-16**]       Discharge Date:  [**2151-8-4**]",
            "Service: MEDICINE",
            "Allergies:",
            "Penicillins / Sulfa (Sulfonamide Antibiotics)",
            "Chief Complaint:",
            "shortness of breath",
            "History of Present Illness:",
            "67 yo M with CHF and AFib on warfarin presents with dyspnea.",
            "He reports orthopnea.",
            "Past Medical History:",
            "1. CHF, EF 30%",
            "2. Atrial fibrillation",
            "Social History:",
            "Lives with wife.",
            "Medications on Admission:",
            "Warfarin 5 mg daily",
            "Metoprolol 25 mg [**Hospital1 **]",
            "Brief Hospital Course:",
            "Diuresed with furosemide. Started on spironolactone.",
            "Discharge Medications:",
            "1. Spironolactone 25 mg Tablet Sig: One (1) Tablet PO DAILY",
            "2. Furosemide 40 mg Tablet",
            "Discharge Diagnosis:",
            "Acute on chronic systolic heart failure",
            "DISCHARGE INSTRUCTIONS",
            "Please take spironolactone every day.",
            "Followup Instructions:",
            "Cardiology in 2 weeks",
        ]
        .join("\n")
    }

    #[test]
    fn keeps_the_four_sections_and_nothing_of_the_discharge() {
        let mut stats = SectionStats::default();
        let kept = keep_sections(&summary(), &mut stats);
        assert_eq!(
            stats,
            SectionStats {
                kept: 4,
                dropped_for_leak: 0
            }
        );
        assert!(
            kept.contains("History of present illness: 67 yo M with CHF"),
            "{kept}"
        );
        assert!(kept.contains("He reports orthopnea."));
        assert!(kept.contains("Past medical history: 1. CHF"));
        assert!(kept.contains("Allergies: Penicillins / Sulfa"));
        assert!(kept.contains("Medications on admission: Warfarin 5 mg daily"));
        let lower = kept.to_lowercase();
        for leak in [
            "discharge",
            "spironolactone",
            "furosemide",
            "followup",
            "lives with wife",
            "shortness of breath",
        ] {
            assert!(!lower.contains(leak), "kept text leaks `{leak}`:\n{kept}");
        }
    }

    #[test]
    fn a_kept_section_that_names_discharge_medications_is_dropped() {
        let note =
            "History of Present Illness:\nSee discharge medications below.\nPast Medical History:\nHTN";
        let mut stats = SectionStats::default();
        let kept = keep_sections(note, &mut stats);
        assert_eq!(kept, "Past medical history: HTN");
        assert_eq!(
            stats,
            SectionStats {
                kept: 1,
                dropped_for_leak: 1
            }
        );
    }

    #[test]
    fn text_before_any_heading_and_unknown_layouts_are_dropped() {
        let mut stats = SectionStats::default();
        assert_eq!(
            keep_sections("free text with no headings\nDischarge meds: aspirin", &mut stats),
            ""
        );
    }
}
