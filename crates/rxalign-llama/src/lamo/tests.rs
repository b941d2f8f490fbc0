use burn::backend::Flex;
use burn::backend::flex::FlexDevice;
use burn::tensor::activation::softmax;
use burn::tensor::{Int, Tensor, TensorData};
use rxalign_data::synthetic::{SyntheticClinic, SyntheticConfig};

use super::train::{Answers, answer_logits, answer_logits_by_visit, group_losses, shared_prefix};
use super::*;
use rxalign_policy::CpuTrainBackend;

fn corpus(words: &[&str]) -> Vec<String> {
    words.iter().cycle().take(60).map(|w| w.to_string()).collect()
}

#[test]
fn yes_no_ids_come_from_the_tokenizer() {
    // Two tokenizers trained on different text give the answers other ids.
    let a = Encoder::train_tiny(
        &corpus(&["aspirin and warfarin", "metformin at home"]),
        300,
        &["Yes", "No"],
    )
    .unwrap();
    let b = Encoder::train_tiny(&corpus(&["penicillin allergy noted"]), 320, &["No", "Yes"]).unwrap();
    let (Encoder::Trained(ta), Encoder::Trained(tb)) = (&a, &b) else {
        unreachable!("train_tiny trains")
    };
    let (ya, yb) = (
        Answers::look_up(&a, "Yes", "No").unwrap(),
        Answers::look_up(&b, "Yes", "No").unwrap(),
    );
    assert_eq!(
        (ya.yes, ya.no),
        (ta.token_to_id("Yes").unwrap(), ta.token_to_id("No").unwrap())
    );
    assert_eq!(
        (yb.yes, yb.no),
        (tb.token_to_id("Yes").unwrap(), tb.token_to_id("No").unwrap())
    );
    assert_ne!(ya, yb);
    // An answer that is several tokens, or the same answer twice, is refused.
    let e = Answers::look_up(&a, "Yes", "Not at all").unwrap_err().to_string();
    assert!(e.contains("`Not at all`") && e.contains("one token"), "{e}");
    let e = Answers::look_up(&a, "No", "No").unwrap_err().to_string();
    assert!(e.contains("same token"), "{e}");
}

#[test]
fn the_score_is_the_softmax_of_the_two_answers_full_logits() {
    let enc =
        Encoder::train_tiny(&corpus(&["should the patient take aspirin"]), 300, &["Yes", "No"]).unwrap();
    let answers = Answers::look_up(&enc, "Yes", "No").unwrap();
    let mut config = rxalign_lm::LlamaConfig::tiny(enc.vocab_size(), 2, 4, 2, 8);
    config.tie_word_embeddings = true; // the head is the embedding, as in SmolLM2
    let model = config.init::<Flex>(&FlexDevice);
    let questions = vec![
        enc.question("should the patient take aspirin").unwrap(),
        enc.question("take aspirin").unwrap(),
    ];
    let two = answer_logits(&model, &questions, rxalign_lm::Adapter::Off, answers);
    let p: Vec<f32> = softmax(two, 1).into_data().into_vec().unwrap();
    for (r, q) in questions.iter().enumerate() {
        let ids: Vec<i64> = q.iter().map(|&t| i64::from(t)).collect();
        let t = Tensor::<Flex, 2, Int>::from_data(TensorData::new(ids, [1, q.len()]), &FlexDevice);
        let logits: Vec<f32> = model
            .forward(t, None, None, rxalign_lm::Adapter::Off)
            .narrow(1, q.len() - 1, 1)
            .into_data()
            .into_vec()
            .unwrap();
        let (y, n) = (logits[answers.yes as usize], logits[answers.no as usize]);
        let want = 1.0 / (1.0 + (n - y).exp());
        assert!(
            (p[2 * r] - want).abs() < 1e-5,
            "row {r}: {} against {want}",
            p[2 * r]
        );
    }
}

fn clinic(patients: usize) -> Cohort {
    SyntheticClinic::generate(&SyntheticConfig {
        patients,
        ..SyntheticConfig::default()
    })
    .unwrap()
    .cohort
}

fn tiny_settings() -> LamoSettings {
    LamoSettings {
        model: LamoModel::Tiny {
            layers: 1,
            heads: 2,
            kv_heads: 1,
            head_dim: 8,
            vocab_size: 400,
        },
        max_note_chars: 40,
        groups: Grouping::Frequency { k: 3 },
        lora: LoraConfig {
            rank: 4,
            alpha: 8.0,
            dropout: 0.0,
            targets: vec!["q_proj".into(), "v_proj".into(), "o_proj".into()],
        },
        epochs: 2,
        batch_size: 128,
        lr: 1e-2,
        ..LamoSettings::default()
    }
}

use burn::module::AutodiffModule;
use rxalign_core::Cohort;
use rxalign_lm::{Llama, LoraConfig};

type Inner = <CpuTrainBackend as burn::tensor::backend::AutodiffBackend>::InnerBackend;

/// One epoch's training and validation.
struct EpochLog {
    loss: f64,
    group_loss: Vec<(String, f64)>,
    group_val_loss: Vec<(String, Option<f64>)>,
}

/// Trains every epoch as the run's loop (`rxalign_train::learner`, driven
/// by the LAMO stage) does, each group keeping its last epoch's adapter or,
/// with `select: "validation"`, its best one's ([`GroupBest`]).
fn fit(
    cohort: &Cohort,
    train: &[usize],
    val: &[usize],
    settings: &LamoSettings,
    template: &PromptTemplate,
) -> Result<(TrainedLamo<Inner>, Vec<EpochLog>), PolicyError> {
    let (training, mut model) =
        LamoTraining::new::<CpuTrainBackend>(cohort, train, val, settings, template, 7, 256, &FlexDevice)?;
    let (mut optim, mut rng) = training.start::<CpuTrainBackend>();
    let mut best = GroupBest::default();
    let mut kept: Option<Llama<CpuTrainBackend>> = None;
    let mut log = Vec::new();
    for epoch in 1..=settings.epochs {
        let (next, trained) = training.epoch(model, &mut optim, &mut rng, epoch, &FlexDevice)?;
        model = next;
        let validation = training.validate(&model.valid())?;
        if settings.select == Select::Validation {
            let losses: Vec<Option<f64>> = validation.group_loss.iter().map(|(_, l)| *l).collect();
            let which = best.observe(epoch, &losses);
            match &mut kept {
                Some(k) => training.keep_adapters(k, &model, &which)?,
                None => kept = Some(model.clone()),
            }
        }
        log.push(EpochLog {
            loss: trained.loss,
            group_loss: trained.group_loss,
            group_val_loss: validation.group_loss,
        });
    }
    let epochs = match kept {
        Some(_) => best.epochs(),
        None => vec![settings.epochs; training.groups.len()],
    };
    let model = kept.unwrap_or(model).valid();
    Ok((training.finish(model, &epochs)?, log))
}

#[test]
fn a_tiny_grouped_run_learns_and_predicts_with_scores() {
    let cohort = clinic(5);
    let n = cohort.visits.len();
    let train: Vec<usize> = (0..n * 2 / 3).collect();
    let val: Vec<usize> = (n * 2 / 3..n).collect();
    let settings = tiny_settings();
    // A short question keeps the test fast (the default one, with the
    // note and the previous drugs, is some 250 tokens of this small BPE).
    let template = PromptTemplate::new("{age} {sex}; {diagnoses}. Give {drug}?", 40).unwrap();
    let run = |lr: f64| {
        let settings = LamoSettings {
            lr,
            ..settings.clone()
        };
        fit(&cohort, &train, &val, &settings, &template).unwrap()
    };
    let (trained, log) = run(settings.lr);
    assert_eq!(log.len(), 2);
    assert_eq!(trained.groups.len(), 3);
    // The same seed with a learning rate too small to move anything: the
    // fresh adapters' (that is, the frozen base's) validation loss.
    let (_, fresh) = run(1e-12);
    assert_eq!(log[0].group_loss.len(), 3);
    // About 10% of the questions are positive: the adapters learn at least
    // the base rate, so every group's validation cross-entropy falls well
    // below the frozen base's.
    assert!(log[1].loss < log[0].loss, "{} then {}", log[0].loss, log[1].loss);
    for ((name, l), (_, l0)) in log[1].group_val_loss.iter().zip(&fresh[1].group_val_loss) {
        let (l, l0) = (l.unwrap(), l0.unwrap());
        eprintln!("group {name}: validation cross-entropy {l0:.4} fresh, {l:.4} trained");
        assert!(
            l < l0 - 0.05,
            "group {name}: validation cross-entropy {l0} fresh, {l} trained"
        );
    }
    // Scoring reads each visit's shared part once and continues it: the
    // same scores as every whole question read alone (batches of 7 mix
    // visits and split them).
    let scores = trained.scores(&cohort, &val, 7).unwrap();
    for (g, (_, drugs)) in trained.groups.groups.iter().enumerate() {
        for (i, &v) in val.iter().enumerate() {
            let questions: Vec<Vec<u32>> = drugs
                .iter()
                .map(|&d| trained.encoder.question(&template.render(&cohort, v, d)).unwrap())
                .collect();
            // Group `g`'s adapter is the model's `g`-th.
            let logits = answer_logits(
                &trained.model,
                &questions,
                rxalign_lm::Adapter::On(g),
                trained.answers,
            );
            let whole: Vec<f32> = softmax(logits, 1).into_data().into_vec().unwrap();
            for (k, &d) in drugs.iter().enumerate() {
                let (cached, alone) = (scores[i][d], whole[2 * k]);
                assert!(
                    (cached - alone).abs() < 1e-5,
                    "visit {v} drug {d}: {cached} continued, {alone} whole"
                );
            }
        }
    }
    let predictions = trained.predict(&cohort, &val, 256).unwrap();
    assert_eq!(predictions.by_visit.len(), val.len());
    let report = predictions.evaluate(&cohort, |_| true);
    assert!(report.get("prauc").is_some(), "{report:?}");
    for p in predictions.by_visit.values() {
        let s = p.scores.as_ref().unwrap();
        assert_eq!(s.len(), cohort.drug_count());
        assert!(s.iter().all(|&x| x > 0.0 && x < 1.0));
        let listed: Vec<usize> = p.drugs.iter().collect();
        let want: Vec<usize> = (0..s.len())
            .filter(|&d| s[d] >= f64::from(trained.threshold))
            .collect();
        assert_eq!(listed, want);
    }
}

/// With `select: "validation"` each group keeps the adapter of its epoch
/// with the lowest validation cross-entropy, and the kept model scores
/// validation as that epoch did.
#[test]
fn each_group_keeps_its_best_validation_epoch() {
    let cohort = clinic(5);
    let n = cohort.visits.len();
    let train: Vec<usize> = (0..n * 2 / 3).collect();
    let val: Vec<usize> = (n * 2 / 3..n).collect();
    let settings = LamoSettings {
        epochs: 4,
        lr: 0.05,
        select: Select::Validation,
        ..tiny_settings()
    };
    let template = PromptTemplate::new("{age} {sex}; {diagnoses}. Give {drug}?", 40).unwrap();
    let (trained, log) = fit(&cohort, &train, &val, &settings, &template).unwrap();
    let scores = trained.scores(&cohort, &val, 256).unwrap();
    let now = group_losses(&cohort, &val, &scores, &trained.groups);
    let mut kept = Vec::new();
    for (g, (name, epoch)) in trained.kept_epochs.iter().enumerate() {
        let losses: Vec<f64> = log.iter().map(|l| l.group_val_loss[g].1.unwrap()).collect();
        let best = (0..losses.len()).fold(0, |b, e| if losses[e] < losses[b] { e } else { b });
        assert_eq!(*epoch, best + 1, "group {name}: {losses:?}");
        let l = now[g].1.unwrap();
        assert!(
            (l - losses[best]).abs() < 1e-6,
            "group {name}: {l} now, {} at epoch {epoch}",
            losses[best]
        );
        kept.push(*epoch);
    }
    eprintln!("kept epochs {kept:?}");
    assert!(
        kept.iter().any(|&e| e < 4),
        "some group keeps an earlier epoch: {kept:?}"
    );
    // Without validation visits, selection is refused before training.
    let e = fit(&cohort, &train, &[], &settings, &template)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("select"), "{e}");
}

#[test]
fn questions_share_their_common_beginning_but_their_last_token() {
    assert_eq!(shared_prefix(&[vec![1, 2, 3, 4], vec![1, 2, 5, 4]]), 2);
    // One question: all of it but the token that predicts the answer.
    assert_eq!(shared_prefix(&[vec![1, 2, 3]]), 2);
    // A question that begins another keeps its last token.
    assert_eq!(shared_prefix(&[vec![1, 2, 3], vec![1, 2, 3, 4]]), 2);
    assert_eq!(shared_prefix(&[vec![7, 2], vec![1, 2]]), 0);
    assert_eq!(shared_prefix(&[]), 0);
}

#[test]
fn settings_are_checked() {
    let ok = LamoSettings::default();
    ok.validate().unwrap();
    let cases: Vec<(LamoSettings, &str)> = vec![
        (
            LamoSettings {
                epochs: 0,
                ..ok.clone()
            },
            "epochs",
        ),
        (
            LamoSettings {
                no: "Yes".into(),
                ..ok.clone()
            },
            "yes",
        ),
        (
            LamoSettings {
                threshold_step: 0.5,
                ..ok.clone()
            },
            "threshold_step",
        ),
        (
            LamoSettings {
                negatives_per_positive: -1.0,
                ..ok.clone()
            },
            "negatives_per_positive",
        ),
        (
            LamoSettings {
                model: LamoModel::Tiny {
                    layers: 1,
                    heads: 3,
                    kv_heads: 2,
                    head_dim: 8,
                    vocab_size: 400,
                },
                ..ok.clone()
            },
            "kv_heads",
        ),
    ];
    for (s, field) in cases {
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains(field), "{field}: {e}");
    }
    let s: LamoSettings = ron::from_str("(select: \"validation\")").unwrap();
    assert_eq!(s.select, Select::Validation);
    let e = ron::from_str::<LamoSettings>("(select: \"best\")")
        .unwrap_err()
        .to_string();
    assert!(e.contains("last, validation"), "{e}");
}

#[test]
fn each_group_keeps_its_lowest_validation_loss_and_the_earliest_of_equals() {
    let mut best = GroupBest::default();
    // The first epoch is every group's first best, with a loss or without.
    assert_eq!(best.observe(1, &[Some(0.5), None, Some(0.3)]), [true, true, true]);
    assert_eq!(
        best.observe(2, &[Some(0.4), Some(9.0), Some(0.3)]),
        [true, true, false]
    );
    assert_eq!(
        best.observe(3, &[Some(0.45), None, Some(0.2)]),
        [false, false, true]
    );
    assert_eq!(best.epochs(), [2, 2, 3]);
}

/// Training reads the part that the questions about one visit share once
/// and continues it: the same logits and the same adapter gradients as
/// every whole question read alone, with runs of one question (read
/// whole), questions of different lengths and a visit whose questions share
/// nothing.
#[test]
fn a_visits_questions_read_their_shared_part_once_with_the_same_logits_and_gradients() {
    use burn::module::Module;
    use rxalign_lm::{LlamaConfig, LoraConfig};
    type A = CpuTrainBackend;
    let lora = LoraConfig {
        rank: 4,
        alpha: 8.0,
        dropout: 0.0,
        targets: vec!["q_proj".into(), "v_proj".into(), "down_proj".into()],
    };
    let model = LlamaConfig::tiny(61, 2, 4, 2, 8)
        .init::<A>(&FlexDevice)
        .freeze()
        .add_adapter("g", lora)
        .unwrap();
    // LoRA's B starts at zero: redraw every matrix, so that the adapter
    // acts and every parameter has a gradient.
    let mut rng = rxalign_core::seeded_rng(3, "shared-prefix-test");
    let model = model.map(&mut crate::init::Redraw { rng: &mut rng });
    let adapter = model.adapter("g").unwrap();
    let questions = vec![
        vec![1, 2, 3, 4, 5, 9],
        vec![1, 2, 3, 4, 6, 7, 8],
        vec![10, 11, 12],
        vec![1, 2, 3, 7],
        vec![1, 2, 3, 8, 9],
        vec![4, 5],
        vec![6, 5],
    ];
    let visits = [0, 0, 1, 2, 2, 3, 3];
    let answers = Answers { yes: 20, no: 21 };
    let weights: Vec<f32> = (0..2 * questions.len())
        .map(|i| (i as f32 * 0.37).sin())
        .collect();
    let w = Tensor::<A, 2>::from_data(TensorData::new(weights, [questions.len(), 2]), &FlexDevice);
    let run = |by_visit: bool| {
        let logits = if by_visit {
            answer_logits_by_visit(&model, &questions, &visits, adapter, answers)
        } else {
            answer_logits(&model, &questions, adapter, answers)
        };
        let grads = (logits.clone() * w.clone()).sum().backward();
        let mut g: Vec<f32> = Vec::new();
        for (_, _, p) in model.projections() {
            for pair in p.adapters.iter().flatten() {
                for t in [pair.a.val(), pair.b.val()] {
                    g.extend(t.grad(&grads).unwrap().into_data().into_vec::<f32>().unwrap());
                }
            }
        }
        (logits.into_data().into_vec::<f32>().unwrap(), g)
    };
    let (shared, whole) = (run(true), run(false));
    let max_diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(
        max_diff(&shared.0, &whole.0) < 1e-5,
        "logits {:?} against {:?}",
        shared.0,
        whole.0
    );
    assert_eq!(shared.1.len(), whole.1.len());
    assert!(shared.1.iter().any(|&g| g != 0.0));
    let scale = whole.1.iter().fold(0.0f32, |m, g| m.max(g.abs()));
    assert!(
        max_diff(&shared.1, &whole.1) < 1e-4 * scale.max(1.0),
        "adapter gradients differ by {} (largest {scale})",
        max_diff(&shared.1, &whole.1)
    );
}
