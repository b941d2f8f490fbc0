//! Free-text notes: what the codes do not say (allergies, home medications,
//! severity), each fact revealed with the configured probability.

use rand::Rng as _;
use rand::seq::IndexedRandom;
use rxalign_core::{Rng, Sex};

use super::world::World;

/// The facts a note may tell.
#[derive(Debug)]
pub(crate) struct NoteFacts<'a> {
    pub age: u32,
    pub sex: Sex,
    /// `(condition, coded, severe)` for every condition of the visit.
    pub conditions: &'a [(usize, bool, bool)],
    pub allergies: &'a [usize],
    /// Drugs the patient is on at admission.
    pub home_medications: &'a [usize],
}

pub(crate) fn compose(world: &World, facts: &NoteFacts<'_>, reveal: f64, rng: &mut Rng) -> String {
    let p = &world.phrases;
    let phrase = |c: usize| world.conditions[c].phrase.as_str();
    let mut sentences = Vec::new();

    let complaint = facts
        .conditions
        .iter()
        .find(|(c, _, _)| !world.conditions[*c].chronic)
        .or_else(|| facts.conditions.iter().find(|(_, _, severe)| *severe))
        .or(facts.conditions.first())
        .map_or("a routine review", |(c, _, _)| phrase(*c));
    let sex = match facts.sex {
        Sex::Female => "woman",
        Sex::Male => "man",
    };
    sentences.push(
        choose(&p.opening, rng)
            .replace("{age}", &facts.age.to_string())
            .replace("{sex}", sex)
            .replace("{complaint}", complaint),
    );

    // Chronic conditions: coded ones are usually named again; uncoded ones
    // only as often as the note reveals facts.
    let history: Vec<&str> = facts
        .conditions
        .iter()
        .filter(|(c, _, _)| world.conditions[*c].chronic)
        .filter(|(_, coded, _)| rng.random_bool(if *coded { 0.7 } else { reveal }))
        .map(|(c, _, _)| phrase(*c))
        .collect();
    if !history.is_empty() {
        sentences.push(choose(&p.history, rng).replace("{conditions}", &join(&history)));
    }

    if facts.allergies.is_empty() {
        if rng.random_bool(reveal) {
            sentences.push(choose(&p.no_allergy, rng).to_string());
        }
    } else {
        for &a in facts.allergies {
            if rng.random_bool(reveal) {
                let allergy = &world.allergies[a];
                let reaction = choose(&allergy.reactions, rng);
                sentences.push(
                    choose(&p.allergy, rng)
                        .replace("{allergy}", &allergy.name)
                        .replace("{reaction}", reaction),
                );
            }
        }
    }

    if !facts.home_medications.is_empty() && rng.random_bool(reveal) {
        let names: Vec<&str> = facts
            .home_medications
            .iter()
            .map(|&d| world.drugs.name(d))
            .collect();
        sentences.push(choose(&p.home_medications, rng).replace("{drugs}", &join(&names)));
    }

    for &(c, _, severe) in facts.conditions {
        if severe && rng.random_bool(reveal) {
            sentences.push(capitalise(
                &choose(&p.severe, rng).replace("{condition}", phrase(c)),
            ));
        } else if !severe && rng.random_bool(reveal * 0.3) {
            sentences.push(capitalise(
                &choose(&p.stable, rng).replace("{condition}", phrase(c)),
            ));
        }
    }
    sentences.push(choose(&p.filler, rng).to_string());
    sentences.join(" ")
}

fn choose<'a>(list: &'a [String], rng: &mut Rng) -> &'a str {
    list.choose(rng).expect("phrase lists are checked non-empty")
}

fn join(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_read_naturally() {
        assert_eq!(join(&["a"]), "a");
        assert_eq!(join(&["a", "b", "c"]), "a, b and c");
        assert_eq!(capitalise("gout stable."), "Gout stable.");
    }
}
