//! A reader of the clinic's notes by plain string matching: what a
//! recommender that reads the text (and nothing the text does not say) can
//! know. It backs the `notes-and-codes rule` reference, the evidence that
//! the notes carry what the codes lack.

use rxalign_core::DrugSet;

use super::world::World;

/// What a note says, as far as matching the world's names finds it.
#[derive(Clone, Debug, PartialEq)]
pub struct NoteReading {
    /// Conditions named anywhere in the note.
    pub conditions: Vec<usize>,
    /// Conditions named in a sentence that says `severe`.
    pub severe: Vec<usize>,
    /// Drugs excluded by the allergies the note names.
    pub allergic: DrugSet,
    /// Drugs named in a sentence about home medications.
    pub home_medications: Vec<usize>,
}

/// Reads a note sentence by sentence: allergy sentences mention `allerg`,
/// home-medication sentences `home` or `on admission`, severity sentences
/// `severe`; condition phrases match longest first, so `COPD exacerbation`
/// is not read as `COPD`.
pub fn read_note(world: &World, note: &str) -> NoteReading {
    let mut phrases: Vec<(usize, String)> = world
        .conditions
        .iter()
        .enumerate()
        .map(|(i, c)| (i, c.phrase.to_lowercase()))
        .collect();
    phrases.sort_by_key(|(_, p)| std::cmp::Reverse(p.len()));
    let mut reading = NoteReading {
        conditions: Vec::new(),
        severe: Vec::new(),
        allergic: DrugSet::empty(world.drugs.len()),
        home_medications: Vec::new(),
    };
    for sentence in note.split(". ").map(str::to_lowercase) {
        let mut rest = sentence.clone();
        let mut named = Vec::new();
        for (c, phrase) in &phrases {
            if let Some(at) = rest.find(phrase.as_str()) {
                named.push(*c);
                rest.replace_range(at..at + phrase.len(), &" ".repeat(phrase.len()));
            }
        }
        if sentence.contains("allerg") && !sentence.contains("none known") {
            for allergy in &world.allergies {
                if sentence.contains(&allergy.name.to_lowercase()) {
                    reading.allergic.union_with(&allergy.drugs);
                }
            }
        }
        if sentence.contains("home") || sentence.contains("on admission") {
            for (d, _, name) in world.drugs.iter() {
                if sentence.contains(&name.to_lowercase()) {
                    reading.home_medications.push(d);
                }
            }
        }
        if sentence.contains("severe") {
            reading.severe.extend(&named);
        }
        reading.conditions.extend(named);
    }
    for list in [
        &mut reading.conditions,
        &mut reading.severe,
        &mut reading.home_medications,
    ] {
        list.sort_unstable();
        list.dedup();
    }
    reading
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_allergies_home_medications_and_severity() {
        let w = World::embedded().unwrap();
        let note = "67-year-old man admitted with COPD exacerbation. History of hypertension. \
                    Allergic to penicillin; reaction: hives. Home medications: losartan and metformin. \
                    Severe COPD exacerbation, poorly controlled. Family at bedside.";
        let r = read_note(&w, note);
        let dx = |code| w.diagnoses.get(code).unwrap();
        let drug = |code| w.drugs.get(code).unwrap();
        assert_eq!(r.conditions, {
            let mut v = vec![dx("49121"), dx("4019")];
            v.sort_unstable();
            v
        });
        assert_eq!(r.severe, vec![dx("49121")]);
        assert!(r.allergic.contains(drug("J01CA04")) && !r.allergic.contains(drug("A10BA02")));
        assert_eq!(
            r.home_medications,
            vec![drug("C09CA01"), drug("A10BA02")]
                .into_iter()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
        );
        let none = read_note(&w, "NKDA. Allergies: none known.");
        assert!(none.allergic.is_empty());
    }
}
