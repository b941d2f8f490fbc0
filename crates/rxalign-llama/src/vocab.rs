//! The tokenizer of a model trained from scratch: byte-level BPE (GPT-2's
//! pre-tokenizer, so every text has tokens and a newline is its own token)
//! trained with the `tokenizers` crate on the run's prompt texts, with
//! ChatML's special tokens, so the model's chat template is ChatML.

use rxalign_lm::tokenizer::train_byte_level_bpe;
use rxalign_lm::{ChatTemplate, Tokenizer};

use rxalign_policy::PolicyError;

/// The special tokens, in id order from 0.
pub const SPECIAL: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// Trains a byte-level BPE of at most `vocab_size` tokens on `texts`.
pub fn train<'a>(
    texts: impl Iterator<Item = &'a str> + Send,
    vocab_size: usize,
) -> Result<Tokenizer, PolicyError> {
    let tokenizer = train_byte_level_bpe(texts, vocab_size, &SPECIAL)
        .map_err(|e| PolicyError::Invalid(format!("training the prompt tokenizer: {e}")))?;
    let end = tokenizer
        .token_to_id("<|im_end|>")
        .ok_or_else(|| PolicyError::Invalid("the prompt tokenizer lost `<|im_end|>`".into()))?;
    let eot = tokenizer.token_to_id("<|endoftext|>");
    let mut stop = vec![end];
    stop.extend(eot);
    Ok(Tokenizer::from_parts(
        tokenizer,
        Some(ChatTemplate::ChatMl { default_system: None }),
        stop,
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_newlines_are_tokens() {
        let texts = [
            "Aspirin\nBeta blocker\n",
            "Which drugs should be added?\nAspirin\n",
        ];
        let t = train(texts.iter().copied().cycle().take(50), 300).unwrap();
        let ids = t.encode("Aspirin\nCalcium\n", false).unwrap();
        assert_eq!(t.decode(&ids).unwrap(), "Aspirin\nCalcium\n");
        let chat = t.encode_chat(&[rxalign_lm::Message::user("Hi")]).unwrap();
        let start = t.token_id("<|im_start|>").unwrap();
        assert_eq!(chat[0], start, "special tokens are single tokens");
        assert!(t.stop_tokens.contains(&t.token_id("<|im_end|>").unwrap()));
        // Training is deterministic.
        let again = train(texts.iter().copied().cycle().take(50), 300).unwrap();
        assert_eq!(again.encode("Aspirin\nCalcium\n", false).unwrap(), ids);
    }
}
