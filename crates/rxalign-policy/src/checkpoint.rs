//! Checkpoints of a training loop: the module, the optimizer's state, the
//! loop's own state (its position, its generators, its log so far) in one
//! file, replaced atomically (written beside, then renamed) after every
//! epoch or iteration. A loop given the path of an existing checkpoint
//! resumes from it and takes the same steps as if it had never stopped.
//!
//! The file: `RXCKPT1\n`, then three sections, each a little-endian `u64`
//! length and its bytes: the module record and the optimizer record (burn's
//! bincode recorder, full precision), and the loop state as JSON.

use std::path::Path;

use burn::module::AutodiffModule;
use burn::optim::Optimizer;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use rand::SeedableRng;
use rxalign_core::Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::PolicyError;

const MAGIC: &[u8] = b"RXCKPT1\n";

/// A generator's exact position, to restore it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RngState {
    seed: [u8; 32],
    stream: u64,
    word_pos: u128,
}

impl RngState {
    pub fn of(rng: &Rng) -> Self {
        Self {
            seed: rng.get_seed(),
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos(),
        }
    }

    pub fn restore(&self) -> Rng {
        let mut rng = Rng::from_seed(self.seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(self.word_pos);
        rng
    }
}

/// Where a training loop stands: the last finished epoch or iteration, its
/// generator, and its log so far.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "L: Serialize + serde::de::DeserializeOwned")]
pub struct LoopState<L> {
    pub done: usize,
    pub rng: RngState,
    pub log: Vec<L>,
}

/// A training loop as it resumes: its module, optimizer, generator, log,
/// and the first epoch or iteration still to run.
pub type Resumed<M, O, L> = (M, O, Rng, Vec<L>, usize);

/// Resumes a loop from the checkpoint at `path` where there is one;
/// otherwise hands back what it was given, starting at 1.
pub fn resume<B, M, O, L>(
    path: Option<&Path>,
    model: M,
    optim: O,
    rng: Rng,
    device: &B::Device,
) -> Result<Resumed<M, O, L>, PolicyError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
    L: Serialize + DeserializeOwned,
{
    if let Some(path) = path
        && let Some((m, o, state)) =
            load::<B, _, _, LoopState<L>>(path, model.clone(), optim.clone(), device)?
    {
        return Ok((m, o, state.rng.restore(), state.log, state.done + 1));
    }
    Ok((model, optim, rng, Vec::new(), 1))
}

/// Writes a loop's checkpoint after epoch or iteration `done`, when it
/// has a path.
pub fn save_loop<B, M, O, L>(
    path: Option<&Path>,
    model: &M,
    optim: &O,
    done: usize,
    rng: &Rng,
    log: &[L],
) -> Result<(), PolicyError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
    L: Serialize,
{
    #[derive(Serialize)]
    struct Borrowed<'a, L> {
        done: usize,
        rng: RngState,
        log: &'a [L],
    }
    match path {
        Some(path) => save(
            path,
            model,
            optim,
            &Borrowed {
                done,
                rng: RngState::of(rng),
                log,
            },
        ),
        None => Ok(()),
    }
}

fn corrupt(path: &Path, what: &str) -> PolicyError {
    PolicyError::Invalid(format!("{}: not a readable checkpoint ({what})", path.display()))
}

/// Writes a checkpoint of `model`, `optim` and `state` to `path`.
pub fn save<B, M, O, S>(path: &Path, model: &M, optim: &O, state: &S) -> Result<(), PolicyError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
    S: Serialize,
{
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    let failed = |e: burn::record::RecorderError| {
        PolicyError::Invalid(format!("{}: writing the checkpoint: {e}", path.display()))
    };
    let model_bytes = Recorder::<B>::record(&recorder, model.clone().into_record(), ()).map_err(failed)?;
    let optim_bytes = Recorder::<B>::record(&recorder, optim.to_record(), ()).map_err(failed)?;
    let state_bytes = serde_json::to_vec(state)
        .map_err(|e| PolicyError::Invalid(format!("{}: writing the checkpoint: {e}", path.display())))?;
    let mut bytes = MAGIC.to_vec();
    for section in [&model_bytes, &optim_bytes, &state_bytes] {
        bytes.extend((section.len() as u64).to_le_bytes());
        bytes.extend_from_slice(section);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| PolicyError::Invalid(format!("{}: {e}", dir.display())))?;
    }
    rxalign_core::run::write_atomic(path, &bytes).map_err(|e| PolicyError::Invalid(e.to_string()))
}

/// Reads only the module of the checkpoint at `path` into `model` (a
/// freshly built one of the same shape): how a later stage starts from an
/// earlier stage's policy, on whatever backend it runs.
pub fn load_module<B, M>(path: &Path, model: M, device: &B::Device) -> Result<M, PolicyError>
where
    B: burn::tensor::backend::Backend,
    M: burn::module::Module<B>,
{
    let bytes = std::fs::read(path).map_err(|e| PolicyError::Invalid(format!("{}: {e}", path.display())))?;
    let [module, _, _] = sections(path, &bytes)?;
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    let record = Recorder::<B>::load(&recorder, module.to_vec(), device)
        .map_err(|e| corrupt(path, &format!("module: {e}")))?;
    Ok(model.load_record(record))
}

/// The module, optimizer and state sections of a checkpoint file's bytes.
fn sections<'a>(path: &Path, bytes: &'a [u8]) -> Result<[&'a [u8]; 3], PolicyError> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| corrupt(path, "no header"))?;
    let mut at = 0usize;
    let mut next = |name: &str| {
        let len: [u8; 8] = rest
            .get(at..at + 8)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| corrupt(path, name))?;
        let len = u64::from_le_bytes(len) as usize;
        let section = rest
            .get(at + 8..at + 8 + len)
            .ok_or_else(|| corrupt(path, name))?;
        at += 8 + len;
        Ok::<_, PolicyError>(section)
    };
    Ok([next("module")?, next("optimizer")?, next("state")?])
}

/// Reads the checkpoint at `path` into `model` and `optim` (freshly built
/// ones of the same shape); `None` when there is no file.
pub fn load<B, M, O, S>(
    path: &Path,
    model: M,
    optim: O,
    device: &B::Device,
) -> Result<Option<(M, O, S)>, PolicyError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
    S: DeserializeOwned,
{
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(PolicyError::Invalid(format!("{}: {e}", path.display()))),
    };
    let [model_bytes, optim_bytes, state_bytes] = sections(path, &bytes)?;
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    let state: S = serde_json::from_slice(state_bytes).map_err(|e| corrupt(path, &format!("state: {e}")))?;
    let model_record = Recorder::<B>::load(&recorder, model_bytes.to_vec(), device)
        .map_err(|e| corrupt(path, &format!("module: {e}")))?;
    let optim_record = Recorder::<B>::load(&recorder, optim_bytes.to_vec(), device)
        .map_err(|e| corrupt(path, &format!("optimizer: {e}")))?;
    Ok(Some((
        model.load_record(model_record),
        optim.load_record(optim_record),
        state,
    )))
}
