//! Drug groups, one LoRA adapter each (LAMO's mixture of experts).

use rxalign_core::Cohort;
use serde::{Deserialize, Serialize};

use rxalign_policy::PolicyError;

/// How drugs are grouped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Grouping {
    /// LAMO's development code: drugs sorted by how often the training
    /// visits prescribe them (most frequent first, ties by index), cut into
    /// `k` consecutive groups whose sizes differ by at most one.
    Frequency { k: usize },
    /// By the first letter of the drug's code, the ATC level-1 anatomical
    /// group (`C` cardiovascular, `J` anti-infectives, ...) for ATC-coded
    /// vocabularies; groups in alphabetical order.
    Atc1,
    /// Every drug in one group: one adapter (an ablation of the grouping).
    Single,
}

impl Default for Grouping {
    fn default() -> Self {
        Grouping::Frequency { k: 10 }
    }
}

/// The drugs' groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrugGroups {
    /// Each group's name (the adapter's name) and drugs, ascending.
    pub groups: Vec<(String, Vec<usize>)>,
    /// The group of each drug.
    pub of_drug: Vec<usize>,
}

impl DrugGroups {
    /// Groups the cohort's drugs, counting frequencies on `train` visits.
    pub fn new(grouping: &Grouping, cohort: &Cohort, train: &[usize]) -> Result<Self, PolicyError> {
        let n = cohort.drug_count();
        if n == 0 {
            return Err(PolicyError::Invalid("the cohort has no drugs to group".into()));
        }
        let groups: Vec<(String, Vec<usize>)> = match grouping {
            Grouping::Frequency { k } => {
                if *k == 0 || *k > n {
                    return Err(PolicyError::Config {
                        field: "groups.k",
                        message: format!("must lie in 1..={n} (the number of drugs), got {k}"),
                    });
                }
                let mut count = vec![0usize; n];
                for &v in train {
                    for d in cohort.visits[v].drugs.iter() {
                        count[d] += 1;
                    }
                }
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by(|&a, &b| count[b].cmp(&count[a]).then(a.cmp(&b)));
                let (size, extra) = (n / k, n % k);
                let mut start = 0;
                (0..*k)
                    .map(|g| {
                        let len = size + usize::from(g < extra);
                        let mut drugs = order[start..start + len].to_vec();
                        drugs.sort_unstable();
                        start += len;
                        (format!("frequency-{g}"), drugs)
                    })
                    .collect()
            }
            Grouping::Atc1 => {
                let mut by_letter: std::collections::BTreeMap<char, Vec<usize>> = Default::default();
                for d in 0..n {
                    let code = cohort.drugs.code(d);
                    let letter = code
                        .chars()
                        .next()
                        .filter(char::is_ascii_alphabetic)
                        .ok_or_else(|| {
                            PolicyError::Invalid(format!(
                                "grouping by ATC level 1: drug code `{code}` does not start with a letter (is the vocabulary ATC-coded?)"
                            ))
                        })?
                        .to_ascii_uppercase();
                    by_letter.entry(letter).or_default().push(d);
                }
                by_letter
                    .into_iter()
                    .map(|(letter, drugs)| (format!("atc-{letter}"), drugs))
                    .collect()
            }
            Grouping::Single => vec![("all".to_string(), (0..n).collect())],
        };
        let mut of_drug = vec![0; n];
        for (g, (_, drugs)) in groups.iter().enumerate() {
            for &d in drugs {
                of_drug[d] = g;
            }
        }
        Ok(Self { groups, of_drug })
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use rxalign_core::{DdiGraph, DrugSet, Visit, Vocab};

    use super::*;

    /// Seven drugs with ATC-like codes; drug 6 in three visits, drug 2 in
    /// two, drugs 0 and 4 in one, the rest never.
    fn cohort() -> Cohort {
        let mut drugs = Vocab::new();
        for code in ["C01", "J02", "C03", "N04", "J05", "a06", "B07"] {
            drugs.insert(code, code.to_lowercase());
        }
        let visit = |i: usize, ix: &[usize]| {
            Visit::new(
                format!("p{i}"),
                format!("v{i}"),
                DrugSet::from_indices(7, ix.iter().copied()),
            )
        };
        let visits = vec![
            visit(0, &[6, 2, 0]),
            visit(1, &[6, 2]),
            visit(2, &[6, 4]),
            visit(3, &[1, 3, 5]),
        ];
        Cohort::new(
            "g",
            drugs,
            Vocab::new(),
            Vocab::new(),
            visits,
            DdiGraph::empty(7, "none"),
        )
        .unwrap()
    }

    #[test]
    fn frequency_groups_cut_the_sorted_drugs_in_near_equal_parts() {
        // Visit 3 is not a training visit: its drugs count as never seen.
        let g = DrugGroups::new(&Grouping::Frequency { k: 3 }, &cohort(), &[0, 1, 2]).unwrap();
        // Order: 6 (3), 2 (2), 0 (1), 4 (1), then 1, 3, 5 (0) by index.
        assert_eq!(
            g.groups,
            vec![
                ("frequency-0".to_string(), vec![0, 2, 6]),
                ("frequency-1".to_string(), vec![1, 4]),
                ("frequency-2".to_string(), vec![3, 5]),
            ]
        );
        assert_eq!(g.of_drug, vec![0, 1, 0, 2, 1, 2, 0]);
        let one = DrugGroups::new(&Grouping::Frequency { k: 7 }, &cohort(), &[0, 1, 2]).unwrap();
        assert!(one.groups.iter().all(|(_, d)| d.len() == 1));
        assert_eq!(one.groups[0].1, vec![6]);
        for k in [0, 8] {
            let e = DrugGroups::new(&Grouping::Frequency { k }, &cohort(), &[0]).unwrap_err();
            assert!(e.to_string().contains("groups.k"), "{e}");
        }
    }

    #[test]
    fn atc1_groups_by_the_code_s_first_letter() {
        let g = DrugGroups::new(&Grouping::Atc1, &cohort(), &[]).unwrap();
        let names: Vec<&str> = g.groups.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["atc-A", "atc-B", "atc-C", "atc-J", "atc-N"]);
        assert_eq!(g.groups[2].1, vec![0, 2]);
        assert_eq!(g.groups[3].1, vec![1, 4]);
        assert_eq!(g.of_drug[5], 0, "lower-case codes count as their capital");
        let single = DrugGroups::new(&Grouping::Single, &cohort(), &[]).unwrap();
        assert_eq!(single.groups, vec![("all".to_string(), (0..7).collect())]);
    }

    #[test]
    fn atc1_refuses_codes_without_a_letter() {
        let mut drugs = Vocab::new();
        drugs.insert("123", "x");
        let visits = vec![Visit::new("p", "v", DrugSet::from_indices(1, [0]))];
        let c = Cohort::new(
            "n",
            drugs,
            Vocab::new(),
            Vocab::new(),
            visits,
            DdiGraph::empty(1, "none"),
        )
        .unwrap();
        let e = DrugGroups::new(&Grouping::Atc1, &c, &[0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`123`") && e.contains("ATC"), "{e}");
    }
}
