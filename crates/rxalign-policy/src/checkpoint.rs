//! Checkpoints of a training loop: the module, the optimizer's state, the
//! loop's own state (its position, its generators, its log so far) in one
//! file, replaced atomically (written beside, then renamed) after every
//! epoch or iteration. A loop given the path of an existing checkpoint
//! resumes from it and takes the same steps as if it had never stopped.
//!
//! The file: `RXCKPT3\n`, the SHA-256 of the rest of the file (32 bytes),
//! then three sections, each a little-endian `u64` length and its bytes:
//! the module's parameters as a Burnpack (burn-store's format: each
//! tensor's module path, parameter id, dtype and shape, its values in that
//! dtype, so bf16 and f16 weights stay 2 bytes; after a `u64` count of the
//! parameters left out), the optimizer's record (burn's bincode recorder,
//! full precision, keyed by the parameter ids), and the loop state as
//! JSON. A file whose checksum does not match is refused, naming the file,
//! before anything in it is decoded; so is a checkpoint of an earlier
//! format (`RXCKPT1`, `RXCKPT2`, `RXCKPTT`: burn's record of the module, or
//! our f32 container), with what to do (delete it and train the stage
//! again).
//!
//! A family whose frozen parameters its `init` rebuilds exactly (a
//! pretrained base under LoRA adapters) has its checkpoints keep the
//! trainable parameters only ([`Keep::Trainable`]). Reading a file applies
//! the kept parameters, ids included (the optimizer's state is keyed by
//! them), onto the freshly built model, whose other parameters must be
//! exactly as many as were left out; readers need not be told which kind
//! a file is.
//!
//! A checkpoint is written to a temporary file beside it
//! (`.NAME.tmp-HOST-PID-N`, [`rxalign_core::run::write_atomic`])
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

const MAGIC: &[u8] = b"RXCKPT3\n";
/// The headers of earlier formats (burn's own record of the module, or our
/// f32 container of the trainable parameters), refused with what to do.
const OLD_MAGICS: [&[u8]; 3] = [b"RXCKPT1\n", b"RXCKPT2\n", b"RXCKPTT\n"];
/// Bytes of the SHA-256 that follows [`MAGIC`].
const CHECKSUM_LEN: usize = 32;

/// Which parameters a checkpoint's module section keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Keep {
    /// Every parameter, as burn's record.
    #[default]
    All,
    /// Only those that train (require gradients), with their ids; the
    /// others are rebuilt by the family's `init` when the file is read.
    Trainable,
}

/// The module section: a little-endian `u64`, how many parameters were
/// left out (the frozen ones under [`Keep::Trainable`], 0 under
/// [`Keep::All`]), then the kept parameters as a Burnpack (burn-store's
/// format: each tensor's module path, [`ParamId`], dtype and shape, and its
/// values in that dtype, so half-precision weights stay 2 bytes).
///
/// burn-store's own loader keeps the ids of the model it loads into; the
/// optimizer's state is keyed by the ids the file was written with, so the
/// parameters are applied here, ids included.
///
/// [`ParamId`]: burn::module::ParamId
mod module_section {
    use std::collections::HashMap;

    use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
    use burn::prelude::*;
    use burn::tensor::{Bool, Bytes};
    use burn_store::{BurnpackStore, BurnpackWriter, ModuleStore, TensorSnapshot};

    use super::Keep;

    /// Module paths and container types as burn's visitors and mappers walk them.
    #[derive(Debug, Default)]
    struct Path {
        names: Vec<String>,
        containers: Vec<String>,
    }

    impl Path {
        fn enter(&mut self, name: &str, container: &str) {
            self.names.push(name.to_string());
            self.containers.push(container.to_string());
        }
        fn exit(&mut self) {
            self.names.pop();
            self.containers.pop();
        }
        fn join(&self) -> String {
            self.names.join(".")
        }
    }

    struct Collect {
        path: Path,
        keep: Keep,
        kept: Vec<TensorSnapshot>,
        left_out: u64,
    }

    impl Collect {
        fn take(&mut self, trains: bool, snapshot: impl FnOnce(Vec<String>, Vec<String>) -> TensorSnapshot) {
            if self.keep == Keep::Trainable && !trains {
                self.left_out += 1;
                return;
            }
            let snapshot = snapshot(self.path.names.clone(), self.path.containers.clone());
            self.kept.push(snapshot);
        }
    }

    impl<B: Backend> ModuleVisitor<B> for Collect {
        fn enter_module(&mut self, name: &str, container: &str) {
            self.path.enter(name, container);
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.exit();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let value = param.val();
            self.take(value.is_require_grad(), |names, containers| {
                TensorSnapshot::from_float(&value, names, containers, param.id)
            });
        }
        fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<B, D, Int>>) {
            self.take(false, |names, containers| {
                TensorSnapshot::from_int(&param.val(), names, containers, param.id)
            });
        }
        fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<B, D, Bool>>) {
            self.take(false, |names, containers| {
                TensorSnapshot::from_bool(&param.val(), names, containers, param.id)
            });
        }
    }

    /// The parameters of `model` that `keep` says.
    pub(super) fn encode<B: Backend, M: Module<B>>(model: &M, keep: Keep) -> Result<Vec<u8>, String> {
        let mut c = Collect {
            path: Path::default(),
            keep,
            kept: Vec::new(),
            left_out: 0,
        };
        model.visit(&mut c);
        let pack = BurnpackWriter::new(c.kept)
            .to_bytes()
            .map_err(|e| e.to_string())?;
        let mut out = c.left_out.to_le_bytes().to_vec();
        out.extend_from_slice(&pack);
        Ok(out)
    }

    struct Apply {
        path: Path,
        /// Path → the file's tensor; taken as applied.
        kept: HashMap<String, TensorSnapshot>,
        others: u64,
        errors: Vec<String>,
    }

    impl Apply {
        /// The file's values and id of the parameter at the current path,
        /// if it keeps it and the shapes agree.
        fn take(&mut self, dims: &[usize]) -> Option<(TensorData, ParamId)> {
            let path = self.path.join();
            let Some(snapshot) = self.kept.remove(&path) else {
                self.others += 1;
                return None;
            };
            if snapshot.shape.as_slice() != dims {
                self.errors.push(format!(
                    "{path}: shape {:?} in the file, {dims:?} in the model",
                    snapshot.shape.as_slice()
                ));
                return None;
            }
            let Some(id) = snapshot.tensor_id else {
                self.errors.push(format!("{path}: no parameter id in the file"));
                return None;
            };
            match snapshot.to_data() {
                Ok(data) => Some((data, id)),
                Err(e) => {
                    self.errors.push(format!("{path}: {e}"));
                    None
                }
            }
        }
    }

    impl<B: Backend> ModuleMapper<B> for Apply {
        fn enter_module(&mut self, name: &str, container: &str) {
            self.path.enter(name, container);
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.exit();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let Some((data, id)) = self.take(&param.lazy_shape().dims::<D>()) else {
                return param;
            };
            let (device, dtype) = (param.lazy_device(), data.dtype);
            param.transform_for_load(Tensor::from_data(data, (&device, dtype)), id)
        }
        fn map_int<const D: usize>(&mut self, param: Param<Tensor<B, D, Int>>) -> Param<Tensor<B, D, Int>> {
            let Some((data, id)) = self.take(&param.lazy_shape().dims::<D>()) else {
                return param;
            };
            let device = param.lazy_device();
            param.transform_for_load(Tensor::from_data(data, &device), id)
        }
        fn map_bool<const D: usize>(
            &mut self,
            param: Param<Tensor<B, D, Bool>>,
        ) -> Param<Tensor<B, D, Bool>> {
            let Some((data, id)) = self.take(&param.lazy_shape().dims::<D>()) else {
                return param;
            };
            let device = param.lazy_device();
            param.transform_for_load(Tensor::from_data(data, &device), id)
        }
    }

    /// `model` with the parameters of `section` (their ids included); every
    /// other parameter of `model` must be one that was left out.
    pub(super) fn apply<B: Backend, M: Module<B>>(section: &[u8], model: M) -> Result<M, String> {
        let (left_out, pack) = section
            .split_first_chunk::<8>()
            .ok_or("the count of left-out parameters is cut short")?;
        let left_out = u64::from_le_bytes(*left_out);
        let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(pack.to_vec())));
        let kept = store
            .get_all_snapshots()
            .map_err(|e| format!("Burnpack: {e}"))?
            .iter()
            .map(|(path, snapshot)| (path.clone(), snapshot.clone()))
            .collect();
        let mut apply = Apply {
            path: Path::default(),
            kept,
            others: 0,
            errors: Vec::new(),
        };
        let model = model.map(&mut apply);
        if let Some(e) = apply.errors.first() {
            return Err(e.clone());
        }
        if let Some(path) = apply.kept.keys().next() {
            return Err(format!("{path}: no such parameter in the model"));
        }
        if apply.others != left_out {
            return Err(format!(
                "{left_out} parameters were left out of the file (rebuilt from the model's folder), but the model has {} others: not the model the file was written for",
                apply.others
            ));
        }
        Ok(model)
    }
}

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

/// A loop's generators, each saved and restored at its exact position: one
/// ([`Rng`], the usual case) or several streams (`[Rng; N]`: the
/// classifier's batch order and dropout masks).
pub trait Generators: Sized {
    /// Every stream's position, the first one first.
    fn states(&self) -> Vec<RngState>;
    /// The streams back from [`Self::states`]; `None` when their number is
    /// not this loop's.
    fn restore(states: &[RngState]) -> Option<Self>;
}

impl Generators for Rng {
    fn states(&self) -> Vec<RngState> {
        vec![RngState::of(self)]
    }

    fn restore(states: &[RngState]) -> Option<Self> {
        match states {
            [one] => Some(one.restore()),
            _ => None,
        }
    }
}

impl<const N: usize> Generators for [Rng; N] {
    fn states(&self) -> Vec<RngState> {
        self.iter().map(RngState::of).collect()
    }

    fn restore(states: &[RngState]) -> Option<Self> {
        let rngs: Vec<Rng> = states.iter().map(RngState::restore).collect();
        rngs.try_into().ok()
    }
}

/// Where a training loop stands: the last finished epoch or iteration, its
/// generator (`rng`; a loop of several streams keeps the others in `more`,
/// left out of the file when there are none), and its log so far.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "L: Serialize + serde::de::DeserializeOwned")]
pub struct LoopState<L> {
    pub done: usize,
    pub rng: RngState,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more: Vec<RngState>,
    pub log: Vec<L>,
}

/// A training loop as it resumes: its module, optimizer, generators, log,
/// and the first epoch or iteration still to run.
pub type Resumed<M, O, R, L> = (M, O, R, Vec<L>, usize);

/// Resumes a loop from the checkpoint at `path` where there is one;
/// otherwise hands back what it was given, starting at 1.
pub fn resume<B, M, O, R, L>(
    path: Option<&Path>,
    model: M,
    optim: O,
    rng: R,
    device: &B::Device,
) -> Result<Resumed<M, O, R, L>, PolicyError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
    R: Generators,
    L: Serialize + DeserializeOwned,
{
    if let Some(path) = path {
        clean_stale_temporaries(path)?;
    }
    if let Some(path) = path
        && let Some((m, o, state)) =
            load::<B, _, _, LoopState<L>>(path, model.clone(), optim.clone(), device)?
    {
        let mut states = vec![state.rng];
        states.extend(state.more);
        let rng = R::restore(&states)
            .ok_or_else(|| corrupt(path, &format!("{} generator(s), not this loop's", states.len())))?;
        return Ok((m, o, rng, state.log, state.done + 1));
    }
    Ok((model, optim, rng, Vec::new(), 1))
}

/// Writes a loop's checkpoint after epoch or iteration `done`, when it
/// has a path.
pub fn save_loop<B, M, O, R, L>(
    path: Option<&Path>,
    keep: Keep,
    model: &M,
    optim: &O,
    done: usize,
    rng: &R,
    log: &[L],
) -> Result<(), PolicyError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
    R: Generators,
    L: Serialize,
{
    #[derive(Serialize)]
    struct Borrowed<'a, L> {
        done: usize,
        rng: RngState,
        #[serde(skip_serializing_if = "<[RngState]>::is_empty")]
        more: &'a [RngState],
        log: &'a [L],
    }
    let Some(path) = path else { return Ok(()) };
    let mut states = rng.states().into_iter();
    let first = states
        .next()
        .ok_or_else(|| PolicyError::Invalid(format!("{}: a loop without a generator", path.display())))?;
    let more: Vec<RngState> = states.collect();
    save(
        path,
        keep,
        model,
        optim,
        &Borrowed {
            done,
            rng: first,
            more: &more,
            log,
        },
    )
}

fn corrupt(path: &Path, what: &str) -> PolicyError {
    PolicyError::Invalid(format!("{}: not a readable checkpoint ({what})", path.display()))
}

/// Writes a checkpoint of `model` (the parameters `keep` says), `optim`
/// and `state` to `path`.
pub fn save<B, M, O, S>(path: &Path, keep: Keep, model: &M, optim: &O, state: &S) -> Result<(), PolicyError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
    S: Serialize,
{
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    let failed = |e: &dyn std::fmt::Display| {
        PolicyError::Invalid(format!("{}: writing the checkpoint: {e}", path.display()))
    };
    let model_bytes = module_section::encode(model, keep).map_err(|e| failed(&e))?;
    let optim_bytes = Recorder::<B>::record(&recorder, optim.to_record(), ()).map_err(|e| failed(&e))?;
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
    // The parameters are made where `model`'s are, which is `device`.
    let _ = device;
    apply_module(path, module, model)
}

/// Puts the module section of a checkpoint into `model`.
fn apply_module<B, M>(path: &Path, module: &[u8], model: M) -> Result<M, PolicyError>
where
    B: burn::tensor::backend::Backend,
    M: burn::module::Module<B>,
{
    module_section::apply(module, model).map_err(|e| corrupt(path, &format!("module: {e}")))
}

/// The module, optimizer and state sections of a file, after its header
/// and checksum are verified.
fn sections<'a>(path: &Path, bytes: &'a [u8]) -> Result<[&'a [u8]; 3], PolicyError> {
    let Some(rest) = bytes.strip_prefix(MAGIC) else {
        if OLD_MAGICS.iter().any(|m| bytes.starts_with(m)) {
            return Err(PolicyError::Invalid(format!(
                "{}: a checkpoint of an earlier rxalign, before checkpoints kept their weights in Burnpack; it cannot be read: delete it (or the run's `checkpoints/` folder) and train the stage again",
                path.display()
            )));
        }
        return Err(corrupt(path, "no header"));
    };
    if rest.len() < CHECKSUM_LEN {
        return Err(corrupt(path, "cut short before its checksum"));
    }
    let (sum, rest) = rest.split_at(CHECKSUM_LEN);
    if Sha256::digest(rest).as_slice() != sum {
        return Err(PolicyError::Invalid(format!(
            "{}: the checkpoint is damaged: its SHA-256 does not match its contents (a partial copy or a changed byte); delete it to start the stage afresh",
            path.display()
        )));
    }
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
/// when a process stops between writing and renaming (`.NAME.tmp-HOST-PID-N`
/// beside it as [`rxalign_core::run::write_atomic`] names them, or
/// `.NAME.tmp-PID` of older builds; of a process other than this one), and
/// returns what it removed. Only names of exactly those forms are touched.
pub fn clean_stale_temporaries(path: &Path) -> Result<Vec<std::path::PathBuf>, PolicyError> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(Vec::new());
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let name = name.to_string_lossy();
    let prefix = format!(".{name}.tmp-");
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(PolicyError::Invalid(format!("{}: {e}", dir.display()))),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| PolicyError::Invalid(format!("{}: {e}", dir.display())))?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let stale = match file_name.strip_prefix(&prefix) {
            Some(pid) if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) => {
                pid.parse().is_ok_and(|pid| {
                    rxalign_core::run::writer_is_gone(&rxalign_core::run::records::host_name(), pid)
                })
            }
            _ => {
                rxalign_core::run::parse_temporary(file_name).is_some_and(|(of, ..)| of == name)
                    && rxalign_core::run::is_stale_temporary(file_name)
            }
        };
        if !stale {
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
    let model = apply_module(path, model_bytes, model)?;
    let optim_record = Recorder::<B>::load(&recorder, optim_bytes.to_vec(), device)
        .map_err(|e| corrupt(path, &format!("optimizer: {e}")))?;
    Ok(Some((model, optim.load_record(optim_record), state)))
}

#[cfg(test)]
mod tests {
    use burn::module::Module as _;
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
        save_loop::<B, _, _, Rng, u32>(Some(&path), Keep::All, &model(), &optim, 3, &rng, &[1, 2, 3])
            .unwrap();
        path
    }

    /// A resumed test loop: a linear model, Adam, one generator, a log of numbers.
    type Back =
        Resumed<Linear<B>, burn::optim::adaptor::OptimizerAdaptor<burn::optim::Adam, Linear<B>, B>, Rng, u32>;

    fn resume_from(path: &Path) -> Result<Back, PolicyError> {
        let optim = AdamConfig::new().init::<B, Linear<B>>();
        resume::<B, _, _, Rng, u32>(
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

    /// A loop of several streams gets each back at its position; a file of
    /// one stream is refused to a loop of two, naming the file.
    #[test]
    fn several_generators_resume_at_their_positions() {
        use rand::Rng as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0-classifier.ckpt");
        let optim = AdamConfig::new().init::<B, Linear<B>>();
        let mut rngs = [Rng::seed_from_u64(1), Rng::seed_from_u64(2)];
        rngs[1].random::<u64>();
        save_loop::<B, _, _, _, u32>(Some(&path), Keep::All, &model(), &optim, 2, &rngs, &[1, 2]).unwrap();
        let fresh = [Rng::seed_from_u64(9), Rng::seed_from_u64(9)];
        let (_, _, mut back, log, next) = resume::<B, _, _, [Rng; 2], u32>(
            Some(&path),
            model(),
            AdamConfig::new().init::<B, Linear<B>>(),
            fresh,
            &Default::default(),
        )
        .unwrap();
        assert_eq!((log, next), (vec![1, 2], 3));
        for (a, b) in back.iter_mut().zip(rngs.iter_mut()) {
            assert_eq!(a.random::<u64>(), b.random::<u64>());
        }
        let one = written(dir.path());
        let e = resume::<B, _, _, [Rng; 2], u32>(
            Some(&one),
            model(),
            AdamConfig::new().init::<B, Linear<B>>(),
            [Rng::seed_from_u64(0), Rng::seed_from_u64(0)],
            &Default::default(),
        )
        .map(|_| ())
        .unwrap_err()
        .to_string();
        assert!(e.contains("0-sft.ckpt") && e.contains("1 generator(s)"), "{e}");
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

    /// Issue #23: checkpoints of the formats before Burnpack are refused
    /// with what to do, naming the file.
    #[test]
    fn a_checkpoint_of_an_earlier_format_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        let bytes = std::fs::read(&path).unwrap();
        for old in OLD_MAGICS {
            let mut earlier = old.to_vec();
            earlier.extend_from_slice(&bytes[MAGIC.len()..]);
            std::fs::write(&path, &earlier).unwrap();
            let e = resume_from(&path).map(|_| ()).unwrap_err().to_string();
            assert!(
                e.contains("0-sft.ckpt")
                    && e.contains("earlier rxalign")
                    && e.contains("delete it")
                    && e.contains("train the stage again"),
                "{e}"
            );
        }
    }

    /// Issue #23: the module's weights are a Burnpack in their own dtype, so
    /// bf16 weights take 2 bytes a value and come back bf16, bit for bit,
    /// with their parameter ids.
    #[test]
    fn bf16_weights_stay_two_bytes_and_come_back_with_their_ids() {
        use burn::module::Param;
        use burn::tensor::{DType, Tensor, TensorData};
        let device = Default::default();
        let values: Vec<f32> = (0..64 * 64).map(|i| (i as f32 * 0.37).sin()).collect();
        let dir = tempfile::tempdir().unwrap();
        let as_f32 =
            |t: Tensor<burn::backend::Flex, 2>| t.into_data().convert::<f32>().to_vec::<f32>().unwrap();
        let size = |dtype: DType| {
            let mut m: Linear<B> = LinearConfig::new(64, 64).init(&device);
            let weight = Tensor::from_data(TensorData::new(values.clone(), [64, 64]), (&device, dtype));
            m.weight = Param::initialized(m.weight.id, weight);
            let path = dir.path().join(format!("{dtype:?}.ckpt"));
            let optim = AdamConfig::new().init::<B, Linear<B>>();
            save::<B, _, _, u32>(&path, Keep::All, &m, &optim, &0).unwrap();
            let fresh: Linear<burn::backend::Flex> = LinearConfig::new(64, 64).init(&device);
            let loaded = load_module::<burn::backend::Flex, _>(&path, fresh, &device).unwrap();
            assert_eq!(loaded.weight.val().dtype(), dtype);
            assert_eq!(
                loaded.weight.id, m.weight.id,
                "the file's id, not the fresh model's"
            );
            assert_eq!(as_f32(loaded.weight.val()), as_f32(m.weight.val().inner()));
            std::fs::metadata(&path).unwrap().len()
        };
        let (f32_size, bf16_size) = (size(DType::F32), size(DType::BF16));
        // 64 x 64 values, 2 bytes fewer each (the tensors' alignment pads
        // by less than 256 bytes).
        let saved = f32_size - bf16_size;
        assert!(
            (64 * 64 * 2 - 256..=64 * 64 * 2 + 256).contains(&saved),
            "{f32_size} vs {bf16_size}"
        );
    }

    /// Issue #12: leftover temporary files were never removed.
    #[test]
    fn resuming_removes_leftover_temporaries_of_other_processes_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        let stale = dir.path().join(".0-sft.ckpt.tmp-4242424");
        // Issue #22: the name `write_atomic` gives (host with dashes, pid, counter).
        let stale_host = dir.path().join(".0-sft.ckpt.tmp-node-7-4242424-3");
        let own = dir.path().join(format!(".0-sft.ckpt.tmp-{}", std::process::id()));
        let own_host = dir.path().join(format!(
            ".0-sft.ckpt.tmp-{}-{}-0",
            rxalign_core::run::records::host_name(),
            std::process::id()
        ));
        let foreign = [
            dir.path().join(".0-sft.ckpt.tmp-notapid"),
            dir.path().join(".1-grpo.ckpt.tmp-4242424"),
            dir.path().join(".1-grpo.ckpt.tmp-node-4242424-0"),
            dir.path().join(".0-sft.ckpt.tmp-node-x-0"),
            dir.path().join("notes.txt"),
        ];
        for f in foreign.iter().chain([&stale, &stale_host, &own, &own_host]) {
            std::fs::write(f, b"x").unwrap();
        }
        resume_from(&path).unwrap();
        assert!(!stale.exists());
        assert!(!stale_host.exists(), "a leftover of write_atomic is removed");
        assert!(own.exists(), "this process's own file may be in flight");
        assert!(own_host.exists(), "this process's own file may be in flight");
        for f in &foreign {
            assert!(f.exists(), "{} is not ours", f.display());
        }
    }

    /// Issue #22, second pass: a temporary of another process on this
    /// machine was removed while that process still ran; only those whose
    /// writer is gone are.
    #[test]
    fn a_temporary_of_a_live_process_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = written(dir.path());
        let mut live = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let host = rxalign_core::run::records::host_name();
        let of_live = [
            dir.path().join(format!(".0-sft.ckpt.tmp-{host}-{}-0", live.id())),
            dir.path().join(format!(".0-sft.ckpt.tmp-{}", live.id())),
        ];
        let of_dead = dir.path().join(format!(".0-sft.ckpt.tmp-{host}-4242424-0"));
        for f in of_live.iter().chain([&of_dead]) {
            std::fs::write(f, b"x").unwrap();
        }
        resume_from(&path).unwrap();
        let kept = of_live.iter().all(|f| f.exists());
        live.kill().unwrap();
        live.wait().unwrap();
        assert!(kept, "a live writer's temporaries stay");
        assert!(!of_dead.exists(), "a dead writer's temporary is removed");
        // Once the writer is gone, they are removed too.
        resume_from(&path).unwrap();
        assert!(of_live.iter().all(|f| !f.exists()));
    }

    /// A frozen layer and a trainable one: a base under an adapter.
    fn adapted(seed_frozen: usize) -> Vec<Linear<B>> {
        let device = Default::default();
        let frozen = LinearConfig::new(3, 4).init::<B>(&device);
        let frozen = frozen.map(&mut Fill(seed_frozen as f32)).no_grad();
        vec![frozen, LinearConfig::new(4, 2).init(&device)]
    }

    /// Sets every value of every parameter.
    struct Fill(f32);

    impl<Bk: burn::tensor::backend::Backend> burn::module::ModuleMapper<Bk> for Fill {
        fn map_float<const D: usize>(
            &mut self,
            param: burn::module::Param<burn::tensor::Tensor<Bk, D>>,
        ) -> burn::module::Param<burn::tensor::Tensor<Bk, D>> {
            let v = self.0;
            param.map(|t| t.ones_like() * v)
        }
    }

    fn values(m: &[Linear<B>]) -> Vec<Vec<f32>> {
        m.iter()
            .flat_map(|l| [Some(l.weight.val()), l.bias.as_ref().map(|b| b.val().unsqueeze())])
            .flatten()
            .map(|t: burn::tensor::Tensor<B, 2>| t.into_data().to_vec().unwrap())
            .collect()
    }

    /// Issue #15: checkpoints of a LoRA run on a pretrained model held the
    /// frozen base; with `Keep::Trainable` they hold the trainable
    /// parameters (values and ids) and the optimizer alone, and resume onto
    /// a model whose frozen part is rebuilt.
    #[test]
    fn a_trainable_only_checkpoint_resumes_onto_the_rebuilt_base() {
        use burn::optim::{GradientsParams, Optimizer as _};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1-sft.ckpt");
        let device = Default::default();
        let model = adapted(3);
        // One Adam step, so the optimizer has state keyed by the ids.
        let mut optim = AdamConfig::new().init::<B, Vec<Linear<B>>>();
        let x = burn::tensor::Tensor::<B, 2>::ones([2, 3], &device);
        let loss = model[1].forward(model[0].forward(x)).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let model = optim.step(1e-2, model, grads);
        let rng = Rng::seed_from_u64(7);
        save_loop::<B, _, _, Rng, u32>(Some(&path), Keep::Trainable, &model, &optim, 1, &rng, &[5]).unwrap();
        let full = dir.path().join("full.ckpt");
        save_loop::<B, _, _, Rng, u32>(Some(&full), Keep::All, &model, &optim, 1, &rng, &[5]).unwrap();
        let (small, big) = (
            std::fs::metadata(&path).unwrap().len(),
            std::fs::metadata(&full).unwrap().len(),
        );
        assert!(small < big, "{small} vs {big} bytes");
        // A fresh model: the same frozen base, another trainable layer.
        let fresh = adapted(3);
        assert_ne!(values(&fresh)[2], values(&model)[2]);
        let rebuilt = fresh[0].weight.id;
        let optim2 = AdamConfig::new().init::<B, Vec<Linear<B>>>();
        let (resumed, optim2, _, log, next) =
            resume::<B, _, _, Rng, u32>(Some(&path), fresh, optim2, Rng::seed_from_u64(0), &device).unwrap();
        assert_eq!((log, next), (vec![5], 2));
        assert_eq!(values(&resumed), values(&model));
        assert_eq!(
            resumed[1].weight.id, model[1].weight.id,
            "ids kept for the optimizer"
        );
        assert_eq!(
            resumed[0].weight.id, rebuilt,
            "the frozen base is the rebuilt one"
        );
        assert!(!resumed[0].weight.val().is_require_grad());
        assert!(resumed[1].weight.val().is_require_grad());
        // The optimizer's state applies: the next step from both is the same.
        let step = |m: Vec<Linear<B>>, mut o: burn::optim::adaptor::OptimizerAdaptor<burn::optim::Adam, Vec<Linear<B>>, B>| {
            let x = burn::tensor::Tensor::<B, 2>::ones([2, 3], &device);
            let loss = m[1].forward(m[0].forward(x)).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &m);
            values(&o.step(1e-2, m, grads))
        };
        assert_eq!(step(resumed, optim2), step(model, optim));
        // Another model is refused, naming the file: one without the kept
        // parameters, and one whose frozen part differs (no bias).
        let other = vec![adapted(3).remove(1)];
        let e = load_module::<B, _>(&path, other, &device)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains("1-sft.ckpt") && e.contains("no such parameter"), "{e}");
        let mut other = adapted(3);
        other[0] = LinearConfig::new(3, 4)
            .with_bias(false)
            .init::<B>(&device)
            .no_grad();
        let e = load_module::<B, _>(&path, other, &device)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("1-sft.ckpt") && e.contains("2 parameters were left out"),
            "{e}"
        );
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
