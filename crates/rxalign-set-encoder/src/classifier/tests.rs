use burn::backend::flex::FlexDevice;
use rxalign_core::{Cohort, DdiGraph, DrugSet, SplitConfig, Visit, Vocab};

use burn::module::AutodiffModule;

use super::*;
use rxalign_policy::CpuTrainBackend;
use rxalign_policy::features::VisitFeatures;
use rxalign_policy::test_support::tiny;

type Inner = <CpuTrainBackend as burn::tensor::backend::AutodiffBackend>::InnerBackend;

/// Trains every epoch and keeps the last one's model (the run's loop,
/// `rxalign_train::learner`, keeps the best on validation; these tests need
/// no selection): the classifier and each epoch's training loss.
fn fit(
    cohort: &Cohort,
    features: &VisitFeatures,
    train: &[usize],
    val: &[usize],
    settings: &ClassifierSettings,
    seed: u64,
) -> (TrainedClassifier<Inner>, Vec<f64>) {
    let mut training = ClassifierTraining::new(cohort, features, train, val, settings, seed).unwrap();
    let (mut model, mut optim, mut rngs) = training.start::<CpuTrainBackend>(&FlexDevice);
    let mut losses = Vec::new();
    for epoch in 1..=settings.epochs {
        let (next, loss) = training.epoch(model, &mut optim, &mut rngs, epoch, &FlexDevice);
        model = next;
        losses.push(loss);
    }
    (training.finish(model.valid(), &FlexDevice), losses)
}

#[test]
fn gradients_flow_and_a_tiny_classifier_fits_its_visits() {
    let cohort = tiny();
    let settings = ClassifierSettings {
        hidden: 16,
        epochs: 150,
        batch_size: 2,
        lr: 0.02,
        ..ClassifierSettings::default()
    };
    let features = VisitFeatures::of(&cohort);
    let (trained, losses) = fit(&cohort, &features, &[0, 1], &[0, 1], &settings, 3);
    let (first, last) = (losses[0], losses[losses.len() - 1]);
    assert!(last < first * 0.1, "loss {first} -> {last}");
    let p = trained.predict(&cohort, &[0, 1]);
    assert_eq!(p.by_visit[&0].drugs.to_vec(), vec![0, 2]);
    assert_eq!(p.by_visit[&1].drugs.to_vec(), vec![3, 4, 5]);
    let training = ClassifierTraining::new(&cohort, &features, &[0, 1], &[0, 1], &settings, 3).unwrap();
    assert_eq!(
        training.validate(&trained.model, &FlexDevice).get("jaccard"),
        Some(1.0)
    );
}

#[test]
fn the_same_seed_gives_the_same_model() {
    let cohort = tiny();
    let settings = ClassifierSettings {
        hidden: 8,
        epochs: 3,
        ..ClassifierSettings::default()
    };
    let run = |seed| {
        let (t, _) = fit(
            &cohort,
            &VisitFeatures::of(&cohort),
            &[0, 1],
            &[0, 1],
            &settings,
            seed,
        );
        t.predict(&cohort, &[0, 1]).by_visit[&0].scores.clone().unwrap()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

#[test]
fn runs_side_by_side_stay_reproducible() {
    // The backend's generator is global to the process: training draws from
    // rxalign's own seeded streams, so concurrent runs cannot disturb each
    // other.
    let cohort = tiny();
    let settings = ClassifierSettings {
        hidden: 8,
        epochs: 4,
        dropout: 0.3,
        ..ClassifierSettings::default()
    };
    let run = || {
        let (t, _) = fit(
            &cohort,
            &VisitFeatures::of(&cohort),
            &[0, 1],
            &[0, 1],
            &settings,
            11,
        );
        t.predict(&cohort, &[0, 1]).by_visit[&1].scores.clone().unwrap()
    };
    let alone = run();
    let side_by_side: Vec<Vec<f64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3).map(|_| s.spawn(run)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for scores in side_by_side {
        assert_eq!(scores, alone);
    }
}

#[test]
fn bad_settings_are_named() {
    let e = ClassifierSettings {
        epochs: 0,
        ..ClassifierSettings::default()
    }
    .validate()
    .unwrap_err();
    assert!(e.to_string().contains("`epochs`"));
}

#[test]
fn on_the_synthetic_clinic_it_beats_the_frequency_baselines() {
    let clinic = rxalign_data_free_clinic();
    let split = clinic.split(&SplitConfig::with_seed(0));
    let settings = ClassifierSettings {
        epochs: 40,
        batch_size: 32,
        ..ClassifierSettings::default()
    };
    let features = VisitFeatures::of(&clinic);
    let (trained, _) = fit(&clinic, &features, &split.train, &split.val, &settings, 0);
    let report = trained.predict(&clinic, &split.test).evaluate(&clinic, |_| true);
    let jaccard = report.get("jaccard").unwrap();
    assert!(jaccard > 0.5, "test Jaccard {jaccard}");
    assert!(report.get("prauc").unwrap() > 0.7);
}

#[test]
fn cross_fitting_predicts_each_training_visit_from_a_model_that_did_not_see_its_patient() {
    let clinic = rxalign_data_free_clinic();
    let split = clinic.split(&SplitConfig::with_seed(0));
    let features = VisitFeatures::of(&clinic);
    let settings = ClassifierSettings {
        hidden: 16,
        epochs: 3,
        cross_fit: 3,
        ..ClassifierSettings::default()
    };
    // What the classifier stage does with the folds: each fold's
    // classifier predicts its held-out patients.
    let cross_fit = || {
        let mut out = rxalign_core::Predictions::default();
        for fold in cross_fit_folds(&clinic, &split.train, &settings, 5).unwrap() {
            let (t, _) = fit(&clinic, &features, &fold.rest, &split.val, &settings, fold.seed);
            out.by_visit.extend(t.predict(&clinic, &fold.held).by_visit);
        }
        out
    };
    let fitted = cross_fit();
    let mut covered: Vec<usize> = fitted.by_visit.keys().copied().collect();
    covered.sort_unstable();
    let mut train = split.train.clone();
    train.sort_unstable();
    assert_eq!(covered, train, "every training visit, and only those");
    let again = cross_fit();
    for (v, p) in &fitted.by_visit {
        assert_eq!(p.scores, again.by_visit[v].scores, "seeded");
    }
    // A held-out fold scores its own patients worse than the model that
    // trained on them (it has not seen them).
    let full = fit(&clinic, &features, &split.train, &split.val, &settings, 5)
        .0
        .predict(&clinic, &split.train);
    let loss = |p: &rxalign_core::Predictions| {
        let mut total = 0.0;
        for (&v, pred) in &p.by_visit {
            for (d, s) in pred.scores.as_ref().unwrap().iter().enumerate() {
                let y = clinic.visits[v].drugs.contains(d);
                total -= if y {
                    s.max(1e-9).ln()
                } else {
                    (1.0 - s).max(1e-9).ln()
                };
            }
        }
        total
    };
    assert!(
        loss(&fitted) > loss(&full),
        "held-out {} vs seen {}",
        loss(&fitted),
        loss(&full)
    );
    assert!(
        ClassifierSettings {
            cross_fit: 1,
            ..ClassifierSettings::default()
        }
        .validate()
        .is_err()
    );
}

/// A cohort with structure (each diagnosis implies its drugs) without the
/// data crate: 400 patients, 20 diagnoses, 40 drugs.
fn rxalign_data_free_clinic() -> Cohort {
    use rand::Rng as _;
    let mut rng = rxalign_core::seeded_rng(1, "clinic");
    let mut drugs = Vocab::new();
    for i in 0..40 {
        drugs.insert(format!("D{i}"), format!("d{i}"));
    }
    let mut dx = Vocab::new();
    for i in 0..20 {
        dx.insert(format!("X{i}"), format!("x{i}"));
    }
    let mut visits = Vec::new();
    for p in 0..400 {
        let conditions: Vec<usize> = (0..rng.random_range(1..4))
            .map(|_| rng.random_range(0..20))
            .collect();
        let mut set = DrugSet::empty(40);
        for &c in &conditions {
            set.insert(2 * c);
            if rng.random_bool(0.8) {
                set.insert(2 * c + 1);
            }
        }
        visits.push(Visit {
            diagnoses: conditions,
            ..Visit::new(format!("p{p}"), format!("v{p}"), set)
        });
    }
    Cohort::new(
        "structured",
        drugs,
        dx,
        Vocab::new(),
        visits,
        DdiGraph::empty(40, "none"),
    )
    .unwrap()
}
