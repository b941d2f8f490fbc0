//! Note tokens: a visit's free-text note as a set of token ids, from the
//! `tokenizers` crate. The tokenizer is either read from a `tokenizer.json`
//! (a BERT WordPiece, say) or trained with the crate's own BPE trainer on
//! the training split's notes.
//!
//! The trained tokenizer is BPE without a continuing-subword prefix: the
//! trainer's alphabet is sorted and each merge takes the most frequent pair,
//! ties to the smaller ids, so the same notes always give the same
//! vocabulary. (Its WordPiece trainer is not deterministic: the ids of the
//! `##` pieces follow a hash map's order, and ties between merges follow
//! those ids.)

use std::path::Path;

use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::normalizers::utils::Lowercase;
use tokenizers::normalizers::{NFD, NormalizerWrapper, Sequence, StripAccents};
use tokenizers::pre_tokenizers::whitespace::Whitespace;
use tokenizers::{AddedToken, ModelWrapper, Tokenizer};

use rxalign_core::Cohort;
use rxalign_policy::PolicyError;
use rxalign_policy::features::VisitFeatures;

/// The unknown-piece token of the trained tokenizer.
const UNKNOWN: &str = "[UNK]";

/// A note tokenizer.
#[derive(Clone, Debug)]
pub struct NoteTokenizer {
    tokenizer: Tokenizer,
}

impl NoteTokenizer {
    /// Trains a BPE tokenizer (lower-cased, split on whitespace and
    /// punctuation) on `notes` with at most `vocab_size` tokens, merging
    /// pairs seen at least `min_frequency` times.
    pub fn train<'a>(
        notes: impl Iterator<Item = &'a str> + Send,
        vocab_size: usize,
        min_frequency: u64,
    ) -> Result<Self, PolicyError> {
        let fail = |e: tokenizers::Error| PolicyError::Invalid(format!("training the note tokenizer: {e}"));
        let model = BPE::builder().unk_token(UNKNOWN.into()).build().map_err(fail)?;
        let mut tokenizer = Tokenizer::new(ModelWrapper::from(model));
        tokenizer.with_normalizer(Some(NormalizerWrapper::from(Sequence::new(vec![
            NFD.into(),
            StripAccents.into(),
            Lowercase.into(),
        ]))));
        tokenizer.with_pre_tokenizer(Some(Whitespace {}));
        let mut trainer = TrainerWrapper::from(
            BpeTrainerBuilder::new()
                .vocab_size(vocab_size)
                .min_frequency(min_frequency)
                .show_progress(false)
                .special_tokens(vec![AddedToken::from(UNKNOWN, true)])
                .build(),
        );
        tokenizer.train(&mut trainer, notes).map_err(fail)?;
        Ok(Self { tokenizer })
    }

    /// Codes, previous drugs and the tokens of every visit's note: the
    /// visit features of a run that reads notes.
    pub fn visit_features(&self, cohort: &Cohort) -> Result<VisitFeatures, PolicyError> {
        let notes = cohort
            .visits
            .iter()
            .map(|v| v.note.as_deref().map_or(Ok(Vec::new()), |n| self.token_set(n)))
            .collect::<Result<Vec<_>, _>>()?;
        VisitFeatures::with_note_tokens(cohort, self.vocab_size(), notes)
    }

    /// Reads a `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Self, PolicyError> {
        let tokenizer = Tokenizer::from_file(path)
            .map_err(|e| PolicyError::Invalid(format!("{}: not a tokenizer file: {e}", path.display())))?;
        Ok(Self { tokenizer })
    }

    /// Reads the text of a `tokenizer.json`.
    pub fn from_json(text: &str) -> Result<Self, PolicyError> {
        let tokenizer: Tokenizer = text
            .parse()
            .map_err(|e| PolicyError::Invalid(format!("not a tokenizer: {e}")))?;
        Ok(Self { tokenizer })
    }

    /// The tokenizer as `tokenizer.json` text.
    pub fn to_json(&self) -> Result<String, PolicyError> {
        self.tokenizer
            .to_string(true)
            .map_err(|e| PolicyError::Invalid(format!("writing the note tokenizer: {e}")))
    }

    /// The number of token ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// The distinct token ids of a note, in increasing order (special
    /// tokens such as `[CLS]` are not added).
    pub fn token_set(&self, note: &str) -> Result<Vec<u32>, PolicyError> {
        let encoding = self
            .tokenizer
            .encode(note, false)
            .map_err(|e| PolicyError::Invalid(format!("tokenizing a note: {e}")))?;
        let mut ids = encoding.get_ids().to_vec();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// The tokens of a note, as text (for reading and tests).
    pub fn tokens(&self, note: &str) -> Result<Vec<String>, PolicyError> {
        let encoding = self
            .tokenizer
            .encode(note, false)
            .map_err(|e| PolicyError::Invalid(format!("tokenizing a note: {e}")))?;
        Ok(encoding.get_tokens().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTES: [&str; 4] = [
        "72-year-old woman admitted with community-acquired pneumonia. Allergic to penicillins.",
        "History of type 2 diabetes mellitus and hypertension. On metformin at home.",
        "58-year-old man admitted with atrial fibrillation. No known drug allergies.",
        "Severe exacerbation of asthma; on inhaled salbutamol at home.",
    ];

    fn notes() -> impl Iterator<Item = &'static str> + Send {
        NOTES.iter().copied().cycle().take(40)
    }

    #[test]
    fn training_twice_gives_the_same_tokenizer() {
        let a = NoteTokenizer::train(notes(), 400, 2).unwrap();
        let b = NoteTokenizer::train(notes(), 400, 2).unwrap();
        assert_eq!(a.to_json().unwrap(), b.to_json().unwrap());
        for note in NOTES {
            assert_eq!(a.token_set(note).unwrap(), b.token_set(note).unwrap());
        }
    }

    #[test]
    fn frequent_words_become_tokens_and_survive_a_round_trip() {
        let t = NoteTokenizer::train(notes(), 400, 2).unwrap();
        let tokens = t.tokens(NOTES[0]).unwrap();
        assert!(tokens.contains(&"penicillins".to_string()), "{tokens:?}");
        assert!(tokens.contains(&"woman".to_string()), "{tokens:?}");
        let back = NoteTokenizer::from_json(&t.to_json().unwrap()).unwrap();
        assert_eq!(back.token_set(NOTES[1]).unwrap(), t.token_set(NOTES[1]).unwrap());
        let ids = t.token_set(NOTES[0]).unwrap();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(ids.iter().all(|&i| (i as usize) < t.vocab_size()));
    }

    #[test]
    fn an_unseen_character_is_unknown_not_an_error() {
        let t = NoteTokenizer::train(notes(), 400, 2).unwrap();
        let tokens = t.tokens("zzz €").unwrap();
        assert!(tokens.contains(&UNKNOWN.to_string()), "{tokens:?}");
    }

    #[test]
    fn a_missing_tokenizer_file_names_the_path() {
        let e = NoteTokenizer::from_file(Path::new("no/such/tokenizer.json")).unwrap_err();
        assert!(e.to_string().contains("no/such/tokenizer.json"), "{e}");
    }
}
