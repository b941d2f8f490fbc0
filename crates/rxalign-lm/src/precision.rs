//! How a model's weight matrices are stored: `f32`, or the checkpoint's
//! half precision (`bf16`, `f16`) kept as it is, 2 bytes a value.
//!
//! Only the matrices (the seven projections of every layer, the embedding
//! and an untied output head) take the setting; norms and biases stay f32,
//! and so do LoRA adapters and Adam's state (they train). Every forward pass
//! computes in f32: a half-precision matrix is cast to f32 where it is used
//! (one matrix at a time, freed after its product), so activations,
//! log-probabilities and gradients are f32 whatever the setting. What it
//! saves is the memory of the frozen weights; it does not use half-precision
//! arithmetic (tensor cores).

use burn::tensor::DType;
use burn::tensor::backend::{Backend, DTypeUsage};
use serde::{Deserialize, Serialize};

/// The storage of a model's weight matrices (`precision:` of the `llama`
/// policy), written as a string (`"f32"`, `"bf16"`, `"f16"`) in JSON and
/// RON alike.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub enum Precision {
    /// 4 bytes a value (a half-precision checkpoint is widened when loaded).
    #[default]
    F32,
    /// bfloat16, 2 bytes a value.
    Bf16,
    /// IEEE half, 2 bytes a value.
    F16,
}

impl Precision {
    /// The dtype of the stored matrices.
    pub fn dtype(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::Bf16 => DType::BF16,
            Self::F16 => DType::F16,
        }
    }

    /// Bytes of one stored value.
    pub fn bytes(self) -> u128 {
        match self {
            Self::F32 => 4,
            Self::Bf16 | Self::F16 => 2,
        }
    }

    /// Whether `B` on `device` can store this precision and convert it to
    /// f32 (what a forward pass needs of it).
    pub fn supported_by<B: Backend>(self, device: &B::Device) -> bool {
        B::dtype_usage(device, self.dtype()).contains(DTypeUsage::Storage)
    }
}

impl TryFrom<String> for Precision {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "f32" => Ok(Self::F32),
            "bf16" => Ok(Self::Bf16),
            "f16" => Ok(Self::F16),
            other => Err(format!("unknown precision `{other}`; known: f32, bf16, f16")),
        }
    }
}

impl From<Precision> for String {
    fn from(p: Precision) -> String {
        p.to_string()
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
            Self::F16 => "f16",
        })
    }
}

/// `t` in `dtype`: unchanged when it is already (no copy), cast otherwise.
pub fn cast_to<B: Backend, const D: usize>(
    t: burn::tensor::Tensor<B, D>,
    dtype: DType,
) -> burn::tensor::Tensor<B, D> {
    if t.dtype() == dtype { t } else { t.cast(dtype) }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::backend::flex::FlexDevice;

    use super::*;

    #[test]
    fn settings_read_as_written_and_flex_stores_each() {
        for (text, p) in [
            ("\"f32\"", Precision::F32),
            ("\"bf16\"", Precision::Bf16),
            ("\"f16\"", Precision::F16),
        ] {
            assert_eq!(serde_json::from_str::<Precision>(text).unwrap(), p);
            assert_eq!(format!("\"{p}\""), text);
            assert!(p.supported_by::<Flex>(&FlexDevice), "{p}");
        }
        assert!(serde_json::from_str::<Precision>("\"fp8\"").is_err());
        assert_eq!(Precision::Bf16.bytes(), 2);
        assert_eq!(Precision::default(), Precision::F32);
    }
}
