//! Peak memory of one LoRA training step against the length of its rows:
//! SmolLM2-135M with LoRA rank 8 on q_proj and v_proj (the step of
//! `benches/lm_throughput.rs`), one row of SEQ tokens, forward, mean token
//! NLL, backward and Adam, on the CPU (`flex`, autodiff).
//!
//! ```sh
//! for seq in 256 512 1024 2048; do
//!   RXALIGN_LM_DIR=~/.cache/rxalign/smollm2-135m-instruct \
//!     cargo run --release -p rxalign-lm --example lora_step_memory -- $seq
//! done
//! ```
//!
//! Prints the process's resident memory after loading the model and its
//! peak over the step (the peak reset after loading) (Linux's `VmRSS` and `VmHWM`, in MiB) and their
//! difference, the step's own memory: activations kept for the backward,
//! gradients, Adam's state. With attention whose backward keeps nothing
//! quadratic (`rxalign_lm::attention`), the difference grows linearly with
//! SEQ; scores kept per layer (`[heads, SEQ, SEQ]` floats, 30 layers) would
//! make it grow with SEQ squared.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::backend::flex::FlexDevice;
use burn::backend::{Autodiff, Flex};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::{Int, Tensor, TensorData};
use rxalign_lm::{LoraConfig, load_pretrained};

type A = Autodiff<Flex>;

/// A field of `/proc/self/status` in MiB.
fn status_mib(field: &str) -> Result<f64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status (Linux only)")?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("no {field} in /proc/self/status"))?;
    let kib: f64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("unreadable {line:?}"))?;
    Ok(kib / 1024.0)
}

fn main() -> Result<()> {
    let seq: usize = match std::env::args().nth(1) {
        Some(s) => s
            .parse()
            .with_context(|| format!("SEQ must be a number of tokens, not {s:?}"))?,
        None => bail!("usage: lora_step_memory SEQ"),
    };
    let dir = PathBuf::from(
        std::env::var_os("RXALIGN_LM_DIR").context("set RXALIGN_LM_DIR to the converted SmolLM2 folder")?,
    );
    let lora = LoraConfig {
        rank: 8,
        alpha: 16.0,
        dropout: 0.0,
        targets: vec!["q_proj".into(), "v_proj".into()],
    };
    let model = load_pretrained::<A>(&dir, &FlexDevice)?
        .freeze()
        .add_adapter("bench", lora)?;
    let adapter = model.adapter("bench")?;
    // Loading's own peak (conversion buffers) is not the step's: reset the
    // high-water mark to what is resident now.
    std::fs::write("/proc/self/clear_refs", "5")
        .context("resetting the peak through /proc/self/clear_refs")?;
    let loaded = status_mib("VmRSS:")?;
    let ids: Vec<i64> = (0..seq as i64).map(|i| 100 + (i * 7919) % 39_000).collect();
    let tokens = Tensor::<A, 2, Int>::from_data(TensorData::new(ids, [1, seq]), &FlexDevice);
    let mut optim = AdamConfig::new().init();
    let loss = model
        .token_logprobs(tokens, None, &vec![true; seq], adapter)
        .mean()
        .neg();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let model = optim.step(1e-4, model, grads);
    drop(model);
    let peak = status_mib("VmHWM:")?;
    println!(
        "seq {seq}: resident after loading {loaded:.0} MiB, peak {peak:.0} MiB, the step's own {:.0} MiB",
        peak - loaded
    );
    Ok(())
}
