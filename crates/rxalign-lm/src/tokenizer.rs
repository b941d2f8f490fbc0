//! Text in and out: a Hugging Face `tokenizer.json` through the `tokenizers`
//! crate (byte-level BPE of GPT-2, Llama-3 and Qwen2 style), the model's chat
//! template written in code, and the tokens that end a completion.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{LlamaConfig, TokenIds};
use crate::error::{LmError, Result, read_json};

/// How a chat is laid out for the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatTemplate {
    /// `<|im_start|>role\ncontent<|im_end|>\n` (SmolLM2, Qwen2). The default
    /// system message is the one the model's own template inserts when a
    /// chat has none.
    ChatMl { default_system: Option<String> },
    /// Llama 3's `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>`,
    /// after `<|begin_of_text|>`.
    Llama3,
}

/// One turn of a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: "user".into(),
            content: content.into(),
        }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Message {
            role: "system".into(),
            content: content.into(),
        }
    }
}

impl ChatTemplate {
    /// The text of a chat, ending with the header of the assistant's turn
    /// (the generation prompt). Special tokens (BOS included) are written
    /// out here, so the text is encoded without adding any.
    pub fn render(&self, messages: &[Message]) -> String {
        let mut out = String::new();
        match self {
            ChatTemplate::ChatMl { default_system } => {
                if let (Some(system), Some(first)) = (default_system, messages.first())
                    && first.role != "system"
                {
                    out.push_str(&format!("<|im_start|>system\n{system}<|im_end|>\n"));
                }
                for m in messages {
                    out.push_str(&format!("<|im_start|>{}\n{}<|im_end|>\n", m.role, m.content));
                }
                out.push_str("<|im_start|>assistant\n");
            }
            ChatTemplate::Llama3 => {
                out.push_str("<|begin_of_text|>");
                for m in messages {
                    out.push_str(&format!(
                        "<|start_header_id|>{}<|end_header_id|>\n\n{}<|eot_id|>",
                        m.role,
                        m.content.trim()
                    ));
                }
                out.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
            }
        }
        out
    }

    /// The special token that ends a turn.
    pub fn end_of_turn(&self) -> &'static str {
        match self {
            ChatTemplate::ChatMl { .. } => "<|im_end|>",
            ChatTemplate::Llama3 => "<|eot_id|>",
        }
    }
}

/// The default system message a ChatML Jinja template inserts, if any: the
/// literal text after `<|im_start|>system\n` up to `<|im_end|>`.
fn chatml_default_system(jinja: &str) -> Option<String> {
    let start = jinja.find("<|im_start|>system\n")? + "<|im_start|>system\n".len();
    let rest = &jinja[start..];
    let end = rest.find("<|im_end|>")?;
    let text = &rest[..end];
    // A template that inserts the caller's message ('+ message...') has no default.
    (!text.contains('\'') && !text.contains("{{") && !text.is_empty()).then(|| text.to_string())
}

#[derive(Debug, Deserialize)]
struct TokenizerConfig {
    #[serde(default)]
    chat_template: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct GenerationConfig {
    #[serde(default)]
    eos_token_id: Option<TokenIds>,
}

/// A model's tokenizer with its chat template and stop tokens.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
    pub chat: Option<ChatTemplate>,
    /// Tokens that end a completion: the config's and generation config's
    /// EOS ids and the chat template's end of turn.
    pub stop_tokens: Vec<u32>,
    pub bos: Option<u32>,
}

impl Tokenizer {
    /// Reads `tokenizer.json` of a model folder, with the chat template
    /// (`chat_template.jinja` or `tokenizer_config.json`) and the stop tokens
    /// of `config.json` and `generation_config.json` where present.
    pub fn from_dir(dir: &Path, config: &LlamaConfig) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        let inner = tokenizers::Tokenizer::from_file(&path).map_err(|e| LmError::Tokenizer {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let jinja = dir.join("chat_template.jinja");
        let template_text = if jinja.is_file() {
            std::fs::read_to_string(&jinja).ok()
        } else if dir.join("tokenizer_config.json").is_file() {
            let c: TokenizerConfig = read_json(&dir.join("tokenizer_config.json"))?;
            // A string, or (older files) a list of named templates.
            match c.chat_template {
                Some(serde_json::Value::String(t)) => Some(t),
                Some(other) => Some(other.to_string()),
                None => None,
            }
        } else {
            None
        };
        let has = |t: &str| inner.token_to_id(t).is_some();
        let chat = if has("<|im_start|>") && has("<|im_end|>") {
            Some(ChatTemplate::ChatMl {
                default_system: template_text.as_deref().and_then(chatml_default_system),
            })
        } else if has("<|start_header_id|>") && has("<|eot_id|>") {
            Some(ChatTemplate::Llama3)
        } else {
            None
        };
        let mut stop_tokens: Vec<u32> = config
            .eos_token_id
            .as_ref()
            .map(TokenIds::to_vec)
            .unwrap_or_default();
        let generation = dir.join("generation_config.json");
        if generation.is_file() {
            let g: GenerationConfig = read_json(&generation)?;
            stop_tokens.extend(g.eos_token_id.map(|t| t.to_vec()).unwrap_or_default());
        }
        if let Some(end) = chat.as_ref().and_then(|c| inner.token_to_id(c.end_of_turn())) {
            stop_tokens.push(end);
        }
        stop_tokens.sort_unstable();
        stop_tokens.dedup();
        Ok(Tokenizer {
            inner,
            path,
            chat,
            stop_tokens,
            bos: config.bos_token_id,
        })
    }

    /// A tokenizer built in memory (one trained for a model made from
    /// scratch), with its chat template and stop tokens.
    pub fn from_parts(
        inner: tokenizers::Tokenizer,
        chat: Option<ChatTemplate>,
        stop_tokens: Vec<u32>,
        bos: Option<u32>,
    ) -> Self {
        Tokenizer {
            inner,
            path: PathBuf::from("(in memory)"),
            chat,
            stop_tokens,
            bos,
        }
    }

    fn err(&self, e: impl std::fmt::Display) -> LmError {
        LmError::Tokenizer {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Token ids of `text`. With `special`, the tokenizer's post-processor
    /// adds what it is configured to add (Llama tokenizers add BOS; GPT-2
    /// style ones, like SmolLM2's, add nothing); without, nothing is added.
    pub fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, special).map_err(|e| self.err(e))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The token ids of a chat in the model's template, ending with the
    /// assistant's header. Errors when the tokenizer has no known template.
    pub fn encode_chat(&self, messages: &[Message]) -> Result<Vec<u32>> {
        let chat = self.chat.as_ref().ok_or_else(|| {
            self.err("no chat template: the vocabulary has neither ChatML nor Llama-3 headers")
        })?;
        self.encode(&chat.render(messages), false)
    }

    /// Text of token ids, special tokens left out.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, true).map_err(|e| self.err(e))
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}

/// Trains a byte-level BPE of at most `vocab_size` tokens on `texts`: the
/// one tokenizer trainer of the models we make from scratch. GPT-2's
/// pre-tokenizer without a prefix space (so every text has tokens and a
/// newline is a token of its own), merges of pairs seen at least twice,
/// and `special` tokens first (ids from 0), never split.
pub fn train_byte_level_bpe<'a>(
    texts: impl Iterator<Item = &'a str> + Send,
    vocab_size: usize,
    special: &[&str],
) -> Result<tokenizers::Tokenizer> {
    use tokenizers::models::TrainerWrapper;
    use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::{AddedToken, DecoderWrapper, ModelWrapper, PreTokenizerWrapper};

    let fail = |e: tokenizers::Error| LmError::Tokenizer {
        path: PathBuf::from("(training)"),
        message: e.to_string(),
    };
    let model = BPE::builder().build().map_err(fail)?;
    let mut tokenizer = tokenizers::Tokenizer::new(ModelWrapper::from(model));
    tokenizer.with_pre_tokenizer(Some(PreTokenizerWrapper::from(
        ByteLevel::default().add_prefix_space(false),
    )));
    tokenizer.with_decoder(Some(DecoderWrapper::from(ByteLevel::default())));
    let mut trainer = TrainerWrapper::from(
        BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(2)
            .show_progress(false)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .special_tokens(special.iter().map(|t| AddedToken::from(*t, true)).collect())
            .build(),
    );
    tokenizer.train(&mut trainer, texts).map_err(fail)?;
    Ok(tokenizer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_layout_and_default_system() {
        let jinja = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}";
        let system = chatml_default_system(jinja);
        assert_eq!(
            system.as_deref(),
            Some("You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        );
        let t = ChatTemplate::ChatMl {
            default_system: system,
        };
        assert_eq!(
            t.render(&[Message::user("Hi")]),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        // A chat with its own system message gets no default one.
        let own = t.render(&[Message::system("Be brief."), Message::user("Hi")]);
        assert!(own.starts_with("<|im_start|>system\nBe brief.<|im_end|>"));
        assert_eq!(own.matches("system").count(), 1);
        // A template that inserts the caller's message has no default.
        assert_eq!(
            chatml_default_system("{{'<|im_start|>system\n' + message['content'] + '<|im_end|>'}}"),
            None
        );
    }

    #[test]
    fn llama3_layout() {
        let text = ChatTemplate::Llama3.render(&[Message::user("Hi ")]);
        assert_eq!(
            text,
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        );
    }
}
