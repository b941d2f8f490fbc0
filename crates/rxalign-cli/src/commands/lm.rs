//! `rxalign lm`: language models on their own (see the rxalign-lm crate).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use burn::backend::Flex;
use burn::backend::flex::FlexDevice;
use burn::tensor::backend::Backend;
use clap::{Args, Subcommand};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rxalign_lm::{Adapter, GenerateConfig, Message, Sampling, Tokenizer, generate, load_pretrained};
use rxalign_policy::device::TrainDevice;

#[derive(Debug, Subcommand)]
pub enum LmCommand {
    /// Complete a prompt with a Hugging Face checkpoint (config.json,
    /// model.safetensors, tokenizer.json): the completion on stdout, tokens
    /// per second on stderr. Greedy unless --temperature is given.
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The model folder.
    #[arg(long)]
    model: PathBuf,
    /// The prompt text.
    #[arg(long)]
    prompt: String,
    /// At most this many new tokens (fewer when a stop token comes).
    #[arg(long, default_value_t = 64)]
    max_tokens: usize,
    /// Wrap the prompt as a user message in the model's chat template.
    #[arg(long)]
    chat: bool,
    /// Sample at this temperature instead of greedy decoding.
    #[arg(long)]
    temperature: Option<f32>,
    /// With --temperature: sample from the smallest set of tokens whose
    /// probability reaches this.
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// With --temperature: sample from this many most likely tokens
    /// only (before --top-p).
    #[arg(long)]
    top_k: Option<usize>,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where the model runs: `cpu` (burn's flex backend) or, in a build
    /// with `--features cuda`, `cuda:N` (burn's CUDA backend on GPU `N`).
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn run(command: LmCommand) -> anyhow::Result<()> {
    match command {
        LmCommand::Generate(a) => generate_cmd(&a),
    }
}

fn generate_cmd(a: &GenerateArgs) -> anyhow::Result<()> {
    if let Some(t) = a.temperature
        && !(t > 0.0 && t.is_finite())
    {
        anyhow::bail!("--temperature must be a positive number, got {t}");
    }
    if !(a.top_p > 0.0 && a.top_p <= 1.0) {
        anyhow::bail!("--top-p must be in (0, 1], got {}", a.top_p);
    }
    if a.top_k == Some(0) {
        anyhow::bail!("--top-k must be at least 1");
    }
    let device: TrainDevice = a.device.parse().context("--device")?;
    match device {
        TrainDevice::Cpu => generate_on::<Flex>(a, &FlexDevice, "CPU, burn flex"),
        #[cfg(feature = "cuda")]
        TrainDevice::Cuda(index) => generate_on::<burn::backend::Cuda>(
            a,
            &burn::backend::cuda::CudaDevice { index },
            &format!("cuda:{index}, burn CUDA"),
        ),
        #[cfg(not(feature = "cuda"))]
        TrainDevice::Cuda(_) => {
            unreachable!("`cuda:N` is refused when the device is parsed in a build without CUDA")
        }
    }
}

/// Loads the model onto `device` and completes the prompt there; `place`
/// names the device and backend in the rate line.
fn generate_on<B: Backend>(a: &GenerateArgs, device: &B::Device, place: &str) -> anyhow::Result<()> {
    let start = Instant::now();
    let model = load_pretrained::<B>(&a.model, device)
        .with_context(|| format!("loading the model {}", a.model.display()))?;
    let tok = Tokenizer::from_dir(&a.model, &model.config)?;
    let ids = if a.chat {
        tok.encode_chat(&[Message::user(&a.prompt)])?
    } else {
        tok.encode(&a.prompt, true)?
    };
    eprintln!(
        "loaded {} ({} layers) in {:.1}s; prompt: {} tokens",
        a.model.display(),
        model.config.num_hidden_layers,
        start.elapsed().as_secs_f64(),
        ids.len()
    );
    let sampling = match a.temperature {
        None => Sampling::Greedy,
        Some(temperature) => Sampling::Sample {
            temperature,
            top_k: a.top_k,
            top_p: a.top_p,
        },
    };
    let config = GenerateConfig {
        max_new_tokens: a.max_tokens,
        sampling,
        stop_tokens: tok.stop_tokens.clone(),
        pad_token: model.config.pad_token_id.unwrap_or(0),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(a.seed);
    let (out, stats) = generate(&model, &[ids], 1, &config, Adapter::Off, &mut rng)?;
    let text = tok.decode(&out[0].tokens)?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")?;
    stdout.flush()?;
    let sampling = match sampling {
        Sampling::Greedy => "greedy".to_string(),
        Sampling::Sample {
            temperature,
            top_k,
            top_p,
        } => {
            let top_k = top_k.map_or(String::new(), |k| format!(", top-k {k}"));
            format!("temperature {temperature}{top_k}, top-p {top_p}, seed {}", a.seed)
        }
    };
    eprintln!(
        "{} new tokens ({}; {}): prefill {:.1} tokens/s, decode {:.1} tokens/s ({place}, batch 1, KV cache)",
        out[0].tokens.len(),
        if out[0].stopped {
            "stop token"
        } else {
            "token budget"
        },
        sampling,
        stats.prefill_tokens_per_s(),
        stats.decode_tokens_per_s(),
    );
    Ok(())
}
