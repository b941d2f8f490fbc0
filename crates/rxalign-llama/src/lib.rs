//! Llama-family language models as rxalign policies: FLAME's list editor,
//! the `llama` family ([`LlamaPolicy`]), here, and LAMO's grouped
//! point-wise classifier in [`lamo`].
//!
//! FLAME's list editor as a policy family (`llama`): a Llama-family language
//! model reads the patient, the start list and a question through the
//! model's chat template and answers with drug names, one per line.
//!
//! A decision is one generated line: its parts are its tokens, up to and
//! including the token that ends the line (one that contains a newline).
//! The end-of-answer token (the chat template's end of turn) as the first
//! token of a line ends the answer; inside a line it is masked out, in
//! sampling and in scoring alike, so a line ends only at a newline (or at
//! `max_line_tokens`). Each line is parsed (the module `parse`) into an edit or a
//! refusal; at most `max_lines` lines per answer, after which the end of
//! the answer is forced (a decision with no parts: nothing to train).
//!
//! Prompt styles ([`PromptStyle`]):
//! - `add_remove` (FLAME as published): the add prompt, then the remove
//!   prompt, both showing the start list; added drugs must not be in the
//!   list, removed drugs must be in the start list; the end of the add
//!   answer is [`Effect::NextPrompt`], the end of the remove answer stops,
//!   so the final list is `(start ∪ added) \ removed`;
//! - `edit` (ablation): one prompt showing the start list, answered with
//!   `+ name` / `- name` lines that edit the current list.
//!
//! The context of a decision is the prompt's tokens followed by the answer
//! so far, re-rendered from the earlier lines' effects (a drug's name for
//! an edit, the text as written for a refusal), each line tokenized with
//! its newline on its own. Acting and scoring build the same context from
//! the state, so PPO's ratios compare like with like; an expert (SFT) line
//! is exactly the tokens of its rendering.
//!
//! The model is trained from scratch ([`ScratchModel`], with a byte-level
//! BPE trained on the run's prompts, [`vocab`]) or read from a Hugging Face
//! folder (`model`, the module `pretrained`), optionally with LoRA adapters: then the
//! policy is the model with its adapter on. GRPO's KL reference is the
//! model GRPO started from, adapter and all (the trait's default
//! `score_reference`): FLAME's reference is the SFT policy, and an adapter
//! that SFT trained is part of it. Scoring the base with the adapter off
//! would pull GRPO back to the model before SFT; it equals the start only
//! where GRPO starts from a fresh adapter (`B = 0`).

mod init;
pub mod lamo;
mod pretrained;
mod prompt;
pub mod resources;
#[cfg(test)]
mod tests;
pub mod vocab;

use burn::module::Module;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use rxalign_core::{Action, Cohort, DrugSet, Rng};
use rxalign_lm::config::TokenIds;
use rxalign_lm::generate::left_pad;
use rxalign_lm::lora::TARGETS;
use rxalign_lm::{
    Adapter, CachedRow, DecodeRule, KvCache, Llama, LlamaConfig, LmError, LoraConfig, Message, Precision,
    Sampling, Tokenizer, decode,
};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub use prompt::{PLACEHOLDERS, TemplateFiles, Templates, render};
pub use rxalign_env::line::{DrugNames, LineKind, Refused, fold, parse_line};

use crate::init::{Redraw, RedrawAdapters};
use rxalign_policy::PolicyError;
use rxalign_policy::family::{
    ActMemo, ActMode, Acted, Effect, FamilyConfig, FamilyContext, PartReduction, PolicyFamily, Scored, State,
};

/// The family's kind in experiment files.
pub const KIND: &str = "llama";

/// The name of the LoRA adapter the family trains.
pub const ADAPTER: &str = "flame";

/// Which prompts the policy answers; written as a string
/// (`"add_remove"`, `"edit"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub enum PromptStyle {
    AddRemove,
    Edit,
}

impl TryFrom<String> for PromptStyle {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "add_remove" => Ok(Self::AddRemove),
            "edit" => Ok(Self::Edit),
            other => Err(format!("unknown prompt style `{other}`; known: add_remove, edit")),
        }
    }
}

impl From<PromptStyle> for String {
    fn from(p: PromptStyle) -> String {
        match p {
            PromptStyle::AddRemove => "add_remove",
            PromptStyle::Edit => "edit",
        }
        .to_string()
    }
}

/// The shape of a model trained from scratch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ScratchModel {
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// Width of the SwiGLU MLP.
    pub intermediate: usize,
    /// At most this many tokens in the BPE trained on the run's prompts.
    pub vocab: usize,
}

impl Default for ScratchModel {
    fn default() -> Self {
        Self {
            layers: 2,
            heads: 4,
            kv_heads: 2,
            head_dim: 16,
            intermediate: 128,
            vocab: 1024,
        }
    }
}

/// The `policy: (kind: "llama", ...)` settings of an experiment file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LlamaPolicyConfig {
    /// A Hugging Face model folder (`config.json`, `tokenizer.json`,
    /// safetensors), read relative to the working directory; exclusive with
    /// `scratch`.
    #[serde(deserialize_with = "prompt::some", skip_serializing_if = "Option::is_none")]
    pub model: Option<PathBuf>,
    /// The shape of a model trained from scratch; the default when neither
    /// this nor `model` is set.
    #[serde(deserialize_with = "prompt::some", skip_serializing_if = "Option::is_none")]
    pub scratch: Option<ScratchModel>,
    /// LoRA adapters on the model; unset: every weight trains.
    #[serde(deserialize_with = "prompt::some", skip_serializing_if = "Option::is_none")]
    pub lora: Option<LoraConfig>,
    /// Which prompts the policy answers: `"add_remove"` or `"edit"`.
    pub prompts: PromptStyle,
    /// Prompt template files replacing the built-in ones.
    pub templates: TemplateFiles,
    /// At most this many lines per answer.
    pub max_lines: usize,
    /// At most this many tokens per line.
    pub max_line_tokens: usize,
    /// The note is cut to this many characters.
    pub note_chars: usize,
    /// At most this many answers are generated at once (each keeps its
    /// keys and values while the batch decodes).
    pub act_batch: usize,
    /// How the pretrained model's weight matrices are stored: `"f32"`
    /// (default), or `"bf16"`/`"f16"` (2 bytes a value: a half-precision
    /// checkpoint kept as it is). Needs `model` and `lora` (the base stays
    /// frozen; the adapters and Adam's state are f32). Computation is f32
    /// ([`rxalign_lm::precision`]).
    pub precision: Precision,
}

impl Default for LlamaPolicyConfig {
    fn default() -> Self {
        Self {
            model: None,
            scratch: None,
            lora: None,
            prompts: PromptStyle::AddRemove,
            templates: TemplateFiles::default(),
            max_lines: 8,
            max_line_tokens: 12,
            note_chars: 300,
            act_batch: 64,
            precision: Precision::F32,
        }
    }
}

fn positive(field: &'static str, value: usize) -> Result<(), PolicyError> {
    if value == 0 {
        return Err(PolicyError::Config {
            field,
            message: "must be positive".into(),
        });
    }
    Ok(())
}

impl LlamaPolicyConfig {
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.model.is_some() && self.scratch.is_some() {
            return Err(PolicyError::Config {
                field: "model",
                message:
                    "is exclusive with `scratch` (a pretrained model's shape is its config.json); set one"
                        .into(),
            });
        }
        let s = &self.scratch.clone().unwrap_or_default();
        for (field, value) in [
            ("scratch.layers", s.layers),
            ("scratch.heads", s.heads),
            ("scratch.kv_heads", s.kv_heads),
            ("scratch.head_dim", s.head_dim),
            ("scratch.intermediate", s.intermediate),
            ("max_lines", self.max_lines),
            ("max_line_tokens", self.max_line_tokens),
            ("act_batch", self.act_batch),
        ] {
            positive(field, value)?;
        }
        if !s.heads.is_multiple_of(s.kv_heads) {
            return Err(PolicyError::Config {
                field: "scratch.kv_heads",
                message: format!("must divide `heads` ({})", s.heads),
            });
        }
        if !s.head_dim.is_multiple_of(2) {
            return Err(PolicyError::Config {
                field: "scratch.head_dim",
                message: "must be even (rotary positions)".into(),
            });
        }
        if self.model.is_none() && s.vocab < 300 {
            return Err(PolicyError::Config {
                field: "scratch.vocab",
                message: "must be at least 300 (the 256 bytes and the special tokens)".into(),
            });
        }
        if self.precision != Precision::F32 && (self.model.is_none() || self.lora.is_none()) {
            return Err(PolicyError::Config {
                field: "precision",
                message: format!(
                    "`{}` keeps a pretrained model's frozen weights in half precision: it needs `model` and `lora` (without LoRA every weight trains, and Adam's updates need f32 weights); use \"f32\"",
                    self.precision
                ),
            });
        }
        if let Some(l) = &self.lora {
            if l.rank == 0 || l.targets.is_empty() {
                return Err(PolicyError::Config {
                    field: "lora",
                    message: "needs a positive rank and at least one target".into(),
                });
            }
            if let Some(bad) = l.targets.iter().find(|t| !TARGETS.contains(&t.as_str())) {
                return Err(PolicyError::Config {
                    field: "lora.targets",
                    message: format!("unknown projection `{bad}`; known: {}", TARGETS.join(", ")),
                });
            }
        }
        // The template files are read when the family is built (a run's
        // start), relative to the working directory, so that a plan made
        // elsewhere still resolves.
        Ok(())
    }

    /// Answers per episode.
    pub fn answers(&self) -> usize {
        match self.prompts {
            PromptStyle::AddRemove => 2,
            PromptStyle::Edit => 1,
        }
    }

    /// At most this many decisions per episode: every answer's lines and
    /// its end.
    pub fn budget(&self) -> usize {
        self.answers() * (self.max_lines + 1)
    }

    /// The family on a run's cohort: the pretrained model's config and
    /// tokenizer (`model`, checked), or a tokenizer trained on the cohort's
    /// prompts (visits with all drug names as the list); and drug names.
    pub fn build(&self, cohort: &Cohort) -> Result<LlamaPolicy, PolicyError> {
        self.validate()?;
        if let Some(dir) = &self.model {
            return pretrained::build(self, dir, cohort);
        }
        let templates = self.templates.load()?;
        let names = DrugNames::new(&cohort.drugs).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        let all = DrugSet::from_indices(cohort.drug_count(), 0..cohort.drug_count());
        let mut texts: Vec<String> = Vec::new();
        for v in 0..cohort.visits.len() {
            for t in [&templates.add, &templates.remove, &templates.edit] {
                texts.push(render(t, cohort, v, &all, self.note_chars));
            }
        }
        let lines: String = cohort
            .drugs
            .iter()
            .flat_map(|(_, _, n)| [format!("{n}\n"), format!("+ {n}\n"), format!("- {n}\n")])
            .collect();
        texts.extend(std::iter::repeat_n(lines, 20));
        texts.push(templates.system.clone());
        let s = &self.scratch.clone().unwrap_or_default();
        let tokenizer = vocab::train(texts.iter().map(String::as_str), s.vocab)?;
        let mut llama = LlamaConfig::tiny(tokenizer.vocab_size(), s.layers, s.heads, s.kv_heads, s.head_dim);
        llama.intermediate_size = s.intermediate;
        llama.max_position_embeddings = 4096;
        llama.bos_token_id = None;
        llama.eos_token_id = tokenizer.stop_tokens.first().map(|&t| TokenIds::One(t));
        LlamaPolicy::new(self.clone(), llama, tokenizer, templates, names)
    }
}

/// One generated line (or the end of an answer).
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// The tokens, the one that ends the line included.
    pub tokens: Vec<u32>,
    /// The text, special tokens left out.
    pub text: String,
    pub effect: Effect,
    /// The end of an answer forced by `max_lines` (no part was chosen).
    pub forced: bool,
}

/// The `llama` family on a run's data.
#[derive(Clone, Debug)]
pub struct LlamaPolicy {
    config: LlamaPolicyConfig,
    llama: LlamaConfig,
    tokenizer: Tokenizer,
    templates: Templates,
    names: DrugNames,
    /// The end-of-answer token.
    eos: u32,
    /// Whether a token's text contains a newline (it ends a line).
    ends_line: Vec<bool>,
}

/// Where a state is in its episode: which prompt, and the lines of the
/// answer so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position<'a> {
    pub kind: LineKind,
    /// Whether the end of this answer ends the episode.
    pub last_answer: bool,
    pub lines: &'a [Effect],
}

impl LlamaPolicy {
    /// The family of `llama` with `tokenizer`.
    pub fn new(
        config: LlamaPolicyConfig,
        llama: LlamaConfig,
        tokenizer: Tokenizer,
        templates: Templates,
        names: DrugNames,
    ) -> Result<Self, PolicyError> {
        let eos = tokenizer
            .chat
            .as_ref()
            .and_then(|c| tokenizer.token_id(c.end_of_turn()))
            .ok_or_else(|| PolicyError::Invalid("the tokenizer has no chat template's end of turn".into()))?;
        let ends_line = (0..tokenizer.vocab_size() as u32)
            .map(|id| {
                tokenizer
                    .decode(&[id])
                    .map(|t| t.contains('\n'))
                    .map_err(|e| PolicyError::Invalid(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !ends_line.iter().any(|&e| e) {
            return Err(PolicyError::Invalid(
                "no token of the tokenizer ends a line".into(),
            ));
        }
        Ok(Self {
            config,
            llama,
            tokenizer,
            templates,
            names,
            eos,
            ends_line,
        })
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn config(&self) -> &LlamaPolicyConfig {
        &self.config
    }

    /// The end-of-answer token.
    pub fn eos(&self) -> u32 {
        self.eos
    }

    fn adapter(&self) -> Adapter {
        if self.config.lora.is_some() {
            Adapter::On(0)
        } else {
            Adapter::Off
        }
    }

    /// Which prompt `state` answers and the lines of its answer so far.
    pub fn position<'s>(&self, state: &State<'s>) -> Position<'s> {
        match self.config.prompts {
            PromptStyle::Edit => Position {
                kind: LineKind::Signed,
                last_answer: true,
                lines: state.earlier,
            },
            PromptStyle::AddRemove => match state.earlier.iter().position(|e| *e == Effect::NextPrompt) {
                None => Position {
                    kind: LineKind::Add,
                    last_answer: false,
                    lines: state.earlier,
                },
                Some(end) => Position {
                    kind: LineKind::Remove,
                    last_answer: true,
                    lines: &state.earlier[end + 1..],
                },
            },
        }
    }

    /// How an earlier line of the answer reads in the context.
    fn line_text(&self, effect: &Effect, cohort: &Cohort) -> String {
        let name = |d: usize| cohort.drugs.name(d).to_string();
        match (self.config.prompts, effect) {
            (PromptStyle::Edit, Effect::Act(Action::Add(d))) => format!("+ {}", name(*d)),
            (PromptStyle::Edit, Effect::Act(Action::Remove(d))) => format!("- {}", name(*d)),
            (_, Effect::Act(Action::Add(d) | Action::Remove(d))) => name(*d),
            (_, Effect::Refusal(text)) => text.clone(),
            (_, Effect::Act(Action::Stop) | Effect::NextPrompt) => String::new(),
        }
    }

    /// The tokens of a line's text with its newline.
    fn line_tokens(&self, text: &str) -> Result<Vec<u32>, PolicyError> {
        self.tokenizer
            .encode(&format!("{text}\n"), false)
            .map_err(|e| PolicyError::Invalid(e.to_string()))
    }

    /// The context of a decision at `state`: the chat's tokens up to the
    /// assistant's turn, then the answer so far.
    pub fn context(&self, cohort: &Cohort, state: &State<'_>) -> Result<Vec<u32>, PolicyError> {
        let mut tokens = self.prompt(cohort, state)?;
        for line in self.position(state).lines {
            tokens.extend(self.line_tokens(&self.line_text(line, cohort))?);
        }
        Ok(tokens)
    }

    /// The chat an answer starts from (the system and user turns, the
    /// assistant's turn opened): what [`Self::context`] adds the answer's
    /// earlier lines to.
    fn prompt(&self, cohort: &Cohort, state: &State<'_>) -> Result<Vec<u32>, PolicyError> {
        let template = match self.position(state).kind {
            LineKind::Add => &self.templates.add,
            LineKind::Remove => &self.templates.remove,
            LineKind::Signed => &self.templates.edit,
        };
        let user = render(template, cohort, state.visit, state.start, self.config.note_chars);
        self.tokenizer
            .encode_chat(&[
                Message::system(self.templates.system.clone()),
                Message::user(user),
            ])
            .map_err(|e| PolicyError::Invalid(e.to_string()))
    }

    /// The line of `tokens` at `state`: its text and what it does.
    pub fn line(&self, state: &State<'_>, tokens: Vec<u32>, forced: bool) -> Result<Line, PolicyError> {
        let pos = self.position(state);
        if tokens.first() == Some(&self.eos) {
            let effect = if pos.last_answer {
                Effect::Act(Action::Stop)
            } else {
                Effect::NextPrompt
            };
            return Ok(Line {
                tokens,
                text: String::new(),
                effect,
                forced,
            });
        }
        let text = self
            .tokenizer
            .decode(&tokens)
            .map_err(|e| PolicyError::Invalid(e.to_string()))?;
        let text = text.trim_end_matches(['\n', '\r']).to_string();
        let effect = match parse_line(&text, pos.kind, &self.names, state.list, state.start) {
            Ok(a) => Effect::Act(a),
            Err(_) => Effect::Refusal(text.clone()),
        };
        Ok(Line {
            tokens,
            text,
            effect,
            forced,
        })
    }

    /// Whether the answer at `state` has used its lines.
    fn answer_full(&self, state: &State<'_>) -> bool {
        self.position(state).lines.len() >= self.config.max_lines
    }

    /// Generates one line per context. With `memo`, each context is
    /// continued from the longest beginning it shares with a row of the
    /// memo (the previous call's contexts and their lines), so that only
    /// its new tokens are read; the memo then holds this call's rows.
    ///
    /// # Shapes
    /// As [`decode`]: each context's unread tokens after its cached
    /// `[rows, kv_heads, cached, head_dim]` keys and values.
    fn generate<B: Backend>(
        &self,
        model: &Llama<B>,
        contexts: &[Vec<u32>],
        mode: ActMode,
        rng: &mut Rng,
        mut memo: Option<&mut ActMemo>,
    ) -> Result<Vec<Generated>, PolicyError> {
        if contexts.is_empty() {
            return Ok(Vec::new());
        }
        let kept: Vec<(Vec<u32>, CachedRow<B>)> = memo
            .as_deref_mut()
            .and_then(|m| m.take::<Kept<B>>())
            .map_or_else(Vec::new, |k| k.rows);
        // Each context's longest shared beginning with a kept row, leaving
        // at least its last token to read.
        let reuse: Vec<Option<(&CachedRow<B>, usize)>> = contexts
            .iter()
            .map(|c| {
                kept.iter()
                    .map(|(tokens, row)| {
                        let shared = tokens.iter().zip(c).take_while(|(a, b)| a == b).count();
                        (row, shared.min(c.len() - 1))
                    })
                    .max_by_key(|(_, n)| *n)
                    .filter(|(_, n)| *n > 0)
            })
            .collect();
        let mut cache = KvCache::from_rows(self.llama.num_hidden_layers, &reuse);
        let suffixes: Vec<&[u32]> = contexts
            .iter()
            .zip(&reuse)
            .map(|(c, r)| &c[r.map_or(0, |(_, n)| n)..])
            .collect();
        let stop = |t: u32| t == self.eos || self.ends_line.get(t as usize).copied().unwrap_or(false);
        let rule = DecodeRule {
            max_new_tokens: self.config.max_line_tokens,
            sampling: match mode {
                ActMode::Greedy => Sampling::Greedy,
                ActMode::Sample { temperature } => Sampling::at(temperature as f32),
            },
            stop: &stop,
            // The end of the answer begins a line or nothing.
            banned_after_first: &[self.eos],
            pad: self.eos,
        };
        let (decoded, _) =
            decode(model, &mut cache, &suffixes, self.adapter(), &rule, rng).map_err(lm_error)?;
        let out: Vec<Generated> = decoded.into_iter().map(|d| (d.tokens, d.log_probs)).collect();
        if let Some(memo) = memo {
            let mut rows_kept = Vec::with_capacity(contexts.len());
            for (r, (context, (tokens, _))) in contexts.iter().zip(&out).enumerate() {
                let read = [context.as_slice(), &tokens[..tokens.len().saturating_sub(1)]].concat();
                if let Some(row) = cache.row(r)
                    && row.len() == read.len()
                {
                    rows_kept.push((read, row));
                }
            }
            memo.put(Kept { rows: rows_kept });
        }
        Ok(out)
    }

    /// One line per state (the end of the answer where `max_lines` are
    /// written), generated with `memo` when the runner keeps one.
    fn act_lines<B: Backend>(
        &self,
        model: &Llama<B>,
        cohort: &Cohort,
        states: &[State<'_>],
        mode: ActMode,
        rng: &mut Rng,
        memo: Option<&mut ActMemo>,
    ) -> Result<Vec<Acted<Line>>, PolicyError> {
        let mut free = Vec::new();
        let mut contexts = Vec::new();
        for (i, s) in states.iter().enumerate() {
            if !self.answer_full(s) {
                free.push(i);
                contexts.push(self.context(cohort, s)?);
            }
        }
        let mut generated = self.generate(model, &contexts, mode, rng, memo)?.into_iter();
        let mut free = free.into_iter().peekable();
        let mut out = Vec::with_capacity(states.len());
        for (i, s) in states.iter().enumerate() {
            if free.peek() == Some(&i) {
                free.next();
                let (tokens, parts) = generated.next().unwrap_or_default();
                out.push(Acted {
                    decision: self.line(s, tokens, false)?,
                    parts,
                });
            } else {
                out.push(Acted {
                    decision: self.line(s, vec![self.eos], true)?,
                    parts: Vec::new(),
                });
            }
        }
        Ok(out)
    }

    /// Scores `decisions` at `states` with `adapter`.
    ///
    /// A decision's sequence is its context followed by its tokens. The
    /// lines of one answer are prefixes of one another (an earlier line's
    /// context and tokens begin a later line's context), so each sequence
    /// that begins another is read from the longer one's row ([`rows`]): an
    /// expert answer of `L` lines costs one forward pass, not `L`. A
    /// generated line whose text is re-rendered differently (a name written
    /// in another case) gets a row of its own. Rows that answer the same
    /// prompt (a GRPO group's rollouts of one visit) read it once: all of
    /// it but its last token, whose keys and values continue each row
    /// ([`prompt_groups`]), in one graph, so gradients reach it through
    /// them.
    ///
    /// # Shapes
    /// - forward pass on `[rows, width]` tokens, hidden `[rows, width, hidden]`;
    /// - the hidden states that predict each decision's tokens are gathered
    ///   into `[n, parts, hidden]`, so the head runs on `n · parts`
    ///   positions only;
    /// - output `logp`, `mask`: `[n, parts]`, left-aligned (column `k` is
    ///   token `k` of the line).
    #[expect(clippy::too_many_arguments, reason = "score's inputs and the adapter")]
    fn score_with<B: Backend>(
        &self,
        model: &Llama<B>,
        cohort: &Cohort,
        states: &[State<'_>],
        decisions: &[Line],
        temperature: f64,
        adapter: Adapter,
        device: &B::Device,
    ) -> Result<Scored<B>, PolicyError> {
        let n = states.len();
        let parts = decisions.iter().map(|d| d.tokens.len()).max().unwrap_or(1).max(1);
        let mut seqs = Vec::with_capacity(n);
        // Where each decision's tokens begin in its sequence (after a
        // non-empty context: the chat's tokens), and its prompt's length.
        let mut begins = Vec::with_capacity(n);
        let mut prompts = Vec::with_capacity(n);
        for (s, d) in states.iter().zip(decisions) {
            let mut seq = self.prompt(cohort, s)?;
            if seq.is_empty() {
                return Err(PolicyError::Invalid("an empty prompt".into()));
            }
            prompts.push(seq.len());
            for line in self.position(s).lines {
                seq.extend(self.line_tokens(&self.line_text(line, cohort))?);
            }
            begins.push(seq.len());
            seq.extend(&d.tokens);
            seqs.push(seq);
        }
        let (row_of, hosts) = rows(&seqs);
        let r = hosts.len();
        // Each row's prompt length (its decisions answer one prompt).
        let mut prompt_of_row = vec![0; r];
        for (i, &row) in row_of.iter().enumerate() {
            prompt_of_row[row] = prompts[i];
        }
        let (group_of, groups) = prompt_groups(&seqs, &hosts, &prompt_of_row);
        let heads: Vec<&[u32]> = groups
            .iter()
            .map(|&(row, len)| &seqs[hosts[row]][..len])
            .collect();
        let prefixes = read_prefixes(model, &heads, self.eos, adapter);
        // Per row: the prompt part read once (its keys and values) and how
        // many of the row's tokens it holds.
        let continued: Vec<Option<(&CachedRow<B>, usize)>> = group_of
            .iter()
            .map(|g| g.and_then(|g| prefixes[g].as_ref().map(|c| (c, groups[g].1))))
            .collect();
        let from: Vec<usize> = continued.iter().map(|c| c.map_or(0, |(_, len)| len)).collect();
        let refs: Vec<&[u32]> = hosts
            .iter()
            .zip(&from)
            .map(|(&i, &from)| &seqs[i][from..])
            .collect();
        let (ids, real, width) = left_pad(&refs, self.eos);
        let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [r, width]), device);
        let mut cache = KvCache::from_rows(self.llama.num_hidden_layers, &continued);
        let h = model.hidden(tokens, Some(&real), Some(&mut cache), adapter); // [r, width, hidden]
        let hidden = h.dims()[2];
        let vocab = self.llama.vocab_size;
        // Entry (i, k): the flat position of the hidden state that predicts
        // token k of decision i, the token, and whether the end-of-answer
        // token is masked out there (inside a line, k >= 1).
        let mut at = vec![0i64; n * parts];
        let mut targets = vec![0i64; n * parts];
        let mut inside = vec![0.0f32; n * parts];
        let mut mask = vec![0.0f32; n * parts];
        for (i, d) in decisions.iter().enumerate() {
            let row = row_of[i];
            let pad = width - refs[row].len();
            for (k, &token) in d.tokens.iter().enumerate() {
                // begins[i] - 1 >= prompt - 1 = from[row]: every predicting
                // position is in the row's own part.
                at[i * parts + k] = (row * width + pad + begins[i] + k - 1 - from[row]) as i64;
                targets[i * parts + k] = i64::from(token);
                inside[i * parts + k] = if k >= 1 { 1.0 } else { 0.0 };
                if !d.forced {
                    mask[i * parts + k] = 1.0;
                }
            }
        }
        let at = Tensor::<B, 1, Int>::from_data(TensorData::new(at, [n * parts]), device);
        let h = h
            .reshape([r * width, hidden])
            .select(0, at)
            .reshape([n, parts, hidden]);
        let logits = model.head(h) / temperature; // [n, parts, vocab]
        let mut eos_column = vec![0.0f32; vocab];
        eos_column[self.eos as usize] = -1.0e9;
        let bias = Tensor::<B, 3>::from_data(TensorData::new(inside, [n, parts, 1]), device)
            * Tensor::<B, 3>::from_data(TensorData::new(eos_column, [1, 1, vocab]), device); // [n, parts, vocab]
        let lp = log_softmax(logits + bias, 2); // [n, parts, vocab]
        let targets = Tensor::<B, 3, Int>::from_data(TensorData::new(targets, [n, parts, 1]), device);
        let mask = Tensor::<B, 2>::from_data(TensorData::new(mask, [n, parts]), device);
        Ok(Scored {
            logp: lp.gather(2, targets).reshape([n, parts]) * mask.clone(), // [n, parts]
            mask,
            distribution: None,
        })
    }
}

/// The rows a batch of sequences needs: a sequence that begins another is
/// read from the longer one's row. Returns each sequence's row and each
/// row's sequence (the longest of its chain), rows in order of first use.
///
/// Sorted lexicographically, a sequence that begins any other begins the
/// one right after it, so one backward pass finds every chain's longest.
fn rows(seqs: &[Vec<u32>]) -> (Vec<usize>, Vec<usize>) {
    let n = seqs.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| seqs[a].cmp(&seqs[b]));
    let mut longest: Vec<usize> = (0..n).collect();
    for k in (0..n.saturating_sub(1)).rev() {
        let (i, j) = (order[k], order[k + 1]);
        if seqs[j].starts_with(&seqs[i]) {
            longest[i] = longest[j];
        }
    }
    let mut row_of_host = vec![usize::MAX; n];
    let mut hosts = Vec::new();
    let row_of = (0..n)
        .map(|i| {
            let host = longest[i];
            if row_of_host[host] == usize::MAX {
                row_of_host[host] = hosts.len();
                hosts.push(host);
            }
            row_of_host[host]
        })
        .collect();
    (row_of, hosts)
}

/// The rows (indices into `hosts`) that begin with the same prompt, two
/// or more of them: per row its group, if any, and per group its first row
/// and how many tokens its rows read once (the prompt but its last token,
/// whose position predicts the answer's first token). A row whose tokens
/// do not begin with its prompt (`prompt_of_row`) stays alone.
fn prompt_groups(
    seqs: &[Vec<u32>],
    hosts: &[usize],
    prompt_of_row: &[usize],
) -> (Vec<Option<usize>>, Vec<(usize, usize)>) {
    let mut rows_of: std::collections::HashMap<&[u32], Vec<usize>> = std::collections::HashMap::new();
    let mut order: Vec<&[u32]> = Vec::new();
    for (row, (&host, &len)) in hosts.iter().zip(prompt_of_row).enumerate() {
        if len < 2 || seqs[host].len() < len {
            continue;
        }
        let prompt = &seqs[host][..len];
        let rows = rows_of.entry(prompt).or_default();
        if rows.is_empty() {
            order.push(prompt);
        }
        rows.push(row);
    }
    let mut group_of = vec![None; hosts.len()];
    let mut groups = Vec::new();
    for prompt in order {
        let rows = &rows_of[prompt];
        if rows.len() < 2 {
            continue;
        }
        for &row in rows {
            group_of[row] = Some(groups.len());
        }
        groups.push((rows[0], prompt.len() - 1));
    }
    (group_of, groups)
}

/// The keys and values of each of `heads` (token lists, each non-empty),
/// read in one forward call, so that the sequences that begin with one
/// continue it ([`KvCache::from_rows`]); nothing when `heads` is empty.
pub(crate) fn read_prefixes<B: Backend>(
    model: &Llama<B>,
    heads: &[&[u32]],
    pad: u32,
    adapter: Adapter,
) -> Vec<Option<CachedRow<B>>> {
    if heads.is_empty() {
        return Vec::new();
    }
    let (ids, real, width) = left_pad(heads, pad);
    let tokens = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [heads.len(), width]), &model.device());
    let mut cache = KvCache::new(model.config.num_hidden_layers);
    let _ = model.hidden(tokens, Some(&real), Some(&mut cache), adapter);
    (0..heads.len()).map(|k| cache.row(k)).collect()
}

/// A generated line's tokens and each token's log-probability.
type Generated = (Vec<u32>, Vec<f32>);

/// What [`LlamaPolicy`] keeps in its [`ActMemo`]: each row of the last
/// act call, the tokens it has read and their keys and values.
struct Kept<B: Backend> {
    rows: Vec<(Vec<u32>, CachedRow<B>)>,
}

/// A language-model error as the policy's: a diverged model stays a
/// divergence (the runner isolates it), anything else is invalid.
fn lm_error(e: LmError) -> PolicyError {
    match e {
        LmError::NonFinite { what } => PolicyError::NonFinite { what },
        e => PolicyError::Invalid(e.to_string()),
    }
}

/// `model` frozen under a fresh adapter (`B = 0`), its `A` matrices drawn
/// from `rng`.
fn with_adapter<B: Backend>(
    model: Llama<B>,
    lora: &LoraConfig,
    rng: &mut Rng,
) -> Result<Llama<B>, PolicyError> {
    let model = model
        .freeze()
        .add_adapter(ADAPTER, lora.clone())
        .map_err(|e| PolicyError::Config {
            field: "lora",
            message: e.to_string(),
        })?;
    Ok(model.map(&mut RedrawAdapters::new(rng)))
}

impl PolicyFamily for LlamaPolicy {
    type Model<B: Backend> = Llama<B>;
    type Trainable<B: AutodiffBackend> = Llama<B>;
    type Decision = Line;

    fn as_model<B: AutodiffBackend>(model: &Llama<B>) -> &Llama<B> {
        model
    }

    fn into_trainable<B: AutodiffBackend>(model: Llama<B>) -> Llama<B> {
        model
    }

    fn kind(&self) -> &str {
        KIND
    }

    fn init<B: Backend>(&self, rng: &mut Rng, device: &B::Device) -> Result<Llama<B>, PolicyError> {
        let model = match &self.config.model {
            Some(dir) => pretrained::load(dir, device, self.config.precision)?,
            None => self.llama.init::<B>(device).map(&mut Redraw { rng }),
        };
        match &self.config.lora {
            Some(lora) => with_adapter(model, lora, rng),
            None => Ok(model),
        }
    }

    fn act<B: Backend>(
        &self,
        model: &Llama<B>,
        cohort: &Cohort,
        states: &[State<'_>],
        mode: ActMode,
        rng: &mut Rng,
        _device: &B::Device,
    ) -> Result<Vec<Acted<Line>>, PolicyError> {
        // The model's own device: `decode` builds its tensors there.
        self.act_lines(model, cohort, states, mode, rng, None)
    }

    fn act_with_memo<B: Backend>(
        &self,
        model: &Llama<B>,
        cohort: &Cohort,
        states: &[State<'_>],
        mode: ActMode,
        rng: &mut Rng,
        _device: &B::Device,
        memo: &mut ActMemo,
    ) -> Result<Vec<Acted<Line>>, PolicyError> {
        self.act_lines(model, cohort, states, mode, rng, Some(memo))
    }

    fn score<B: Backend>(
        &self,
        model: &Llama<B>,
        cohort: &Cohort,
        states: &[State<'_>],
        decisions: &[Line],
        temperature: f64,
        device: &B::Device,
    ) -> Result<Scored<B>, PolicyError> {
        self.score_with(
            model,
            cohort,
            states,
            decisions,
            temperature,
            self.adapter(),
            device,
        )
    }

    fn effect(&self, decision: &Line, _: &Cohort) -> Effect {
        decision.effect.clone()
    }

    fn expert(&self, state: State<'_>, action: Action, cohort: &Cohort) -> Line {
        let full = self.answer_full(&state);
        let tokens = match action {
            Action::Stop => Ok(vec![self.eos]),
            Action::Add(_) | Action::Remove(_) => {
                let effect = Effect::Act(action);
                self.line_tokens(&self.line_text(&effect, cohort))
            }
        };
        let line = tokens.and_then(|t| self.line(&state, t, full && action == Action::Stop));
        match line {
            Ok(line) => line,
            // Encoding and decoding a drug name never fails for a
            // byte-level tokenizer; if it did, the line is a refusal.
            Err(e) => Line {
                tokens: vec![self.eos],
                text: String::new(),
                effect: Effect::Refusal(e.to_string()),
                forced: true,
            },
        }
    }

    /// FLAME's expert answers: the misses to add, then (after the end of
    /// the add answer) the extras to remove, each sorted by drug index and
    /// cut to `max_lines`; the one-prompt style writes both in one answer.
    fn expert_plan(&self, start: &DrugSet, truth: &DrugSet) -> Vec<Action> {
        let mut misses = truth.clone();
        misses.difference_with(start);
        let mut extras = start.clone();
        extras.difference_with(truth);
        let max = self.config.max_lines;
        let adds = misses.iter().map(Action::Add);
        let removes = extras.iter().map(Action::Remove);
        match self.config.prompts {
            PromptStyle::AddRemove => adds
                .take(max)
                .chain([Action::Stop])
                .chain(removes.take(max))
                .chain([Action::Stop])
                .collect(),
            PromptStyle::Edit => adds.chain(removes).take(max).chain([Action::Stop]).collect(),
        }
    }

    fn refuses(&self) -> bool {
        true
    }

    /// A pretrained base under LoRA adapters is the folder's, rebuilt by
    /// `init`: checkpoints keep the adapters only.
    fn checkpoint_keeps(&self) -> rxalign_policy::checkpoint::Keep {
        match (&self.config.model, &self.config.lora) {
            (Some(_), Some(_)) => rxalign_policy::checkpoint::Keep::Trainable,
            _ => rxalign_policy::checkpoint::Keep::All,
        }
    }

    fn scores_episodes_together(&self) -> bool {
        true
    }

    fn max_act_batch(&self) -> Option<usize> {
        Some(self.config.act_batch)
    }

    /// The line as generated (special tokens left out), or `<end of
    /// answer>` for the end-of-answer token.
    fn decision_text(&self, line: &Line) -> Option<String> {
        Some(if line.tokens.first() == Some(&self.eos) {
            "<end of answer>".to_string()
        } else {
            line.text.clone()
        })
    }

    fn reduction(&self) -> PartReduction {
        PartReduction::Sum
    }
}

impl FamilyConfig for LlamaPolicyConfig {
    type Family = LlamaPolicy;

    fn validate(&self) -> Result<(), PolicyError> {
        LlamaPolicyConfig::validate(self)
    }

    fn budget(&self) -> usize {
        LlamaPolicyConfig::budget(self)
    }

    fn build(&self, ctx: &FamilyContext<'_>) -> Result<LlamaPolicy, PolicyError> {
        LlamaPolicyConfig::build(self, ctx.cohort)
    }
}
