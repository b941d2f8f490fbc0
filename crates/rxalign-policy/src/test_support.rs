//! Fixtures shared by the tests of the policies and the trainer (not part
//! of the API).

use rxalign_core::{Cohort, DdiGraph, DrugSet, Visit, Vocab};

/// Two visits of two patients: diagnosis A with drugs {0, 2}, diagnosis B
/// with drugs {3, 4, 5}, over six drugs.
pub fn tiny() -> Cohort {
    let mut drugs = Vocab::new();
    for i in 0..6 {
        drugs.insert(format!("D{i}"), format!("d{i}"));
    }
    let mut dx = Vocab::new();
    dx.insert("A", "a");
    dx.insert("B", "b");
    let visit = |i: usize, d: Vec<usize>, ix: &[usize]| Visit {
        diagnoses: d,
        ..Visit::new(
            format!("p{i}"),
            format!("v{i}"),
            DrugSet::from_indices(6, ix.iter().copied()),
        )
    };
    let visits = vec![visit(0, vec![0], &[0, 2]), visit(1, vec![1], &[3, 4, 5])];
    Cohort::new("t", drugs, dx, Vocab::new(), visits, DdiGraph::empty(6, "none")).unwrap()
}
