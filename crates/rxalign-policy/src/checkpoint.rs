//! Checkpoints of a training loop: the module, the optimizer's state, the
//! loop's own state (its position, its generators, its log so far) in one
//! file, replaced atomically (written beside, then renamed) after every
//! epoch or iteration. A loop given the path of an existing checkpoint
//! resumes from it and takes the same steps as if it had never stopped.
//!
//! The file: `RXCKPT2\n`, the SHA-256 of the rest of the file (32 bytes),
//! then three sections, each a little-endian `u64` length and its bytes: the
//! module record and the optimizer record (burn's bincode recorder, full
//! precision), and the loop state as JSON. A file whose checksum does not
//! match is refused, naming the file, before anything in it is decoded.
//! Files of the first version (`RXCKPT1\n`, no checksum) are still read.
//!
//! A checkpoint is written to a temporary file beside it (`.NAME.tmp-PID`)
//! and renamed; a process killed in between leaves that file behind, so
//! opening a checkpoint to resume removes such leftovers of earlier
//! processes ([`clean_stale_temporaries`]).

use std::path::Path;

use burn::module::AutodiffModule;
use burn::optim::Optimizer;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use rand::SeedableRng;
use rxalign_core::Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::PolicyError;

const MAGIC_V1: &[u8] = b"RXCKPT1\n";
const MAGIC: &[u8] = b"RXCKPT2\n";
/// Bytes of the SHA-256 that follows [`MAGIC`].
const CHECKSUM_LEN: usize = 32;

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
    if let Some(path) = path {
        clean_stale_temporaries(path)?;
    }
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
    let mut payload = Vec::new();
    for section in [&model_bytes, &optim_bytes, &state_bytes] {
        payload.extend((section.len() as u64).to_le_bytes());
        payload.extend_from_slice(section);
    }
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&Sha256::digest(&payload));
    bytes.extend_from_slice(&payload);
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

/// The module, optimizer and state sections of a checkpoint file's bytes,
/// after its checksum is verified.
fn sections<'a>(path: &Path, bytes: &'a [u8]) -> Result<[&'a [u8]; 3], PolicyError> {
    let rest = if let Some(rest) = bytes.strip_prefix(MAGIC) {
        if rest.len() < CHECKSUM_LEN {
            return Err(corrupt(path, "cut short before its checksum"));
        }
        let (sum, payload) = rest.split_at(CHECKSUM_LEN);
        if Sha256::digest(payload).as_slice() != sum {
            return Err(PolicyError::Invalid(format!(
                "{}: the checkpoint is damaged: its SHA-256 does not match its contents (a partial copy or a changed byte); delete it to start the stage afresh",
                path.display()
            )));
        }
        payload
    } else {
        bytes
            .strip_prefix(MAGIC_V1)
            .ok_or_else(|| corrupt(path, "no header"))?
    };
    let mut at = 0usize;
    let mut next = |name: &str| {
        let len: [u8; 8] = rest
            .get(at..at.saturating_add(8))
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| corrupt(path, &format!("{name} section cut short")))?;
        let start = at + 8;
        let end = usize::try_from(u64::from_le_bytes(len))
            .ok()
            .and_then(|len| start.checked_add(len))
            .filter(|&end| end <= rest.len())
            .ok_or_else(|| corrupt(path, &format!("{name} section longer than the file")))?;
        at = end;
        Ok::<_, PolicyError>(&rest[start..end])
    };
    let out = [next("module")?, next("optimizer")?, next("state")?];
    if at != rest.len() {
        return Err(corrupt(path, "bytes after the last section"));
    }
    Ok(out)
}

/// Removes the temporary files that writing the checkpoint at `path` leaves
/// when a process stops between writing and renaming (`.NAME.tmp-PID` beside
/// it, of a process other than this one), and returns what it removed. Only
/// names of exactly that form are touched.
pub fn clean_stale_temporaries(path: &Path) -> Result<Vec<std::path::PathBuf>, PolicyError> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(Vec::new());
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let own = std::process::id().to_string();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(PolicyError::Invalid(format!("{}: {e}", dir.display()))),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| PolicyError::Invalid(format!("{}: {e}", dir.display())))?;
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) || pid == own {
            continue;
        }
        let stale = entry.path();
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        match std::fs::remove_file(&stale) {
            Ok(()) => removed.push(stale),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(PolicyError::Invalid(format!(
                    "removing the leftover temporary checkpoint {}: {e}",
                    stale.display()
                )));
            }
        }
    }
    Ok(removed)
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

#[cfg(test)]
mod tests {
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::AdamConfig;
    use proptest::prelude::{ProptestConfig, any, prop, prop_assert, proptest};
    use rand::SeedableRng;

    use super::*;
    use crate::CpuTrainBackend as B;

    fn model() -> Linear<B> {
        LinearConfig::new(3, 2).init(&Default::default())
    }

    /// A checkpoint file's bytes, written once per test.
    fn written(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("0-sft.ckpt");
        let optim = AdamConfig::new().init::<B, Linear<B>>();
        let rng = Rng::seed_from_u64(7);
        save_loop::<B, _, _, u32>(Some(&path), &model(), &optim, 3, &rng, &[1, 2, 3]).unwrap();
        path
    }

    fn resume_from(
        path: &Path,
    ) -> Result<Resumed<Linear<B>, impl Optimizer<Linear<B>, B>, u32>, PolicyError> {
        let optim = AdamConfig::new().init::<B, Linear<B>>();
        resume::<B, _, _, u32>(
            Some(path),
            model(),
            optim,
            Rng::seed_from_u64(0),
            &Default::default(),
        )
    }

    #[test]
    fn a_checkpoint_resumes_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        let (_, _, _, log, next) = resume_from(&path).unwrap();
        assert_eq!((log, next), (vec![1, 2, 3], 4));
        assert!(load_module::<B, _>(&path, model(), &Default::default()).is_ok());
    }

    /// Issue #12: checkpoints carried no checksum, so a damaged one loaded
    /// silently.
    #[test]
    fn a_changed_byte_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() - 5;
        bytes[at] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        for e in [
            resume_from(&path).map(|_| ()).unwrap_err(),
            load_module::<B, _>(&path, model(), &Default::default())
                .map(|_| ())
                .unwrap_err(),
        ] {
            let e = e.to_string();
            assert!(
                e.contains("0-sft.ckpt") && e.contains("SHA-256 does not match"),
                "{e}"
            );
        }
    }

    /// Issue #12: leftover temporary files were never removed.
    #[test]
    fn resuming_removes_leftover_temporaries_of_other_processes_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        let stale = dir.path().join(".0-sft.ckpt.tmp-4242424");
        let own = dir.path().join(format!(".0-sft.ckpt.tmp-{}", std::process::id()));
        let foreign = [
            dir.path().join(".0-sft.ckpt.tmp-notapid"),
            dir.path().join(".1-grpo.ckpt.tmp-4242424"),
            dir.path().join("notes.txt"),
        ];
        for f in foreign.iter().chain([&stale, &own]) {
            std::fs::write(f, b"x").unwrap();
        }
        resume_from(&path).unwrap();
        assert!(!stale.exists());
        assert!(own.exists(), "this process's own file may be in flight");
        for f in &foreign {
            assert!(f.exists(), "{} is not ours", f.display());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Random bytes, and a valid file cut short, extended or with a byte
        /// changed, give an error naming the file, never a panic.
        #[test]
        fn damaged_files_give_errors_not_panics(
            junk in proptest::collection::vec(any::<u8>(), 0..200),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
            with_magic in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = written(dir.path());
            let good = std::fs::read(&path).unwrap();
            let mut random = if with_magic { MAGIC.to_vec() } else { Vec::new() };
            random.extend(&junk);
            let mut cut_short = good.clone();
            cut_short.truncate(cut.index(good.len()));
            let mut flipped = good.clone();
            let i = flip.index(good.len());
            flipped[i] = flipped[i].wrapping_add(1);
            let mut extended = good.clone();
            extended.extend(&junk);
            extended.push(0);
            for bytes in [random, cut_short, flipped, extended] {
                std::fs::write(&path, &bytes).unwrap();
                let e = resume_from(&path).map(|_| ()).unwrap_err().to_string();
                prop_assert!(e.contains("0-sft.ckpt"), "{}", e);
                let e = load_module::<B, _>(&path, model(), &Default::default()).map(|_| ()).unwrap_err().to_string();
                prop_assert!(e.contains("0-sft.ckpt"), "{}", e);
            }
        }
    }
}
