//! Training and scoring the grouped yes/no classifier.

use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::backend::AutodiffBackend;
use rand::Rng as _;
use rand::seq::SliceRandom;
use rxalign_core::metrics::MetricReport;
use rxalign_core::{Cohort, Prediction, Predictions, Rng, seeded_rng};
use rxalign_lm::generate::left_pad;
use rxalign_lm::tokenizer::train_byte_level_bpe;
use rxalign_lm::{Adapter, CachedRow, KvCache, Llama, LlamaConfig, LmError, Message};
use tokenizers::AddedToken;

use super::{DrugGroups, LamoModel, LamoSettings, PromptTemplate};
use crate::init::{Redraw, RedrawAdapters};
use rxalign_policy::PolicyError;
use rxalign_policy::Select;
use rxalign_policy::threshold::{self, above, report};

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
        let mut tok = train_byte_level_bpe(
            corpus.iter().map(String::as_str),
            vocab_size.saturating_sub(whole.len()),
            &[],
        )
        .map_err(|e| PolicyError::Invalid(format!("training the question tokenizer: {e}")))?;
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
    let refs: Vec<&[u32]> = questions.iter().map(Vec::as_slice).collect();
    answer_logits_after(model, &refs, None, adapter, answers)
}

/// The logits of the two answers after each row of `tokens`, which
/// continue `cache`'s rows (`None`: from nothing).
///
/// # Shapes
/// `tokens`: `rows` token-id lists (each non-empty) → `[rows, 2]` (yes, no)
fn answer_logits_after<B: Backend>(
    model: &Llama<B>,
    tokens: &[&[u32]],
    cache: Option<&mut KvCache<B>>,
    adapter: Adapter,
    answers: Answers,
) -> Tensor<B, 2> {
    let rows = tokens.len();
    let (ids, real, width) = left_pad(tokens, 0);
    let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [rows, width]), &model.device());
    let h = model.hidden(tokens, Some(&real), cache, adapter); // [rows, width, hidden]
    let d = h.dims()[2];
    // Left padding: the last position is every row's last real token.
    let last = h.narrow(1, width - 1, 1).reshape([rows, d]);
    model.head_of(last, &[answers.yes, answers.no])
}

/// [`answer_logits`] with the questions about one visit read from their
/// shared beginning once: `visits[i]` is question `i`'s visit, and the
/// questions of a visit follow each other. Each run of two or more
/// questions about one visit reads its [`shared_prefix`] once, and its
/// keys and values continue each question's own tokens, in one graph, so
/// the gradients reach the shared part through them. Equal to
/// [`answer_logits`], forward and backward (tests).
///
/// # Shapes
/// `questions`: `rows` token-id lists → `[rows, 2]` (yes, no)
pub(super) fn answer_logits_by_visit<B: Backend>(
    model: &Llama<B>,
    questions: &[Vec<u32>],
    visits: &[usize],
    adapter: Adapter,
    answers: Answers,
) -> Tensor<B, 2> {
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    for i in 0..questions.len() {
        match runs.last_mut() {
            Some(run) if visits[run.start] == visits[i] => run.end = i + 1,
            _ => runs.push(i..i + 1),
        }
    }
    let shared: Vec<usize> = runs
        .iter()
        .map(|run| {
            if run.len() > 1 {
                shared_prefix(&questions[run.clone()])
            } else {
                0
            }
        })
        .collect();
    let read: Vec<usize> = (0..runs.len()).filter(|&r| shared[r] > 0).collect();
    if read.is_empty() {
        return answer_logits(model, questions, adapter, answers);
    }
    let heads: Vec<&[u32]> = read
        .iter()
        .map(|&r| &questions[runs[r].start][..shared[r]])
        .collect();
    let mut prefixes: Vec<Option<CachedRow<B>>> = vec![None; runs.len()];
    for (&r, row) in read.iter().zip(crate::read_prefixes(model, &heads, 0, adapter)) {
        prefixes[r] = row;
    }
    let mut continued = Vec::with_capacity(questions.len());
    let mut rest: Vec<&[u32]> = Vec::with_capacity(questions.len());
    for (r, run) in runs.iter().enumerate() {
        for q in run.clone() {
            let from = if prefixes[r].is_some() { shared[r] } else { 0 };
            continued.push(prefixes[r].as_ref().map(|c| (c, shared[r])));
            rest.push(&questions[q][from..]);
        }
    }
    let mut cache = KvCache::from_rows(model.config.num_hidden_layers, &continued);
    answer_logits_after(model, &rest, Some(&mut cache), adapter, answers)
}

/// How many leading tokens every question shares, at most one less than
/// the shortest (so that each question keeps a token of its own, whose
/// position predicts the answer).
pub(super) fn shared_prefix(questions: &[Vec<u32>]) -> usize {
    let Some((first, rest)) = questions.split_first() else {
        return 0;
    };
    let mut n = first.len();
    for q in rest {
        n = n.min(first.iter().zip(q).take_while(|(a, b)| a == b).count());
    }
    let shortest = questions.iter().map(Vec::len).min().unwrap_or(0);
    n.min(shortest.saturating_sub(1))
}

/// What one epoch's training did.
#[derive(Clone, Debug)]
pub struct LamoEpoch {
    /// The mean yes/no cross-entropy (nats per question) over the epoch's
    /// training questions, each group's adapter at the time.
    pub loss: f64,
    /// Per group (its name): the mean training cross-entropy of its questions.
    pub group_loss: Vec<(String, f64)>,
}

/// A model's validation scores after an epoch.
#[derive(Clone, Debug)]
pub struct LamoValidation {
    /// Per group (its name): the mean cross-entropy of every validation
    /// question about its drugs (`None` without validation visits).
    pub group_loss: Vec<(String, Option<f64>)>,
    /// Validation metrics of the lists at threshold 0.5.
    pub report: MetricReport,
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
    /// Per group (its name): the epoch whose adapter it keeps.
    pub kept_epochs: Vec<(String, usize)>,
}

/// The questions (visit, drug, prescribed) of one group's training epoch:
/// every positive, and every negative or `ratio` per positive drawn afresh,
/// grouped by visit in a fresh order.
fn training_questions(
    cohort: &Cohort,
    train: &[usize],
    drugs: &[usize],
    ratio: f64,
    rng: &mut Rng,
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
    // Grouped by visit, the visits in the order they first appear: a
    // batch reads each of its visits' shared prompt once
    // ([`answer_logits_by_visit`]). The sort is stable, so each visit's
    // questions keep their shuffled order.
    let mut rank = vec![usize::MAX; cohort.visits.len()];
    let mut next = 0;
    for &(v, _, _) in &positives {
        if rank[v] == usize::MAX {
            rank[v] = next;
            next += 1;
        }
    }
    positives.sort_by_key(|&(v, _, _)| rank[v]);
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

/// `p(yes)` of every drug for each of `visits`, each group's drugs with
/// its adapter.
///
/// The questions about one visit differ only where the drug is named: for
/// each visit and group, the tokens all its questions share (the patient
/// part, [`shared_prefix`]; found on the tokens, so nothing is assumed of
/// the tokenizer or the template) are read once and their keys and values
/// continue every question's own tokens, `batch` questions per forward
/// call. The scores equal those of each whole question read alone.
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
    let layers = model.config.num_hidden_layers;
    let batch = batch.max(1);
    let mut out = vec![vec![0.0f32; n]; visits.len()];
    let positions: Vec<usize> = (0..visits.len()).collect();
    for (g, (_, drugs)) in groups.groups.iter().enumerate() {
        if drugs.is_empty() {
            continue;
        }
        let adapter = adapter_of(g);
        // About `batch` questions per chunk of visits.
        for chunk in positions.chunks((batch / drugs.len()).max(1)) {
            let questions = chunk
                .iter()
                .map(|&i| {
                    drugs
                        .iter()
                        .map(|&d| encoder.question(&template.render(cohort, visits[i], d)))
                        .collect::<Result<Vec<_>, _>>()
                })
                .collect::<Result<Vec<_>, _>>()?;
            let shared: Vec<usize> = questions.iter().map(|q| shared_prefix(q)).collect();
            // Each visit's shared part, read once (visits sharing nothing
            // are left out and read whole below).
            let read: Vec<usize> = (0..chunk.len()).filter(|&r| shared[r] > 0).collect();
            let mut prefixes: Vec<Option<CachedRow<B>>> = vec![None; chunk.len()];
            if !read.is_empty() {
                let heads: Vec<&[u32]> = read.iter().map(|&r| &questions[r][0][..shared[r]]).collect();
                for (&r, row) in read.iter().zip(crate::read_prefixes(model, &heads, 0, adapter)) {
                    prefixes[r] = row;
                }
            }
            let pairs: Vec<(usize, usize)> = (0..chunk.len())
                .flat_map(|r| (0..drugs.len()).map(move |k| (r, k)))
                .collect();
            for part in pairs.chunks(batch) {
                let continued: Vec<Option<(&CachedRow<B>, usize)>> = part
                    .iter()
                    .map(|&(r, _)| prefixes[r].as_ref().map(|c| (c, shared[r])))
                    .collect();
                let rest: Vec<&[u32]> = part
                    .iter()
                    .map(|&(r, k)| {
                        let from = if prefixes[r].is_some() { shared[r] } else { 0 };
                        &questions[r][k][from..]
                    })
                    .collect();
                let mut cache = KvCache::from_rows(layers, &continued);
                let logits = answer_logits_after(model, &rest, Some(&mut cache), adapter, answers);
                let p = softmax(logits, 1).narrow(1, 0, 1);
                let p: Vec<f32> = p
                    .into_data()
                    .convert::<f32>()
                    .into_vec()
                    .map_err(|e| PolicyError::Invalid(format!("reading scores: {e:?}")))?;
                for (&(r, k), &s) in part.iter().zip(&p) {
                    if !s.is_finite() {
                        return Err(PolicyError::NonFinite {
                            what: "the yes/no scores",
                        });
                    }
                    out[chunk[r]][drugs[k]] = s;
                }
            }
        }
    }
    Ok(out)
}

/// The mean cross-entropy of each group's validation questions.
pub(super) fn group_losses(
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
/// (its weights drawn from `rng`) with a tokenizer trained on the training
/// visits' questions.
fn build<B: Backend>(
    settings: &LamoSettings,
    template: &PromptTemplate,
    cohort: &Cohort,
    train: &[usize],
    rng: &mut Rng,
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
            Ok((config.init::<B>(device).map(&mut Redraw { rng }), encoder))
        }
    }
}

/// Each group's best validation epoch so far, the rule of `select:
/// "validation"`: its lowest validation cross-entropy, the earliest of
/// equals; the first epoch is every group's first best, with or without a
/// loss (no validation visits).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupBest {
    best: Vec<(usize, f64)>,
}

impl GroupBest {
    /// Takes in an epoch's per-group validation losses (in group order);
    /// returns which groups' adapters of this epoch are now their best.
    pub fn observe(&mut self, epoch: usize, losses: &[Option<f64>]) -> Vec<bool> {
        if self.best.is_empty() {
            self.best = losses
                .iter()
                .map(|l| (epoch, l.unwrap_or(f64::INFINITY)))
                .collect();
            return vec![true; losses.len()];
        }
        self.best
            .iter_mut()
            .zip(losses)
            .map(|(best, loss)| match *loss {
                Some(loss) if loss < best.1 => {
                    *best = (epoch, loss);
                    true
                }
                _ => false,
            })
            .collect()
    }

    /// Each group's best epoch, in group order (empty before the first).
    pub fn epochs(&self) -> Vec<usize> {
        self.best.iter().map(|(e, _)| *e).collect()
    }
}

/// LAMO's optimizer (Adam over the adapters).
pub type LamoOptim<B> = OptimizerAdaptor<Adam, Llama<B>, B>;

/// The pieces of training one adapter per drug group on the `train` visits'
/// questions (the base frozen), which the training loop
/// (`rxalign_train::learner`, driven by the LAMO stage) calls:
/// [`Self::new`] (the model), [`Self::start`], then [`Self::epoch`] and
/// [`Self::validate`] each epoch, then [`Self::finish`] on the kept model
/// (each group's adapter of the last epoch, or with `select: "validation"`
/// of its best, [`GroupBest`]); the threshold is then picked on the kept
/// adapters' validation scores. Scoring runs `eval_batch` questions at a
/// time. The same seed gives the same model, resumed or not.
#[derive(Debug)]
pub struct LamoTraining<'a> {
    cohort: &'a Cohort,
    train: &'a [usize],
    val: &'a [usize],
    settings: &'a LamoSettings,
    template: &'a PromptTemplate,
    seed: u64,
    eval_batch: usize,
    pub groups: DrugGroups,
    encoder: Encoder,
    answers: Answers,
}

impl<'a> LamoTraining<'a> {
    /// Checks the settings, groups the drugs and builds the model with a
    /// fresh adapter per group (drawn from the seed).
    #[expect(clippy::too_many_arguments, reason = "the inputs of training, each distinct")]
    pub fn new<B: AutodiffBackend>(
        cohort: &'a Cohort,
        train: &'a [usize],
        val: &'a [usize],
        settings: &'a LamoSettings,
        template: &'a PromptTemplate,
        seed: u64,
        eval_batch: usize,
        device: &B::Device,
    ) -> Result<(Self, Llama<B>), PolicyError> {
        settings.validate()?;
        if train.is_empty() {
            return Err(PolicyError::Invalid("the training split is empty".into()));
        }
        if settings.select == Select::Validation && val.is_empty() {
            return Err(PolicyError::Config {
                field: "select",
                message: "\"validation\" needs validation visits; the validation split is empty".into(),
            });
        }
        let groups = DrugGroups::new(&settings.groups, cohort, train)?;
        // Weights and adapters are drawn from the run's seeded generator
        // (never the backend's, shared by runs side by side); LoRA dropout,
        // if any, draws its masks from the backend's, seeded here (and
        // again before each later epoch, so that a resumed run draws the
        // same masks).
        B::seed(device, seed);
        let mut init = seeded_rng(seed, "lamo-model");
        let (model, encoder) = build::<B>(settings, template, cohort, train, &mut init, device)?;
        let answers = Answers::look_up(&encoder, &settings.yes, &settings.no)?;
        let mut model = model.freeze();
        for (name, _) in &groups.groups {
            model = model
                .add_adapter(name, settings.lora.clone())
                .map_err(lm_err("adding an adapter"))?;
        }
        let model = model.map(&mut RedrawAdapters::new(&mut init));
        let training = Self {
            cohort,
            train,
            val,
            settings,
            template,
            seed,
            eval_batch,
            groups,
            encoder,
            answers,
        };
        Ok((training, model))
    }

    /// The optimizer and the loop's generator (the questions' stream).
    pub fn start<B: AutodiffBackend>(&self) -> (LamoOptim<B>, Rng) {
        (AdamConfig::new().init(), seeded_rng(self.seed, "lamo-questions"))
    }

    /// Epoch `epoch` (from 1): each group's questions (negatives drawn
    /// afresh) in batches, one Adam step each, its adapter only.
    pub fn epoch<B: AutodiffBackend>(
        &self,
        mut model: Llama<B>,
        optim: &mut LamoOptim<B>,
        rng: &mut Rng,
        epoch: usize,
        device: &B::Device,
    ) -> Result<(Llama<B>, LamoEpoch), PolicyError> {
        let (cohort, settings, groups) = (self.cohort, self.settings, &self.groups);
        if epoch > 1 && settings.lora.dropout > 0.0 {
            B::seed(
                device,
                seeded_rng(self.seed, &format!("lamo-dropout-{epoch}")).random(),
            );
        }
        let mut group_loss = Vec::with_capacity(groups.len());
        let (mut total, mut count) = (0.0, 0usize);
        for (g, (name, drugs)) in groups.groups.iter().enumerate() {
            let questions =
                training_questions(cohort, self.train, drugs, settings.negatives_per_positive, rng);
            let mut sum = 0.0;
            for chunk in questions.chunks(settings.batch_size) {
                let ids = chunk
                    .iter()
                    .map(|&(v, d, _)| self.encoder.question(&self.template.render(cohort, v, d)))
                    .collect::<Result<Vec<_>, _>>()?;
                let rows = chunk.len();
                // The right answer's column: 0 for yes, 1 for no.
                let target: Vec<i64> = chunk.iter().map(|&(_, _, yes)| i64::from(!yes)).collect();
                let target = Tensor::<B, 2, Int>::from_data(TensorData::new(target, [rows, 1]), device);
                let visits: Vec<usize> = chunk.iter().map(|&(v, _, _)| v).collect();
                let logits = answer_logits_by_visit(&model, &ids, &visits, adapter_of(g), self.answers); // [rows, 2]
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
        let log = LamoEpoch {
            loss: total / count.max(1) as f64,
            group_loss,
        };
        Ok((model, log))
    }

    /// `model`'s validation scores: each group's cross-entropy and the
    /// lists' metrics at threshold 0.5.
    pub fn validate<B: Backend>(&self, model: &Llama<B>) -> Result<LamoValidation, PolicyError> {
        let scores = self.val_scores(model)?;
        Ok(LamoValidation {
            group_loss: group_losses(self.cohort, self.val, &scores, &self.groups),
            report: report(self.cohort, self.val, &scores, 0.5),
        })
    }

    fn val_scores<B: Backend>(&self, model: &Llama<B>) -> Result<Vec<Vec<f32>>, PolicyError> {
        score_visits(
            model,
            &self.encoder,
            self.template,
            self.answers,
            &self.groups,
            self.cohort,
            self.val,
            self.eval_batch,
        )
    }

    /// Copies into `kept` the adapters of the groups marked in `which` from
    /// `model`.
    pub fn keep_adapters<B: Backend>(
        &self,
        kept: &mut Llama<B>,
        model: &Llama<B>,
        which: &[bool],
    ) -> Result<(), PolicyError> {
        for ((name, _), _) in self.groups.groups.iter().zip(which).filter(|(_, k)| **k) {
            kept.copy_adapter_from(model, name)
                .map_err(lm_err("keeping an adapter"))?;
        }
        Ok(())
    }

    /// The trained classifier of the kept `model` (each group's adapter of
    /// its epoch in `kept_epochs`, in group order), its threshold the best
    /// validation Jaccard of the model's scores.
    pub fn finish<B: Backend>(
        self,
        model: Llama<B>,
        kept_epochs: &[usize],
    ) -> Result<TrainedLamo<B>, PolicyError> {
        let val_scores = self.val_scores(&model)?;
        let threshold = threshold::pick(self.cohort, self.val, &val_scores, self.settings.threshold_step);
        let kept_epochs = self
            .groups
            .groups
            .iter()
            .zip(kept_epochs)
            .map(|((n, _), e)| (n.clone(), *e))
            .collect();
        Ok(TrainedLamo {
            model,
            encoder: self.encoder,
            template: self.template.clone(),
            answers: self.answers,
            groups: self.groups,
            threshold,
            kept_epochs,
        })
    }
}
