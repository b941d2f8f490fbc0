//! `rxalign lm generate` end to end.
//!
//! On a tiny random Llama written here as a Hugging Face folder
//! (`config.json` and `model.safetensors` by rxalign-lm's saver, a byte-level
//! BPE `tokenizer.json` with ChatML's special tokens trained here by the
//! `tokenizers` crate): the binary prints the completion the library
//! generates from that folder, reports tokens per second on stderr, honours
//! `--chat`, `--max-tokens` and `--temperature`, and names the missing or
//! broken file of a bad folder.
//!
//! On the real SmolLM2-135M-Instruct (RXALIGN_LM_DIR, set by `.ci/run`
//! with `expected.json` from scripts/lm_reference.py): its greedy text,
//! plain and chat, equals transformers' greedy `generate` text.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use burn::backend::Flex;
use burn::backend::flex::FlexDevice;
use burn::tensor::backend::Backend;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rxalign_lm::config::TokenIds;
use rxalign_lm::generate::{GenerateConfig, Sampling, generate};
use rxalign_lm::{Adapter, LlamaConfig, Message, Tokenizer, load_pretrained, save_pretrained};
use serde::Deserialize;
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, ModelWrapper};

const TEXT: [&str; 4] = [
    "The patient takes aspirin and warfarin every morning.",
    "A 72-year-old woman was admitted with pneumonia; she is allergic to penicillin.",
    "Hypertension and type 2 diabetes, on metformin and lisinopril at home.",
    "What is the boiling point of water at sea level? It is one hundred degrees.",
];
const END_OF_TEXT: &str = "<|endoftext|>";

/// burn's initialiser draws from one process-wide generator: seed it and
/// build the model under one lock, so every folder has the same weights.
static INIT: Mutex<()> = Mutex::new(());

/// Writes a tiny model folder: two layers, GQA (4 query heads, 2 key/value
/// heads), a byte-level BPE vocabulary of about 320 tokens with
/// `<|endoftext|>` (EOS), `<|im_start|>` and `<|im_end|>`.
fn tiny_folder(dir: &Path) {
    let bpe = BPE::builder().build().unwrap();
    let mut tok = tokenizers::Tokenizer::new(ModelWrapper::from(bpe));
    tok.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tok.with_decoder(Some(ByteLevel::default()));
    let special = [END_OF_TEXT, "<|im_start|>", "<|im_end|>"]
        .map(|t| AddedToken::from(t, true))
        .to_vec();
    let mut trainer = TrainerWrapper::from(
        BpeTrainerBuilder::new()
            .vocab_size(320)
            .min_frequency(1)
            .show_progress(false)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .special_tokens(special)
            .build(),
    );
    tok.train(&mut trainer, TEXT.iter().copied().cycle().take(40))
        .unwrap();
    tok.save(dir.join("tokenizer.json"), false).unwrap();

    let mut config = LlamaConfig::tiny(tok.get_vocab_size(true), 2, 4, 2, 8);
    config.bos_token_id = None;
    let eos = tok.token_to_id(END_OF_TEXT).unwrap();
    config.eos_token_id = Some(TokenIds::One(eos));
    let _guard = INIT.lock().unwrap_or_else(|p| p.into_inner());
    Flex::seed(&FlexDevice, 11);
    let model = config.init::<Flex>(&FlexDevice);
    save_pretrained(&model, dir).unwrap();
}

fn rxalign(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rxalign"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// stdout without the final newline, and stderr, of a successful run.
fn run_ok(args: &[&str]) -> (String, String) {
    let out = rxalign(args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "rxalign {args:?} failed:\n{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let text = stdout
        .strip_suffix('\n')
        .expect("the completion ends with a newline");
    (text.to_string(), stderr)
}

fn run_err(args: &[&str]) -> String {
    let out = rxalign(args);
    assert!(!out.status.success(), "rxalign {args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

/// What the library generates greedily from a folder.
#[derive(Debug)]
struct Greedy {
    text: String,
    tokens: Vec<u32>,
    stopped: bool,
    prompt_tokens: usize,
}

fn library_greedy(dir: &Path, prompt: &str, chat: bool, max_new_tokens: usize) -> Greedy {
    let model = load_pretrained::<Flex>(dir, &FlexDevice).unwrap();
    let tok = Tokenizer::from_dir(dir, &model.config).unwrap();
    let ids = if chat {
        tok.encode_chat(&[Message::user(prompt)]).unwrap()
    } else {
        tok.encode(prompt, true).unwrap()
    };
    let config = GenerateConfig {
        max_new_tokens,
        sampling: Sampling::Greedy,
        stop_tokens: tok.stop_tokens.clone(),
        pad_token: 0,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let (out, _) = generate(
        &model,
        std::slice::from_ref(&ids),
        1,
        &config,
        Adapter::Off,
        &mut rng,
    )
    .unwrap();
    let c = &out[0];
    Greedy {
        text: tok.decode(&c.tokens).unwrap(),
        tokens: c.tokens.clone(),
        stopped: c.stopped,
        prompt_tokens: ids.len(),
    }
}

/// The numbers of the stderr report: prompt tokens, new tokens, and the
/// prefill and decode rates (tokens per second).
#[derive(Debug)]
struct Report {
    prompt_tokens: usize,
    new_tokens: usize,
    stopped: bool,
    prefill_rate: f64,
    decode_rate: f64,
}

fn number_before(text: &str, marker: &str) -> f64 {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("no `{marker}` in {text:?}"));
    let word = text[..at].split_whitespace().last().unwrap();
    word.parse()
        .unwrap_or_else(|e| panic!("`{word}` before `{marker}`: {e}"))
}

fn report(stderr: &str) -> Report {
    let prompt = &stderr[stderr.find("prompt:").expect("the prompt's size is reported")..];
    let prefill = &stderr[stderr.find("prefill").expect("prefill rate")..];
    let decode = &stderr[stderr.find("decode").expect("decode rate")..];
    Report {
        prompt_tokens: number_before(prompt, " tokens") as usize,
        new_tokens: number_before(stderr, " new tokens") as usize,
        stopped: stderr.contains("(stop token"),
        prefill_rate: number_before(prefill, " tokens/s"),
        decode_rate: number_before(decode, " tokens/s"),
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn greedy_completion_is_the_library_s_with_its_rate_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    tiny_folder(dir.path());
    let prompt = "The patient takes aspirin";
    let (text, stderr) = run_ok(&["lm", "generate", "--model", s(dir.path()), "--prompt", prompt]);
    let want = library_greedy(dir.path(), prompt, false, 64);
    assert!(!want.text.is_empty(), "the tiny model stops at once: reseed it");
    assert_eq!(text, want.text);
    let r = report(&stderr);
    assert_eq!(
        (r.prompt_tokens, r.new_tokens, r.stopped),
        (want.prompt_tokens, want.tokens.len(), want.stopped),
        "{stderr}"
    );
    assert!(r.prefill_rate > 0.0 && r.decode_rate > 0.0, "{stderr}");
    assert!(stderr.contains("greedy"), "{stderr}");
    // Greedy decoding is deterministic: the same text again.
    let (again, _) = run_ok(&["lm", "generate", "--model", s(dir.path()), "--prompt", prompt]);
    assert_eq!(again, text);
}

#[test]
fn max_tokens_bounds_the_completion() {
    let dir = tempfile::tempdir().unwrap();
    tiny_folder(dir.path());
    let prompt = "Hypertension and";
    let long = library_greedy(dir.path(), prompt, false, 64);
    assert!(
        long.tokens.len() > 3,
        "the 64-token completion is longer than 3 tokens: reseed"
    );
    for max in [1usize, 3] {
        let (text, stderr) = run_ok(&[
            "lm",
            "generate",
            "--model",
            s(dir.path()),
            "--prompt",
            prompt,
            "--max-tokens",
            &max.to_string(),
        ]);
        let want = library_greedy(dir.path(), prompt, false, max);
        assert_eq!(text, want.text);
        // The long completion has no stop token among its first 3, so the
        // budget ends these: exactly `max` tokens, a prefix of the long one.
        assert_eq!(want.tokens, long.tokens[..max]);
        assert_eq!(report(&stderr).new_tokens, max, "{stderr}");
        assert!(stderr.contains("(token budget"), "{stderr}");
    }
}

#[test]
fn chat_wraps_the_prompt_in_the_template() {
    let dir = tempfile::tempdir().unwrap();
    tiny_folder(dir.path());
    let prompt = "What is the boiling point of water?";
    let args = [
        "lm",
        "generate",
        "--model",
        s(dir.path()),
        "--prompt",
        prompt,
        "--max-tokens",
        "8",
    ];
    let (_, plain) = run_ok(&args);
    let (text, chat) = run_ok(&[&args[..], &["--chat"]].concat());
    let want = library_greedy(dir.path(), prompt, true, 8);
    assert_eq!(text, want.text);
    let (p, c) = (report(&plain), report(&chat));
    assert_eq!(
        (c.prompt_tokens, c.new_tokens),
        (want.prompt_tokens, want.tokens.len())
    );
    // `<|im_start|>user\n ... <|im_end|>\n<|im_start|>assistant\n` adds tokens.
    assert!(c.prompt_tokens >= p.prompt_tokens + 6, "{plain}\n{chat}");
}

#[test]
fn temperature_samples_reproducibly_per_seed() {
    let dir = tempfile::tempdir().unwrap();
    tiny_folder(dir.path());
    let sample = |seed: u64| {
        let (text, stderr) = run_ok(&[
            "lm",
            "generate",
            "--model",
            s(dir.path()),
            "--prompt",
            "The patient",
            "--max-tokens",
            "12",
            "--temperature",
            "3.0",
            "--seed",
            &seed.to_string(),
        ]);
        assert!(stderr.contains("temperature 3"), "{stderr}");
        text
    };
    let first = sample(1);
    assert_eq!(sample(1), first, "one seed, one sample");
    // A near-uniform distribution over ~320 tokens: three other seeds all
    // giving the same 12 tokens would be a broken sampler.
    let others: Vec<String> = (2..5).map(sample).collect();
    assert!(others.iter().any(|t| *t != first), "{first:?} {others:?}");
    let greedy = library_greedy(dir.path(), "The patient", false, 12).text;
    assert!(others.iter().chain([&first]).any(|t| *t != greedy));

    let err = run_err(&[
        "lm",
        "generate",
        "--model",
        s(dir.path()),
        "--prompt",
        "x",
        "--temperature",
        "0",
    ]);
    assert!(err.contains("--temperature must be a positive number"), "{err}");
}

/// A copy of the tiny folder with `file` removed or replaced.
fn broken(from: &Path, to: &Path, file: &str, content: Option<&str>) -> PathBuf {
    std::fs::create_dir_all(to).unwrap();
    for name in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(from.join(name), to.join(name)).unwrap();
    }
    match content {
        None => std::fs::remove_file(to.join(file)).unwrap(),
        Some(c) => std::fs::write(to.join(file), c).unwrap(),
    }
    to.to_path_buf()
}

#[test]
fn a_bad_folder_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    std::fs::create_dir_all(&good).unwrap();
    tiny_folder(&good);
    let refuse = |d: &Path| run_err(&["lm", "generate", "--model", s(d), "--prompt", "x"]);

    let no_dir = dir.path().join("nowhere");
    let err = refuse(&no_dir);
    assert!(
        err.contains(&format!("{}", no_dir.join("config.json").display())),
        "{err}"
    );

    let cases = [
        ("config.json", None, vec!["config.json"]),
        ("model.safetensors", None, vec!["model.safetensors"]),
        ("tokenizer.json", None, vec!["tokenizer.json"]),
        // A config whose field has the wrong type: the file and the field.
        (
            "config.json",
            Some(r#"{"hidden_size": "wide"}"#),
            vec!["config.json", "hidden_size"],
        ),
        ("tokenizer.json", Some("{not json"), vec!["tokenizer.json"]),
        (
            "model.safetensors",
            Some("not a safetensors file"),
            vec!["model.safetensors"],
        ),
    ];
    for (i, (file, content, words)) in cases.into_iter().enumerate() {
        let bad = broken(&good, &dir.path().join(format!("bad{i}")), file, content);
        let err = refuse(&bad);
        for w in words {
            assert!(err.contains(w), "case {i} ({file}): no `{w}` in\n{err}");
        }
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[derive(Deserialize)]
struct Expected {
    greedy: Vec<ExpectedGreedy>,
}
#[derive(Deserialize)]
struct ExpectedGreedy {
    kind: String,
    prompt: String,
    new_ids: Vec<u32>,
    text: String,
}

/// SmolLM2-135M-Instruct: `rxalign lm generate` prints transformers'
/// greedy text for the plain and the chat prompt of scripts/lm_reference.py
/// (32 new tokens). Runs when RXALIGN_LM_DIR names the converted folder with
/// its expected.json (`.ci/run` prepares both); otherwise says why it is skipped.
#[test]
fn smollm2_greedy_text_equals_transformers() {
    let Some(dir) = std::env::var_os("RXALIGN_LM_DIR").map(PathBuf::from) else {
        eprintln!("skipped: RXALIGN_LM_DIR is not set (.ci/run converts SmolLM2-135M and sets it)");
        return;
    };
    let expected = dir.join("expected.json");
    let Ok(text) = std::fs::read_to_string(&expected) else {
        eprintln!("skipped: no {} (run scripts/lm_reference.py)", expected.display());
        return;
    };
    let expected: Expected = serde_json::from_str(&text).unwrap();
    assert_eq!(expected.greedy.len(), 2);
    for g in &expected.greedy {
        // lm_reference.py's budget (NEW_TOKENS); fewer where transformers
        // met a stop token, which ours must meet at the same place.
        assert!(g.new_ids.len() <= 32);
        let max = "32".to_string();
        let mut args = vec![
            "lm",
            "generate",
            "--model",
            s(&dir),
            "--prompt",
            &g.prompt,
            "--max-tokens",
            &max,
        ];
        if g.kind == "chat" {
            args.push("--chat");
        }
        let (ours, stderr) = run_ok(&args);
        eprintln!("{} prompt {:?}: {ours:?}\n{stderr}", g.kind, g.prompt);
        assert_eq!(ours, g.text, "{} prompt {:?}", g.kind, g.prompt);
        assert!(!ours.trim().is_empty());
    }
}

/// A copy of `model.safetensors` of `from` into `to` (with the folder's
/// other files) where the first weight (by name) is changed: its dtype
/// renamed (same width), or its values set to NaN.
fn damaged_weights(from: &Path, to: &Path, dtype: Option<&str>) -> String {
    let to = broken(from, to, "model.safetensors", None);
    let bytes = std::fs::read(from.join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    // A projection: every model uses it (a tied head might not be read).
    let name = header.keys().find(|k| k.contains("q_proj")).unwrap().clone();
    let mut data = bytes[8 + n..].to_vec();
    match dtype {
        Some(d) => header[&name]["dtype"] = serde_json::Value::from(d),
        None => {
            let offsets = &header[&name]["data_offsets"];
            let (a, b) = (
                offsets[0].as_u64().unwrap() as usize,
                offsets[1].as_u64().unwrap() as usize,
            );
            for chunk in data[a..b].chunks_mut(4) {
                chunk.copy_from_slice(&f32::NAN.to_le_bytes());
            }
        }
    }
    let text = serde_json::to_vec(&header).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(&data);
    std::fs::write(to.join("model.safetensors"), out).unwrap();
    name
}

/// Issue #22 (7): a weight stored as an integer tensor panicked ("Expected
/// float dtype, got I32") and the process died with a segfault; NaN weights
/// were accepted silently.
#[test]
fn integer_or_nan_weights_are_refused_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    std::fs::create_dir_all(&good).unwrap();
    tiny_folder(&good);
    for (i, dtype, words) in [
        (0, Some("I32"), ["I32", "float tensor"]),
        (1, None, ["NaN", "infinite"]),
    ] {
        let bad = dir.path().join(format!("bad{i}"));
        let name = damaged_weights(&good, &bad, dtype);
        let out = rxalign(&["lm", "generate", "--model", s(&bad), "--prompt", "x"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(err.contains("model.safetensors"), "{err}");
        // The tensor by its name in the model (the file's name, remapped).
        let tail = name.rsplit('.').nth(1).unwrap();
        assert!(err.contains(tail), "no `{tail}` of `{name}` in\n{err}");
        for w in words {
            assert!(err.contains(w), "no `{w}` in\n{err}");
        }
    }
}

/// `scripts/gpu-check.sh --dry-run` end to end on the tiny model: every
/// step of the GPU check (the quickstart on both sides compared, greedy
/// text on both sides compared, the LoRA GRPO iteration with its
/// throughput, peak memory and FLOPs rate) with the device replaced by
/// `cpu`, so that a GPU machine tries only the device. About a minute in
/// the test profile, most of it the two shrunken quickstarts.
#[test]
fn gpu_check_dry_run_passes_every_step_on_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    tiny_folder(&model);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/gpu-check.sh");
    let check = |out: &Path| {
        Command::new("bash")
            .arg(&script)
            .args([
                "--dry-run",
                "--out",
                s(out),
                env!("CARGO_BIN_EXE_rxalign"),
                s(&model),
            ])
            .output()
            .expect("bash runs")
    };
    let out = check(&dir.path().join("check"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for line in [
        "quickstart: PASS",
        "largest difference 0 ",
        "lm generate (plain): PASS",
        "lm generate (chat): PASS",
        "grpo: iteration 1: 4 rollouts in",
        "rollouts/s",
        "training tokens/s",
        "peak host memory",
        "TFLOP/s",
        "every check passed",
    ] {
        assert!(stdout.contains(line), "no `{line}` in\n{stdout}\n{stderr}");
    }
    // Nothing is written into a folder that holds something already.
    let out = check(&model);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
}
