//! `visits.jsonl`: each visit of the run's recorded trajectories once, with
//! what a reader shows of it (codes with names, the note with its mentions
//! of drugs, conditions and allergies marked).

use std::collections::HashSet;

use rxalign_core::Trajectory;
use rxalign_core::run::{Lexicon, MentionKind, RunFolder, VisitDetails};

use crate::ExperimentError;
use crate::data::LoadedData;

/// The phrases marked in notes: the cohort's drug and diagnosis names and
/// the allergy cues (see [`Lexicon::of`]) and, for the synthetic clinic,
/// the condition phrases its notes use (mapped to their diagnosis codes)
/// and its allergens. Other sources carry no allergy field, so their notes
/// get the cues only (`Allergies:`, `allergic`, `NKDA`).
pub(crate) fn lexicon(data: &LoadedData) -> Lexicon {
    let mut lexicon = Lexicon::of(&data.cohort);
    if data.clinic.is_some()
        && let Ok(world) = rxalign_data::World::embedded()
    {
        for (i, c) in world.conditions.iter().enumerate() {
            let code = (i < world.diagnoses.len()).then(|| world.diagnoses.code(i));
            lexicon.add(MentionKind::Condition, &c.phrase, code);
        }
        for a in &world.allergies {
            lexicon.add(MentionKind::Allergy, &a.name, None);
        }
    }
    lexicon
}

/// Writes the visits of `trajectories` (each once, in their order) when
/// they differ from `written`, the visit ids written last time.
pub(crate) fn write(
    folder: &RunFolder,
    data: &LoadedData,
    lexicon: &mut Option<Lexicon>,
    trajectories: &[Trajectory],
    written: &mut Vec<String>,
) -> Result<(), ExperimentError> {
    let mut seen = HashSet::new();
    let wanted: Vec<&Trajectory> = trajectories
        .iter()
        .filter(|t| seen.insert(t.visit_id.as_str()))
        .collect();
    if wanted.len() == written.len() && wanted.iter().zip(written.iter()).all(|(t, w)| t.visit_id == *w) {
        return Ok(());
    }
    let lexicon = lexicon.get_or_insert_with(|| self::lexicon(data));
    let cohort = &data.cohort;
    let details: Vec<VisitDetails> = wanted
        .iter()
        .filter_map(|t| {
            cohort
                .visit_index(&t.visit_id)
                .map(|i| VisitDetails::of(cohort, i, &t.split, lexicon))
        })
        .collect();
    folder.write_visits(&details)?;
    *written = wanted.iter().map(|t| t.visit_id.clone()).collect();
    Ok(())
}
