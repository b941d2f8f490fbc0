//! The clinician rule that forms the ground truth of the synthetic clinic.

use rxalign_core::DrugSet;

use super::world::{Choice, World};

/// What the rule decided for a visit.
#[derive(Clone, Debug)]
pub struct Prescription {
    pub list: DrugSet,
    /// For each chronic condition treated, the drugs chosen for it: they are
    /// continued at the next visit.
    pub chronic: Vec<(usize, Vec<usize>)>,
}

/// What the prescriber knows about a visit.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    /// The conditions to treat, in any order (the rule goes in world order).
    pub conditions: &'a [usize],
    /// Whether each of `conditions` is severe.
    pub severe: &'a [bool],
    /// Drugs the patient must not get (allergies and intolerances).
    pub allergic: &'a DrugSet,
    /// Drugs the patient is on for chronic conditions, to be continued.
    pub continued: &'a [(usize, Vec<usize>)],
}

/// The rule:
/// 1. continue the drugs the patient is on for their chronic conditions
///    (home medications, or what earlier visits chose), unless allergic;
/// 2. for each condition, in the world's order, each first-line drug; where it
///    meets an allergy or has a major or contraindicated interaction with a
///    drug already chosen, the first alternative that does neither; where
///    every candidate interacts, the first one whose interactions are only
///    `Major` (accepted, as clinicians do); where every candidate meets an
///    allergy or a contraindication, nothing; `Moderate` interactions never
///    change a choice; a choice already met by a chosen drug adds nothing;
/// 3. the severe add-ons of each severe condition, chosen the same way.
pub fn prescribe(world: &World, facts: &Facts<'_>) -> Prescription {
    let mut list = DrugSet::empty(world.drugs.len());
    for (condition, drugs) in facts.continued {
        if facts.conditions.contains(condition) {
            for &d in drugs {
                if !facts.allergic.contains(d) {
                    list.insert(d);
                }
            }
        }
    }
    let mut order: Vec<(usize, bool)> = facts
        .conditions
        .iter()
        .copied()
        .zip(facts.severe.iter().copied())
        .collect();
    order.sort_unstable();
    order.dedup_by_key(|(c, _)| *c);
    let mut chronic = Vec::new();
    for &(condition, _) in &order {
        let c = &world.conditions[condition];
        let mut picked = Vec::new();
        for choice in &c.treat {
            if let Some(d) = pick(world, choice, &list, facts.allergic) {
                list.insert(d);
                picked.push(d);
            }
        }
        if c.chronic {
            chronic.push((condition, picked));
        }
    }
    for &(condition, severe) in &order {
        if severe {
            for choice in &world.conditions[condition].severe {
                if let Some(d) = pick(world, choice, &list, facts.allergic) {
                    list.insert(d);
                }
            }
        }
    }
    Prescription { list, chronic }
}

fn pick(world: &World, choice: &Choice, chosen: &DrugSet, allergic: &DrugSet) -> Option<usize> {
    if let Some(d) = choice.candidates().find(|&d| chosen.contains(d)) {
        return Some(d);
    }
    let clear = |d: usize| world.avoided.neighbours(d).intersection_len(chosen) == 0;
    let tolerable = |d: usize| world.contraindicated.neighbours(d).intersection_len(chosen) == 0;
    choice
        .candidates()
        .find(|&d| !allergic.contains(d) && clear(d))
        .or_else(|| {
            choice
                .candidates()
                .find(|&d| !allergic.contains(d) && tolerable(d))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        World::embedded().unwrap()
    }

    fn dx(w: &World, code: &str) -> usize {
        w.diagnoses.get(code).unwrap()
    }

    fn drug(w: &World, code: &str) -> usize {
        w.drugs.get(code).unwrap()
    }

    fn names(w: &World, s: &DrugSet) -> Vec<String> {
        s.iter().map(|d| w.drugs.name(d).to_string()).collect()
    }

    #[test]
    fn first_line_without_conflicts() {
        let w = world();
        let none = DrugSet::empty(w.drugs.len());
        let conds = [dx(&w, "4019")];
        let p = prescribe(
            &w,
            &Facts {
                conditions: &conds,
                severe: &[false],
                allergic: &none,
                continued: &[],
            },
        );
        assert_eq!(names(&w, &p.list), vec!["lisinopril"]);
        assert_eq!(p.chronic, vec![(conds[0], vec![drug(&w, "C09AA03")])]);
    }

    #[test]
    fn allergy_selects_the_alternative() {
        let w = world();
        let mut allergic = DrugSet::empty(w.drugs.len());
        allergic.insert(drug(&w, "C09AA03"));
        let conds = [dx(&w, "4019")];
        let p = prescribe(
            &w,
            &Facts {
                conditions: &conds,
                severe: &[false],
                allergic: &allergic,
                continued: &[],
            },
        );
        assert_eq!(names(&w, &p.list), vec!["losartan"]);
    }

    #[test]
    fn interaction_selects_the_alternative_and_contraindication_is_never_accepted() {
        let w = world();
        let none = DrugSet::empty(w.drugs.len());
        // H. pylori therapy brings clarithromycin; the hyperlipidemia statin
        // must then avoid atorvastatin (rhabdomyolysis): hyperlipidemia comes
        // first in world order, so atorvastatin is chosen and clarithromycin
        // is replaced by metronidazole instead.
        let conds = [dx(&w, "2724"), dx(&w, "04186")];
        let p = prescribe(
            &w,
            &Facts {
                conditions: &conds,
                severe: &[false, false],
                allergic: &none,
                continued: &[],
            },
        );
        assert!(p.list.contains(drug(&w, "C10AA05")));
        assert!(!p.list.contains(drug(&w, "J01FA09")));
        assert!(p.list.contains(drug(&w, "J01XD01")));
        // Sildenafil is never given with a nitrate.
        let conds = [dx(&w, "4139"), dx(&w, "60784")];
        let p = prescribe(
            &w,
            &Facts {
                conditions: &conds,
                severe: &[false, false],
                allergic: &none,
                continued: &[],
            },
        );
        assert!(p.list.contains(drug(&w, "C01DA02")) && !p.list.contains(drug(&w, "G04BE03")));
        // A major interaction without alternative is accepted: heart failure,
        // severe, adds spironolactone beside lisinopril.
        let conds = [dx(&w, "4280")];
        let p = prescribe(
            &w,
            &Facts {
                conditions: &conds,
                severe: &[true],
                allergic: &none,
                continued: &[],
            },
        );
        assert!(p.list.contains(drug(&w, "C03DA01")) && p.list.contains(drug(&w, "C09AA03")));
        assert_eq!(w.avoided.interacting_pairs(&p.list), 1);
        // Moderate pairs do not change a choice: furosemide stays beside
        // lisinopril.
        assert!(p.list.contains(drug(&w, "C03CA01")));
        assert!(w.ddi.interacting_pairs(&p.list) > 1);
    }

    #[test]
    fn continued_home_medication_replaces_first_line() {
        let w = world();
        let none = DrugSet::empty(w.drugs.len());
        let htn = dx(&w, "4019");
        let continued = vec![(htn, vec![drug(&w, "C08CA01")])];
        let p = prescribe(
            &w,
            &Facts {
                conditions: &[htn],
                severe: &[false],
                allergic: &none,
                continued: &continued,
            },
        );
        assert_eq!(names(&w, &p.list), vec!["amlodipine"]);
    }
}
