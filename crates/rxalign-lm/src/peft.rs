//! LoRA adapters saved alone, in the format of Hugging Face's `peft`:
//! `adapter_model.safetensors` (keys
//! `base_model.model.<module>.lora_A.weight`, `[rank, d_in]`, and
//! `lora_B.weight`, `[d_out, rank]`) and `adapter_config.json`. Python's
//! `peft` loads what we write onto the transformers model, and we load it
//! back into ours as a named adapter.

use std::path::Path;
use std::rc::Rc;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Element, TensorData};
use burn_store::{KeyRemapper, ModuleAdapter, ModuleSnapshot, PathFilter, SafetensorsStore, TensorSnapshot};
use serde::{Deserialize, Serialize};

use crate::error::{LmError, Result, io, read_json};
use crate::llama::Llama;
use crate::lora::LoraConfig;
use crate::weights::{CastFloats, write_atomically};

/// `adapter_config.json`, the fields we write and read (others are ignored
/// on reading).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeftConfig {
    pub peft_type: String,
    pub task_type: Option<String>,
    pub r: usize,
    pub lora_alpha: f64,
    #[serde(default)]
    pub lora_dropout: f64,
    pub target_modules: Vec<String>,
    #[serde(default = "none")]
    pub bias: String,
    #[serde(default)]
    pub fan_in_fan_out: bool,
    #[serde(default)]
    pub use_rslora: bool,
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
    #[serde(default)]
    pub inference_mode: bool,
}

fn none() -> String {
    "none".into()
}

/// Transposes the 2-D tensors of LoRA pairs (burn keeps `[d_in, rank]` and
/// `[rank, d_out]`; PEFT's `nn.Linear` weights are the transposes). The same
/// operation both ways.
#[derive(Debug, Clone, Copy)]
struct TransposeLora;

impl ModuleAdapter for TransposeLora {
    fn adapt(&self, snapshot: &TensorSnapshot) -> TensorSnapshot {
        let is_pair = snapshot.module_type().as_deref() == Some("Struct:LoraPair");
        if !is_pair || snapshot.shape.len() != 2 {
            return snapshot.clone();
        }
        let (rows, cols) = (snapshot.shape[0], snapshot.shape[1]);
        let data = snapshot.clone_data_fn();
        let dtype = snapshot.dtype;
        TensorSnapshot::from_closure(
            Rc::new(move || {
                let values: Vec<f32> = data()?
                    .convert_dtype(DType::F32)
                    .into_vec()
                    .map_err(|e| burn_store::TensorSnapshotError::DataError(format!("{e:?}")))?;
                let mut t = vec![0.0f32; values.len()];
                for i in 0..rows {
                    for j in 0..cols {
                        t[j * rows + i] = values[i * cols + j];
                    }
                }
                Ok(TensorData::new(t, [cols, rows]).convert_dtype(dtype))
            }),
            dtype,
            [cols, rows].into(),
            snapshot.path_stack.clone().unwrap_or_default(),
            snapshot.container_stack.clone().unwrap_or_default(),
            snapshot.tensor_id.unwrap_or_default(),
        )
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(*self)
    }
}

/// Writes adapter `name` alone as a PEFT adapter folder (created if needed;
/// both files written atomically).
pub fn save_adapter<B: Backend>(
    model: &Llama<B>,
    name: &str,
    dir: &Path,
    base_model: Option<&str>,
) -> Result<()> {
    let i = model.adapter_index(name)?;
    let config = model.adapter_config(name)?.clone();
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let weights = dir.join("adapter_model.safetensors");
    write_atomically(&weights, |tmp| {
        let mut store = SafetensorsStore::from_file(tmp)
            .with_to_adapter(TransposeLora)
            .filter(PathFilter::new().with_regex(format!(r"\.adapters\.{i}\.(a|b)$")))
            .remap(
                KeyRemapper::from_patterns(vec![
                    (
                        format!(r"^(.*)\.adapters\.{i}\.a$"),
                        "base_model.model.${1}.lora_A.weight".to_string(),
                    ),
                    (
                        format!(r"^(.*)\.adapters\.{i}\.b$"),
                        "base_model.model.${1}.lora_B.weight".to_string(),
                    ),
                ])
                .expect("fixed patterns compile"),
            )
            .metadata("format", "pt")
            .overwrite(true);
        model.save_into(&mut store).map_err(|e| LmError::Save {
            path: weights.clone(),
            message: e.to_string(),
        })
    })?;
    let peft = PeftConfig {
        peft_type: "LORA".into(),
        task_type: Some("CAUSAL_LM".into()),
        r: config.rank,
        lora_alpha: config.alpha,
        lora_dropout: config.dropout,
        target_modules: config.targets.clone(),
        bias: "none".into(),
        fan_in_fan_out: false,
        use_rslora: false,
        base_model_name_or_path: base_model.map(str::to_string),
        inference_mode: true,
    };
    let path = dir.join("adapter_config.json");
    let text = serde_json::to_string_pretty(&peft).map_err(|e| LmError::Save {
        path: path.clone(),
        message: e.to_string(),
    })?;
    write_atomically(&path, |tmp| std::fs::write(tmp, text).map_err(io(tmp)))
}

/// Adds the PEFT adapter of `dir` to the model under `name`.
pub fn load_adapter<B: Backend>(model: Llama<B>, name: &str, dir: &Path) -> Result<Llama<B>> {
    let config_path = dir.join("adapter_config.json");
    let peft: PeftConfig = read_json(&config_path)?;
    let field_err = |field: &str, message: &str| LmError::Config {
        path: config_path.clone(),
        field: field.into(),
        message: message.into(),
    };
    if peft.peft_type != "LORA" {
        return Err(field_err("peft_type", "only LORA adapters are read"));
    }
    if peft.use_rslora || peft.fan_in_fan_out || peft.bias != "none" {
        return Err(field_err(
            "use_rslora/fan_in_fan_out/bias",
            "rsLoRA, fan-in-fan-out layouts and trained biases are not supported",
        ));
    }
    let config = LoraConfig {
        rank: peft.r,
        alpha: peft.lora_alpha,
        dropout: peft.lora_dropout,
        targets: peft.target_modules,
    };
    let mut model = model.add_adapter(name, config)?;
    let i = model.adapter_index(name)?;
    let weights = dir.join("adapter_model.safetensors");
    let float = <B::FloatElem as Element>::dtype();
    let mut store = SafetensorsStore::from_file(&weights)
        .with_from_adapter(TransposeLora.chain(CastFloats::all(float)))
        .remap(
            KeyRemapper::from_patterns(vec![
                (
                    r"^base_model\.model\.(.*)\.lora_A\.weight$".to_string(),
                    format!("${{1}}.adapters.{i}.a"),
                ),
                (
                    r"^base_model\.model\.(.*)\.lora_B\.weight$".to_string(),
                    format!("${{1}}.adapters.{i}.b"),
                ),
            ])
            .expect("fixed patterns compile"),
        )
        .allow_partial(true)
        .validate(true);
    let err = |message: String| LmError::Weights {
        path: weights.clone(),
        message,
    };
    let result = model.load_from(&mut store).map_err(|e| err(e.to_string()))?;
    if !result.errors.is_empty() {
        return Err(err(crate::weights::load_errors(&result.errors)));
    }
    let marker = format!(".adapters.{i}.");
    let missing: Vec<_> = result
        .missing
        .iter()
        .map(|(p, _)| p)
        .filter(|p| p.contains(&marker))
        .collect();
    if !missing.is_empty() {
        return Err(err(format!(
            "{} adapter tensors missing, e.g. {}",
            missing.len(),
            missing[0]
        )));
    }
    Ok(model)
}
