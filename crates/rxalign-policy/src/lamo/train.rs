//! Training and scoring the grouped yes/no classifier.

use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::backend::AutodiffBackend;
use rand::seq::SliceRandom;
use rxalign_core::metrics::{MetricInput, MetricReport, evaluate};
use rxalign_core::{Cohort, DrugSet, Prediction, Predictions, seeded_rng};
use rxalign_lm::generate::left_pad;
use rxalign_lm::{Adapter, Llama, LlamaConfig, LmError, Message};
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, ModelWrapper};

use super::{DrugGroups, LamoModel, LamoSettings, PromptTemplate};
use crate::PolicyError;

fn lm_err(what: &str) -> impl FnOnce(LmError) -> PolicyError + '_ {
    move |e| PolicyError::Invalid(format!("{what}: {e}"))
}

/// Text to token ids for the questions and the answers.
#[derive(Clone, Debug)]
pub enum Encoder {
    /// A pretrained model's tokenizer; with `chat`, a question is a user
    /// message in its chat template, ending with the assistant's header.
    Pretrained {
        tokenizer: rxalign_lm::Tokenizer,
        chat: bool,
    },
    /// A byte-level BPE trained here (tiny models): questions are encoded
    /// as they are, nothing added.
    Trained(tokenizers::Tokenizer),
}

impl Encoder {
    /// Trains a byte-level BPE tokenizer of at most `vocab_size` tokens on
    /// `corpus`, then adds each of `whole` as a token of its own.
    pub fn train_tiny(corpus: &[String], vocab_size: usize, whole: &[&str]) -> Result<Self, PolicyError> {
        let fail =
            |e: tokenizers::Error| PolicyError::Invalid(format!("training the question tokenizer: {e}"));
        let bpe = BPE::builder().build().map_err(fail)?;
        let mut tok = tokenizers::Tokenizer::new(ModelWrapper::from(bpe));
        tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        tok.with_decoder(Some(ByteLevel::default()));
        let mut trainer = TrainerWrapper::from(
            BpeTrainerBuilder::new()
                .vocab_size(vocab_size.saturating_sub(whole.len()))
                .min_frequency(2)
                .show_progress(false)
                .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
                .build(),
        );
        tok.train(&mut trainer, corpus.iter().map(String::as_str))
            .map_err(fail)?;
        let added: Vec<AddedToken> = whole.iter().map(|w| AddedToken::from(*w, false)).collect();
        tok.add_tokens(&added);
        Ok(Encoder::Trained(tok))
    }

    /// Every token id is below this.
    pub fn vocab_size(&self) -> usize {
        match self {
            Encoder::Pretrained { tokenizer, .. } => tokenizer.vocab_size(),
            Encoder::Trained(t) => t.get_vocab_size(true),
        }
    }

    /// The token ids of a question: the model reads them and answers next.
    pub fn question(&self, text: &str) -> Result<Vec<u32>, PolicyError> {
        match self {
            Encoder::Pretrained {
                tokenizer,
                chat: true,
            } => tokenizer
                .encode_chat(&[Message::user(text)])
                .map_err(lm_err("encoding a question")),
            Encoder::Pretrained {
                tokenizer,
                chat: false,
            } => tokenizer
                .encode(text, true)
                .map_err(lm_err("encoding a question")),
            Encoder::Trained(t) => t
                .encode(text, false)
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| PolicyError::Invalid(format!("encoding a question: {e}"))),
        }
    }

    /// The id of `text` when the tokenizer makes it one token.
    pub fn single_token(&self, text: &str) -> Result<u32, PolicyError> {
        let ids = match self {
            Encoder::Pretrained { tokenizer, .. } => tokenizer
                .encode(text, false)
                .map_err(lm_err("encoding an answer"))?,
            Encoder::Trained(t) => t
                .encode(text, false)
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| PolicyError::Invalid(format!("encoding an answer: {e}")))?,
        };
        match ids[..] {
            [one] => Ok(one),
            _ => Err(PolicyError::Invalid(format!(
                "the answer `{text}` is {} tokens ({ids:?}) for this tokenizer; a yes/no answer must be one token (choose another text, e.g. with or without a leading space)",
                ids.len()
            ))),
        }
    }
}

/// The token ids of the two answers, looked up in the tokenizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answers {
    pub yes: u32,
    pub no: u32,
}

impl Answers {
    pub fn look_up(encoder: &Encoder, yes: &str, no: &str) -> Result<Self, PolicyError> {
        let answers = Answers {
            yes: encoder.single_token(yes)?,
            no: encoder.single_token(no)?,
        };
        if answers.yes == answers.no {
            return Err(PolicyError::Invalid(format!(
                "the answers `{yes}` and `{no}` are the same token"
            )));
        }
        Ok(answers)
    }
}

/// The logits of the two answers after each question, one adapter for all.
///
/// # Shapes
/// `questions`: `rows` token-id lists → `[rows, 2]` (yes, no)
pub(super) fn answer_logits<B: Backend>(
    model: &Llama<B>,
    questions: &[Vec<u32>],
    adapter: Adapter,
    answers: Answers,
) -> Tensor<B, 2> {
    let rows = questions.len();
    let refs: Vec<&[u32]> = questions.iter().map(Vec::as_slice).collect();
    let (ids, real, width) = left_pad(&refs, 0);
    let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [rows, width]), &model.device());
    let h = model.hidden(tokens, Some(&real), None, adapter); // [rows, width, hidden]
    let d = h.dims()[2];
    // Left padding: the last position is every row's last real token.
    let last = h.narrow(1, width - 1, 1).reshape([rows, d]);
    model.head_of(last, &[answers.yes, answers.no])
}

/// What one epoch did.
#[derive(Clone, Debug)]
pub struct LamoEpochLog {
    pub epoch: usize,
    /// The mean yes/no cross-entropy (nats per question) over the epoch's
    /// training questions, each group's adapter at the time.
    pub loss: f64,
    /// Per group (its name): the mean training cross-entropy of its questions.
    pub group_loss: Vec<(String, f64)>,
    /// Per group: the mean cross-entropy of every validation question about
    /// its drugs after the epoch (`None` without validation visits).
    pub group_val_loss: Vec<(String, Option<f64>)>,
    /// Validation metrics of the lists at threshold 0.5.
    pub val: MetricReport,
}

/// A trained grouped classifier.
#[derive(Debug)]
pub struct TrainedLamo<B: Backend> {
    pub model: Llama<B>,
    pub encoder: Encoder,
    pub template: PromptTemplate,
    pub answers: Answers,
    pub groups: DrugGroups,
    /// The threshold on `p(yes)` that maximised validation Jaccard.
    pub threshold: f32,
    pub log: Vec<LamoEpochLog>,
}

/// The questions (visit, drug, prescribed) of one group's training epoch:
/// every positive, and every negative or `ratio` per positive drawn afresh.
fn training_questions(
    cohort: &Cohort,
    train: &[usize],
    drugs: &[usize],
    ratio: f64,
    rng: &mut rxalign_core::Rng,
) -> Vec<(usize, usize, bool)> {
    let mut positives = Vec::new();
    let mut negatives = Vec::new();
    for &v in train {
        for &d in drugs {
            if cohort.visits[v].drugs.contains(d) {
                positives.push((v, d, true));
            } else {
                negatives.push((v, d, false));
            }
        }
    }
    if ratio > 0.0 {
        let keep = ((positives.len() as f64 * ratio).round() as usize).min(negatives.len());
        negatives.shuffle(rng);
        negatives.truncate(keep);
    }
    positives.extend(negatives);
    positives.shuffle(rng);
    positives
}

impl<B: Backend> TrainedLamo<B> {
    /// `p(yes)` of every drug for each visit.
    ///
    /// # Shapes
    /// Returns `visits.len()` rows of `drugs` scores.
    pub fn scores(
        &self,
        cohort: &Cohort,
        visits: &[usize],
        batch: usize,
    ) -> Result<Vec<Vec<f32>>, PolicyError> {
        score_visits(
            &self.model,
            &self.encoder,
            &self.template,
            self.answers,
            &self.groups,
            cohort,
            visits,
            batch,
        )
    }

    /// Predictions with scores; the list holds the drugs scoring at least
    /// the threshold.
    pub fn predict(
        &self,
        cohort: &Cohort,
        visits: &[usize],
        batch: usize,
    ) -> Result<Predictions, PolicyError> {
        let scores = self.scores(cohort, visits, batch)?;
        Ok(Predictions {
            by_visit: visits
                .iter()
                .zip(scores)
                .map(|(&v, row)| {
                    let drugs = above(&row, self.threshold);
                    let scores = Some(row.into_iter().map(f64::from).collect());
                    (v, Prediction { drugs, scores })
                })
                .collect(),
        })
    }
}

/// The adapter of group `g` (adapters are added in group order).
fn adapter_of(g: usize) -> Adapter {
    Adapter::On(g)
}

#[expect(clippy::too_many_arguments, reason = "the pieces of a scorer, each distinct")]
fn score_visits<B: Backend>(
    model: &Llama<B>,
    encoder: &Encoder,
    template: &PromptTemplate,
    answers: Answers,
    groups: &DrugGroups,
    cohort: &Cohort,
    visits: &[usize],
    batch: usize,
) -> Result<Vec<Vec<f32>>, PolicyError> {
    let n = cohort.drug_count();
    let mut out = vec![vec![0.0f32; n]; visits.len()];
    for (g, (_, drugs)) in groups.groups.iter().enumerate() {
        let pairs: Vec<(usize, usize)> = (0..visits.len())
            .flat_map(|i| drugs.iter().map(move |&d| (i, d)))
            .collect();
        for chunk in pairs.chunks(batch.max(1)) {
            let questions = chunk
                .iter()
                .map(|&(i, d)| encoder.question(&template.render(cohort, visits[i], d)))
                .collect::<Result<Vec<_>, _>>()?;
            let p = softmax(answer_logits(model, &questions, adapter_of(g), answers), 1).narrow(1, 0, 1);
            let p: Vec<f32> = p
                .into_data()
                .convert::<f32>()
                .into_vec()
                .map_err(|e| PolicyError::Invalid(format!("reading scores: {e:?}")))?;
            for (&(i, d), &s) in chunk.iter().zip(&p) {
                if !s.is_finite() {
                    return Err(PolicyError::NonFinite {
                        what: "the yes/no scores",
                    });
                }
                out[i][d] = s;
            }
        }
    }
    Ok(out)
}

fn above(scores: &[f32], threshold: f32) -> DrugSet {
    DrugSet::from_indices(
        scores.len(),
        scores
            .iter()
            .enumerate()
            .filter(|(_, s)| **s >= threshold)
            .map(|(d, _)| d),
    )
}

fn report(cohort: &Cohort, visits: &[usize], scores: &[Vec<f32>], threshold: f32) -> MetricReport {
    let lists: Vec<DrugSet> = scores.iter().map(|s| above(s, threshold)).collect();
    let wide: Vec<Vec<f64>> = scores
        .iter()
        .map(|s| s.iter().map(|&x| f64::from(x)).collect())
        .collect();
    evaluate(
        visits
            .iter()
            .zip(&lists)
            .zip(&wide)
            .map(|((&v, list), s)| MetricInput {
                predicted: list,
                truth: &cohort.visits[v].drugs,
                scores: Some(s),
                ddi: &cohort.ddi,
            }),
    )
}

/// The mean cross-entropy of each group's validation questions.
fn group_losses(
    cohort: &Cohort,
    visits: &[usize],
    scores: &[Vec<f32>],
    groups: &DrugGroups,
) -> Vec<(String, Option<f64>)> {
    groups
        .groups
        .iter()
        .map(|(name, drugs)| {
            let mut sum = 0.0;
            let mut n = 0usize;
            for (row, &v) in scores.iter().zip(visits) {
                for &d in drugs {
                    let p = f64::from(row[d]).clamp(1e-12, 1.0 - 1e-12);
                    sum -= if cohort.visits[v].drugs.contains(d) {
                        p.ln()
                    } else {
                        (1.0 - p).ln()
                    };
                    n += 1;
                }
            }
            (name.clone(), (n > 0).then(|| sum / n as f64))
        })
        .collect()
}

/// The model and its encoder: loaded from a folder, or a tiny random Llama
/// with a tokenizer trained on the training visits' questions.
fn build<B: Backend>(
    settings: &LamoSettings,
    template: &PromptTemplate,
    cohort: &Cohort,
    train: &[usize],
    device: &B::Device,
) -> Result<(Llama<B>, Encoder), PolicyError> {
    match &settings.model {
        LamoModel::Pretrained { dir } => {
            let model = rxalign_lm::load_pretrained::<B>(dir, device).map_err(lm_err("loading the model"))?;
            let tokenizer = rxalign_lm::Tokenizer::from_dir(dir, &model.config)
                .map_err(lm_err("loading the tokenizer"))?;
            if settings.chat && tokenizer.chat.is_none() {
                return Err(PolicyError::Config {
                    field: "chat",
                    message: format!("the tokenizer of {} has no chat template", dir.display()),
                });
            }
            Ok((
                model,
                Encoder::Pretrained {
                    tokenizer,
                    chat: settings.chat,
                },
            ))
        }
        LamoModel::Tiny {
            layers,
            heads,
            kv_heads,
            head_dim,
            vocab_size,
        } => {
            if settings.chat {
                return Err(PolicyError::Config {
                    field: "chat",
                    message: "a tiny model's trained tokenizer has no chat template".into(),
                });
            }
            let n = cohort.drug_count();
            // Every training visit's question about one drug (drugs in turn),
            // and every drug's name, so that names are in the vocabulary.
            let mut corpus: Vec<String> = train
                .iter()
                .enumerate()
                .map(|(k, &v)| template.render(cohort, v, k % n.max(1)))
                .collect();
            corpus.extend((0..n).map(|d| cohort.drugs.name(d).to_string()));
            let encoder = Encoder::train_tiny(&corpus, *vocab_size, &[&settings.yes, &settings.no])?;
            let mut config = LlamaConfig::tiny(encoder.vocab_size(), *layers, *heads, *kv_heads, *head_dim);
            config.bos_token_id = None;
            config.eos_token_id = None;
            config.max_position_embeddings = 4096;
            Ok((config.init::<B>(device), encoder))
        }
    }
}

/// [`train_lamo_with`] without a per-epoch callback.
#[expect(clippy::too_many_arguments, reason = "the inputs of training, each distinct")]
pub fn train_lamo<B: AutodiffBackend>(
    cohort: &Cohort,
    train: &[usize],
    val: &[usize],
    settings: &LamoSettings,
    template: &PromptTemplate,
    seed: u64,
    device: &B::Device,
    eval_batch: usize,
) -> Result<TrainedLamo<B::InnerBackend>, PolicyError> {
    train_lamo_with::<B>(
        cohort,
        train,
        val,
        settings,
        template,
        seed,
        device,
        eval_batch,
        &mut |_| Ok(()),
    )
}

/// Trains one adapter per drug group on the `train` visits' questions (the
/// base frozen), scoring the `val` visits after each epoch (handed to
/// `on_epoch` at once; an error from it stops training), and picks the
/// threshold on `val` after the last epoch. Scoring runs `eval_batch`
/// questions at a time. The same seed gives the same model.
#[expect(clippy::too_many_arguments, reason = "the inputs of training, each distinct")]
pub fn train_lamo_with<B: AutodiffBackend>(
    cohort: &Cohort,
    train: &[usize],
    val: &[usize],
    settings: &LamoSettings,
    template: &PromptTemplate,
    seed: u64,
    device: &B::Device,
    eval_batch: usize,
    on_epoch: &mut dyn FnMut(&LamoEpochLog) -> Result<(), String>,
) -> Result<TrainedLamo<B::InnerBackend>, PolicyError> {
    settings.validate()?;
    if train.is_empty() {
        return Err(PolicyError::Invalid("the training split is empty".into()));
    }
    let groups = DrugGroups::new(&settings.groups, cohort, train)?;
    // burn's initialisers draw from the backend's generator.
    B::seed(device, seed);
    let (model, encoder) = build::<B>(settings, template, cohort, train, device)?;
    let answers = Answers::look_up(&encoder, &settings.yes, &settings.no)?;
    let mut model = model.freeze();
    for (name, _) in &groups.groups {
        model = model
            .add_adapter(name, settings.lora.clone())
            .map_err(lm_err("adding an adapter"))?;
    }
    let mut optim = AdamConfig::new().init();
    let mut rng = seeded_rng(seed, "lamo-questions");
    let mut log: Vec<LamoEpochLog> = Vec::with_capacity(settings.epochs);
    let mut val_scores = Vec::new();
    for epoch in 1..=settings.epochs {
        let mut group_loss = Vec::with_capacity(groups.len());
        let (mut total, mut count) = (0.0, 0usize);
        for (g, (name, drugs)) in groups.groups.iter().enumerate() {
            let questions =
                training_questions(cohort, train, drugs, settings.negatives_per_positive, &mut rng);
            let mut sum = 0.0;
            for chunk in questions.chunks(settings.batch_size) {
                let ids = chunk
                    .iter()
                    .map(|&(v, d, _)| encoder.question(&template.render(cohort, v, d)))
                    .collect::<Result<Vec<_>, _>>()?;
                let rows = chunk.len();
                // The right answer's column: 0 for yes, 1 for no.
                let target: Vec<i64> = chunk.iter().map(|&(_, _, yes)| i64::from(!yes)).collect();
                let target = Tensor::<B, 2, Int>::from_data(TensorData::new(target, [rows, 1]), device);
                let logits = answer_logits(&model, &ids, adapter_of(g), answers); // [rows, 2]
                let loss = log_softmax(logits, 1).gather(1, target).mean().neg(); // [1]
                let value = loss.clone().into_scalar().elem::<f64>();
                if !value.is_finite() {
                    return Err(PolicyError::NonFinite {
                        what: "the yes/no losses",
                    });
                }
                sum += value * rows as f64;
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optim.step(settings.lr, model, grads);
            }
            group_loss.push((name.clone(), sum / questions.len().max(1) as f64));
            total += sum;
            count += questions.len();
        }
        let inner = model.valid();
        val_scores = score_visits(
            &inner, &encoder, template, answers, &groups, cohort, val, eval_batch,
        )?;
        let entry = LamoEpochLog {
            epoch,
            loss: total / count.max(1) as f64,
            group_loss,
            group_val_loss: group_losses(cohort, val, &val_scores, &groups),
            val: report(cohort, val, &val_scores, 0.5),
        };
        on_epoch(&entry).map_err(PolicyError::Invalid)?;
        log.push(entry);
    }
    // The threshold: the best validation Jaccard of the last epoch's scores.
    let mut threshold = 0.5;
    let mut best = f64::NEG_INFINITY;
    let mut t = settings.threshold_step;
    while t < 1.0 - settings.threshold_step / 2.0 {
        let j = report(cohort, val, &val_scores, t).get("jaccard").unwrap_or(0.0);
        if j > best {
            best = j;
            threshold = t;
        }
        t += settings.threshold_step;
    }
    Ok(TrainedLamo {
        model: model.valid(),
        encoder,
        template: template.clone(),
        answers,
        groups,
        threshold,
        log,
    })
}
