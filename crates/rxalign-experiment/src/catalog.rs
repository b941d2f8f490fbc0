//! The listing of every registered plugin kind (`rxalign plugins`): per slot
//! of the experiment file, each kind with its one line of documentation and
//! its fields, their types, defaults and documentation.
//!
//! It is read from the kinds' [`PluginSchema`]s, the schemas the resolver
//! checks files against: the fields in the order serde reads them, their
//! types, defaults and doc comments from the JSON Schema that `schemars`
//! derives from the same settings type.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::Plugins;
use crate::plugin::{PluginSchema, first_paragraph};

/// The kinds of one slot of the experiment file.
#[derive(Clone, Debug, Serialize)]
pub struct SlotListing {
    /// The slot's name as errors say it (`reward term`).
    pub slot: &'static str,
    /// Where a file names it (`reward: [(kind: ..., ...)]`).
    pub usage: &'static str,
    pub kinds: Vec<KindListing>,
}

/// One plugin kind.
#[derive(Clone, Debug, Serialize)]
pub struct KindListing {
    pub kind: String,
    /// One line saying what it is.
    pub doc: String,
    /// Its parameters, in the order its settings type declares them.
    pub fields: Vec<FieldListing>,
    /// The named types its fields use (a struct's fields, an enum's
    /// variants), each written as a file would write it.
    pub types: BTreeMap<String, String>,
    /// The JSON Schema (draft 2020-12) of its parameters.
    pub schema: Value,
}

/// One parameter of a kind.
#[derive(Clone, Debug, Serialize)]
pub struct FieldListing {
    pub name: String,
    /// Its type in words (`unsigned integer`, `list of string`, a named
    /// type of [`KindListing::types`]).
    #[serde(rename = "type")]
    pub ty: String,
    /// Whether a file must give it.
    pub required: bool,
    /// The value it takes when a file leaves it out; absent when it has
    /// none (a required field, or one whose absence means unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// The first paragraph of its documentation (empty when it has none).
    pub doc: String,
}

impl Plugins {
    /// Every registered kind, per slot, in the order of the experiment
    /// file's fields and of registration.
    pub fn catalog(&self) -> Vec<SlotListing> {
        let slot = |slot, usage, schemas: &[PluginSchema]| SlotListing {
            slot,
            usage,
            kinds: schemas.iter().map(kind_listing).collect(),
        };
        vec![
            slot(self.data.slot(), "data: (kind: ..., ...)", self.data.schemas()),
            slot(
                self.init_list.slot(),
                "init_list: (kind: ..., ...)",
                self.init_list.schemas(),
            ),
            slot(
                self.policy.slot(),
                "policy: (kind: ..., ...)",
                self.policy.schemas(),
            ),
            slot(
                self.reward.slot(),
                "reward: [(kind: ..., weight: ..., ...), ...]",
                self.reward.schemas(),
            ),
            slot(
                self.stage.slot(),
                "stages: [(kind: ..., ...), ...]",
                self.stage.schemas(),
            ),
            slot(
                self.logger.slot(),
                "loggers: [(kind: ..., ...), ...]",
                self.logger.schemas(),
            ),
        ]
    }
}

fn kind_listing(schema: &PluginSchema) -> KindListing {
    let json = schema.json.as_ref();
    let empty = Map::new();
    let defs = json.get("$defs").and_then(Value::as_object).unwrap_or(&empty);
    let properties = json
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let required: Vec<&str> = json
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut types = BTreeMap::new();
    let fields = schema
        .fields
        .iter()
        .map(|&name| {
            let p = properties.get(name).unwrap_or(&Value::Bool(true));
            FieldListing {
                name: name.to_string(),
                ty: type_of(p, defs, &mut types),
                required: required.contains(&name),
                default: p.get("default").map(|d| shortest(p, d)),
                doc: doc_of(p),
            }
        })
        .collect();
    KindListing {
        kind: schema.kind.clone(),
        doc: schema.doc.clone(),
        fields,
        types,
        schema: json.clone(),
    }
}

/// A default as its type writes it: an `f32` (format `float`) widened to
/// `f64` reads `0.05000000074505806`; it is shown as the `f32` it is,
/// `0.05`.
fn shortest(schema: &Value, default: &Value) -> Value {
    let is_f32 = schema.get("format").and_then(Value::as_str) == Some("float");
    match default.as_f64() {
        Some(x) if is_f32 => format!("{}", x as f32)
            .parse::<f64>()
            .map_or_else(|_| default.clone(), Value::from),
        _ => default.clone(),
    }
}

/// A JSON value as an experiment file writes it in RON: objects as
/// `(key: value, ...)`, lists as `[...]`.
pub fn ron_text(v: &Value) -> String {
    match v {
        Value::Object(o) => format!(
            "({})",
            o.iter()
                .map(|(k, v)| format!("{k}: {}", ron_text(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Array(a) => format!("[{}]", a.iter().map(ron_text).collect::<Vec<_>>().join(", ")),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// One line of a schema's documentation: the first paragraph of its
/// description (the doc comment; `schemars` titles a root schema with the
/// type's name, which says nothing more).
pub(crate) fn doc_of(schema: &Value) -> String {
    schema
        .get("description")
        .and_then(Value::as_str)
        .map(first_paragraph)
        .unwrap_or_default()
}

/// A type in words. Named structs and enums are written once into `types`
/// (as `(field: type = default, ...)`, variants joined by `|`) and named
/// here; string enums are written out (`"last" | "validation"`).
fn type_of(s: &Value, defs: &Map<String, Value>, types: &mut BTreeMap<String, String>) -> String {
    let Value::Object(o) = s else {
        return "any".into();
    };
    if let Some(r) = o.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r).to_string();
        let Some(def) = defs.get(&name) else {
            return name;
        };
        if def.get("properties").is_none() && def.get("oneOf").is_none() && def.get("anyOf").is_none() {
            return type_of(def, defs, types);
        }
        if !types.contains_key(&name) {
            // Placeholder first: a recursive type names itself.
            types.insert(name.clone(), String::new());
            let written = match def.get("oneOf").or_else(|| def.get("anyOf")) {
                Some(Value::Array(variants)) => variants
                    .iter()
                    .map(|v| type_of(v, defs, types))
                    .collect::<Vec<_>>()
                    .join(" | "),
                _ => type_of(def, defs, types),
            };
            types.insert(name.clone(), written);
        }
        return name;
    }
    if let Some(c) = o.get("const") {
        return c.to_string();
    }
    if let Some(Value::Array(values)) = o.get("enum") {
        return values
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join(" | ");
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(alts)) = o.get(key) {
            let null = |v: &Value| v.get("type").and_then(Value::as_str) == Some("null");
            let named: Vec<String> = alts
                .iter()
                .filter(|v| !null(v))
                .map(|v| type_of(v, defs, types))
                .collect();
            let named = named.join(" | ");
            return if alts.iter().any(null) {
                format!("optional {named}")
            } else {
                named
            };
        }
    }
    match o.get("type") {
        Some(Value::Array(ts)) => {
            let others: Vec<Value> = ts
                .iter()
                .filter(|t| t.as_str() != Some("null"))
                .cloned()
                .collect();
            let mut one = o.clone();
            one.insert(
                "type".into(),
                if others.len() == 1 {
                    others[0].clone()
                } else {
                    Value::Array(others)
                },
            );
            let inner = type_of(&Value::Object(one), defs, types);
            if ts.iter().any(|t| t.as_str() == Some("null")) {
                format!("optional {inner}")
            } else {
                inner
            }
        }
        Some(Value::String(t)) => match t.as_str() {
            "integer" => {
                let unsigned = o
                    .get("format")
                    .and_then(Value::as_str)
                    .is_some_and(|f| f.starts_with("uint"))
                    || o.get("minimum").and_then(Value::as_f64) == Some(0.0);
                if unsigned { "unsigned integer" } else { "integer" }.into()
            }
            "boolean" => "bool".into(),
            "array" => match o.get("items") {
                Some(items) => format!("list of {}", type_of(items, defs, types)),
                None => "list".into(),
            },
            "object" => match o.get("properties").and_then(Value::as_object) {
                Some(props) => {
                    let required: Vec<&str> = o
                        .get("required")
                        .and_then(Value::as_array)
                        .map(|r| r.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    let fields: Vec<String> = props
                        .iter()
                        .map(|(k, v)| {
                            let ty = type_of(v, defs, types);
                            match v.get("default") {
                                Some(d) => format!("{k}: {ty} = {}", ron_text(&shortest(v, d))),
                                None if required.contains(&k.as_str()) => format!("{k}: {ty}"),
                                None => format!("{k}: {ty}, optional"),
                            }
                        })
                        .collect();
                    format!("({})", fields.join(", "))
                }
                None => match o.get("additionalProperties") {
                    Some(v @ Value::Object(_)) => format!("map of string to {}", type_of(v, defs, types)),
                    _ => "map".into(),
                },
            },
            "null" => "nothing".into(),
            other => other.into(),
        },
        _ => "any".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_lists_fields_with_types_defaults_and_docs() {
        let catalog = Plugins::builtin().catalog();
        let kind = |slot: &str, kind: &str| -> KindListing {
            catalog
                .iter()
                .find(|s| s.slot == slot)
                .and_then(|s| s.kinds.iter().find(|k| k.kind == kind))
                .cloned()
                .unwrap_or_else(|| panic!("{slot} {kind} listed"))
        };
        let sft = kind("stage", "sft");
        let epochs = sft.fields.iter().find(|f| f.name == "epochs").unwrap();
        assert_eq!(epochs.ty, "unsigned integer");
        assert!(!epochs.required);
        assert_eq!(
            epochs.default,
            Some(Value::from(rxalign_train::sft::SftSettings::default().epochs))
        );
        let lr = sft.fields.iter().find(|f| f.name == "lr").unwrap();
        assert_eq!(lr.ty, "number");
        let batch = sft.fields.iter().find(|f| f.name == "batch_size").unwrap();
        assert_eq!(batch.doc, "Decisions (not visits) per batch.");
        // Every field serde reads is listed, in its order.
        let serde_fields: Vec<&str> = Plugins::builtin()
            .stage
            .schemas()
            .iter()
            .find(|s| s.kind == "sft")
            .unwrap()
            .fields
            .clone();
        assert_eq!(
            sft.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            serde_fields
        );
        // A required field has no default; a reward term's one line is its
        // potential's definition.
        let jaccard = kind("reward term", "jaccard");
        assert_eq!(jaccard.fields.len(), 1);
        assert!(jaccard.fields[0].required && jaccard.fields[0].default.is_none());
        assert!(jaccard.doc.starts_with("φ = "), "{}", jaccard.doc);
        // Nested types are written out once.
        let lamo = kind("stage", "lamo");
        let model = lamo.fields.iter().find(|f| f.name == "model").unwrap();
        assert_eq!(model.ty, "LamoModel");
        assert!(
            lamo.types["LamoModel"].contains("kind: \"pretrained\""),
            "{:?}",
            lamo.types
        );
        // Every kind says what it is.
        for slot in &catalog {
            for k in &slot.kinds {
                assert!(
                    !k.doc.is_empty(),
                    "{} `{}` has no documentation",
                    slot.slot,
                    k.kind
                );
            }
        }
    }
}
