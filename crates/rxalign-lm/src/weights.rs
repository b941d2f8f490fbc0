//! Checkpoints: Hugging Face folders (`config.json` with `model.safetensors`,
//! or shards listed in `model.safetensors.index.json`) read through
//! burn-store's [`SafetensorsStore`], and our own checkpoints written in the
//! same layout so that one loader reads both (and transformers reads ours).
//!
//! Hugging Face keys map onto [`Llama`]'s fields with two renames, done by a
//! [`KeyRemapper`]: projections sit one level down (`q_proj.weight` is
//! `q_proj.base.weight`, beside its LoRA adapters) and RMSNorm's scale is
//! burn's `gamma` (burn-store's PyTorch adapter renames LayerNorm's and
//! BatchNorm's `weight` but not RMSNorm's). The PyTorch adapter transposes
//! linear weights (`[out, in]` in PyTorch, `[in, out]` in burn). Tensors keep
//! the file's dtype when loaded, so every tensor is cast explicitly
//! ([`CastFloats`]): weight matrices to the [`Precision`] asked for (f32 by
//! default; bf16 and f16 checkpoints stay 2 bytes a value under `bf16` or
//! `f16`), norms and biases to the backend's float type.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Element};
use burn_store::{
    BurnToPyTorchAdapter, KeyRemapper, ModuleAdapter, ModuleSnapshot, PathFilter, PyTorchToBurnAdapter,
    SafetensorsStore, TensorSnapshot,
};
use serde::Deserialize;

use crate::config::LlamaConfig;
use crate::error::{LmError, Result, io, read_json};
use crate::llama::Llama;
use crate::precision::Precision;

/// Casts every floating-point tensor while loading (matrices, of two or
/// more dimensions, to `matrices`; vectors such as norms and biases to
/// `vectors`), and checks each: a tensor of another dtype (an integer
/// tensor where a weight belongs) or with NaN or infinite values is a load
/// error naming the tensor, never a panic of the backend or a model that
/// computes NaN.
#[derive(Debug, Clone, Copy)]
pub struct CastFloats {
    pub matrices: DType,
    pub vectors: DType,
}

impl CastFloats {
    /// Every float tensor to `dtype`.
    pub fn all(dtype: DType) -> Self {
        Self {
            matrices: dtype,
            vectors: dtype,
        }
    }
}

impl ModuleAdapter for CastFloats {
    fn adapt(&self, snapshot: &TensorSnapshot) -> TensorSnapshot {
        let from = snapshot.dtype;
        let is_float = matches!(from, DType::F64 | DType::F32 | DType::F16 | DType::BF16);
        let to = match (is_float, snapshot.shape.len() >= 2) {
            (false, _) => from,
            (true, true) => self.matrices,
            (true, false) => self.vectors,
        };
        let data = snapshot.clone_data_fn();
        let checked = move || {
            if !is_float {
                return Err(burn_store::TensorSnapshotError::DataError(format!(
                    "the tensor is {from:?}; a weight must be a float tensor (F32, F16, BF16 or F64)"
                )));
            }
            let data = data()?;
            let data = if from == to { data } else { data.convert_dtype(to) };
            if data.iter::<f64>().any(|x| !x.is_finite()) {
                return Err(burn_store::TensorSnapshotError::DataError(
                    "the tensor holds NaN or infinite values".into(),
                ));
            }
            Ok(data)
        };
        TensorSnapshot::from_closure(
            Rc::new(checked),
            to,
            snapshot.shape.clone(),
            snapshot.path_stack.clone().unwrap_or_default(),
            snapshot.container_stack.clone().unwrap_or_default(),
            snapshot.tensor_id.unwrap_or_default(),
        )
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(*self)
    }
}

/// Hugging Face key → our key.
fn hf_to_ours() -> KeyRemapper {
    KeyRemapper::from_patterns(vec![
        (r"^(.*_proj)\.(weight|bias)$", "${1}.base.${2}"),
        (r"^(.*layernorm|model\.norm)\.weight$", "${1}.gamma"),
    ])
    .expect("fixed patterns compile")
}

/// Our key → Hugging Face key.
fn ours_to_hf() -> KeyRemapper {
    KeyRemapper::from_patterns(vec![
        (r"^(.*_proj)\.base\.(weight|bias)$", "${1}.${2}"),
        (r"^(.*layernorm|model\.norm)\.gamma$", "${1}.weight"),
    ])
    .expect("fixed patterns compile")
}

fn weights_err(path: &Path, message: impl std::fmt::Display) -> LmError {
    LmError::Weights {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// The errors of a load, one per tensor, as a reader reads them.
pub(crate) fn load_errors(errors: &[burn_store::ApplyError]) -> String {
    let shown: Vec<String> = errors.iter().take(4).map(|e| e.to_string()).collect();
    let more = errors.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{} (and {more} more)", shown.join("; "))
    } else {
        shown.join("; ")
    }
}

#[derive(Debug, Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

/// The safetensors files of a checkpoint folder: `model.safetensors`, or the
/// shards its index names.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let index: ShardIndex = read_json(&index)?;
        let files: BTreeSet<&String> = index.weight_map.values().collect();
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    Err(weights_err(
        dir,
        "neither model.safetensors nor model.safetensors.index.json is there",
    ))
}

/// Loads the model of a Hugging Face folder (`config.json` and its
/// safetensors) onto `device`, every weight in f32. Every parameter of the
/// model must be found; tensors the model does not use (a tied head stored
/// anyway) are ignored.
pub fn load_pretrained<B: Backend>(dir: &Path, device: &B::Device) -> Result<Llama<B>> {
    load_pretrained_in(dir, device, Precision::F32)
}

/// [`load_pretrained`] with the weight matrices stored in `precision`
/// (refused where the backend cannot store it on `device`).
pub fn load_pretrained_in<B: Backend>(
    dir: &Path,
    device: &B::Device,
    precision: Precision,
) -> Result<Llama<B>> {
    if !precision.supported_by::<B>(device) {
        return Err(LmError::Request(format!(
            "precision `{precision}`: the {} backend cannot store {:?} tensors on this device",
            B::name(device),
            precision.dtype()
        )));
    }
    let config = LlamaConfig::from_file(&dir.join("config.json"))?;
    let files = weight_files(dir)?;
    let mut model = config.init::<B>(device);
    load_weights_in(&mut model, &files, precision)?;
    Ok(model)
}

/// Applies safetensors files to a model, every weight in f32; all its
/// parameters must be covered.
pub fn load_weights<B: Backend>(model: &mut Llama<B>, files: &[PathBuf]) -> Result<()> {
    load_weights_in(model, files, Precision::F32)
}

/// [`load_weights`] with the weight matrices stored in `precision`.
pub fn load_weights_in<B: Backend>(
    model: &mut Llama<B>,
    files: &[PathBuf],
    precision: Precision,
) -> Result<()> {
    let float = <B::FloatElem as Element>::dtype();
    let cast = CastFloats {
        matrices: if precision == Precision::F32 {
            float
        } else {
            precision.dtype()
        },
        vectors: float,
    };
    let mut missing: Option<BTreeSet<String>> = None;
    for file in files {
        if !file.is_file() {
            return Err(weights_err(file, "no such file"));
        }
        let mut store = SafetensorsStore::from_file(file)
            .with_from_adapter(PyTorchToBurnAdapter.chain(cast))
            .remap(hf_to_ours())
            .allow_partial(true)
            .validate(true);
        let result = model.load_from(&mut store).map_err(|e| weights_err(file, e))?;
        if !result.errors.is_empty() {
            return Err(weights_err(file, load_errors(&result.errors)));
        }
        let here: BTreeSet<String> = result.missing.into_iter().map(|(p, _)| p).collect();
        missing = Some(match missing {
            None => here,
            Some(before) => before.intersection(&here).cloned().collect(),
        });
    }
    if let Some(missing) = missing.filter(|m| !m.is_empty()) {
        let first = files.first().map_or(Path::new(""), PathBuf::as_path);
        let names: Vec<_> = missing.iter().take(8).cloned().collect();
        return Err(weights_err(
            first,
            format!(
                "{} parameters of the model are in none of the files, e.g. {}",
                missing.len(),
                names.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Writes `path` atomically: into a temporary file beside it, then renamed.
pub(crate) fn write_atomically(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = write(&tmp).and_then(|()| std::fs::rename(&tmp, path).map_err(io(path)));
    if result.is_err() {
        // Only our own temporary file, never anything else.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Saves the base model (no adapters) as a Hugging Face folder:
/// `config.json` and `model.safetensors` with Hugging Face keys and layout.
/// The folder is created if needed; the two files are written atomically.
pub fn save_pretrained<B: Backend>(model: &Llama<B>, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let save_err = |path: &Path, e: &dyn std::fmt::Display| LmError::Save {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let weights = dir.join("model.safetensors");
    write_atomically(&weights, |tmp| {
        let mut store = SafetensorsStore::from_file(tmp)
            .with_to_adapter(BurnToPyTorchAdapter)
            .filter(PathFilter::new().with_predicate(|path, _| !path.contains(".adapters.")))
            .remap(ours_to_hf())
            // transformers reads safetensors whose format is "pt".
            .metadata("format", "pt")
            .overwrite(true);
        model.save_into(&mut store).map_err(|e| save_err(&weights, &e))
    })?;
    let config = dir.join("config.json");
    let text = serde_json::to_string_pretty(&model.config).map_err(|e| save_err(&config, &e))?;
    write_atomically(&config, |tmp| std::fs::write(tmp, text).map_err(io(tmp)))?;
    Ok(())
}
