//! Plugin specifications in experiment files: `(kind: "ddi_rate", weight: 0.2)`.
//!
//! A specification is read against the registry of its plugin kind while
//! the file is parsed, so that an unknown kind, a misspelt field or a value
//! of the wrong type is an error at the line and column where it stands.
//! `kind` comes first in a specification.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The parameters a plugin kind takes: its fields, a typed check of each
/// field and of the whole, and the JSON Schema that `rxalign plugins` lists.
///
/// All three come from the one settings type `T` of [`PluginSchema::of`]:
/// the fields and the check from its serde implementation (what reads the
/// file), the JSON Schema from `schemars`, which reads the same serde
/// attributes (`default`, `deny_unknown_fields`, renames) and the doc
/// comments; no list of fields is written twice.
#[derive(Clone)]
pub struct PluginSchema {
    /// The kind's name, as files write it.
    pub kind: String,
    /// Its parameters' names, in the order serde reads them.
    pub fields: Vec<&'static str>,
    /// The JSON Schema (draft 2020-12) of the parameters: each field's type,
    /// default and documentation.
    pub json: Arc<serde_json::Value>,
    /// One line saying what the kind is: the settings type's documentation
    /// unless the registration says otherwise ([`PluginSchema::with_doc`]).
    pub doc: String,
    check: Arc<dyn Fn(ron::Map) -> Result<(), String> + Send + Sync>,
}

impl fmt::Debug for PluginSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginSchema")
            .field("kind", &self.kind)
            .field("fields", &self.fields)
            .field("doc", &self.doc)
            .finish()
    }
}

/// The first paragraph of a documentation text, on one line.
pub(crate) fn first_paragraph(doc: &str) -> String {
    doc.trim()
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

impl PluginSchema {
    /// The schema of a kind whose parameters deserialise into `T` (a plain
    /// serde struct with `deny_unknown_fields`, deriving
    /// `schemars::JsonSchema` for its documentation).
    pub fn of<T: DeserializeOwned + schemars::JsonSchema + 'static>(kind: &str) -> Self {
        let json = schemars::schema_for!(T).to_value();
        let doc = crate::catalog::doc_of(&json);
        Self {
            kind: kind.to_string(),
            fields: field_names::<T>(),
            json: Arc::new(json),
            doc,
            check: Arc::new(|map| {
                ron::Value::Map(map)
                    .into_rust::<T>()
                    .map(drop)
                    .map_err(|e| e.to_string())
            }),
        }
    }

    /// The same schema with `doc` as its one line of documentation.
    #[must_use]
    pub fn with_doc(mut self, doc: &str) -> Self {
        self.doc = first_paragraph(doc);
        self
    }

    /// Checks one field; returns its value as it is kept: an optional
    /// field's plain value (`name: "sft_long"`) as `Some(...)`, as RON
    /// reads it in a file.
    fn check_field(&self, key: &str, value: &ron::Value) -> Result<ron::Value, String> {
        if let Some(x) = non_finite(value) {
            return Err(format!(
                "field `{key}` of `{}`: {x} is not a finite number, which no setting takes",
                self.kind
            ));
        }
        let check = |value: &ron::Value| {
            let mut map = ron::Map::new();
            map.insert(ron::Value::String(key.to_string()), value.clone());
            (self.check)(map)
        };
        let (value, result) = match check(value) {
            Err(e) if e.contains("Expected option") && !matches!(value, ron::Value::Option(_)) => {
                let some = ron::Value::Option(Some(Box::new(value.clone())));
                match check(&some) {
                    Err(e2) if !e2.contains("missing field") => (value.clone(), Err(e2)),
                    _ => (some, Ok(())),
                }
            }
            result => (value.clone(), result),
        };
        match result {
            Err(e) if !e.contains("missing field") => Err(format!("field `{key}` of `{}`: {e}", self.kind)),
            _ => Ok(value),
        }
    }

    fn check_all(&self, map: &ron::Map) -> Result<(), String> {
        (self.check)(map.clone()).map_err(|e| format!("`{}`: {e}", self.kind))
    }
}

/// The first float in `value` that is NaN or infinite, if any.
fn non_finite(value: &ron::Value) -> Option<f64> {
    match value {
        ron::Value::Number(n) => Some(n.into_f64()).filter(|x| !x.is_finite()),
        ron::Value::Seq(items) => items.iter().find_map(non_finite),
        ron::Value::Map(map) => map
            .iter()
            .find_map(|(k, v)| non_finite(k).or_else(|| non_finite(v))),
        ron::Value::Option(Some(v)) => non_finite(v),
        _ => None,
    }
}

/// The names of a struct's fields, as serde sees them.
fn field_names<T: DeserializeOwned>() -> Vec<&'static str> {
    struct Probe<'a>(&'a mut Vec<&'static str>);
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("probe"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.extend_from_slice(fields);
            Err(de::Error::custom("probe"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields = Vec::new();
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

/// The schemas of every plugin kind, one list per slot.
#[derive(Clone, Debug, Default)]
pub struct Schemas {
    /// Each slot's kinds, by the slot's name ([`Slot::NAME`]).
    pub slots: BTreeMap<&'static str, Vec<PluginSchema>>,
}

thread_local! {
    static SCHEMAS: RefCell<Option<Arc<Schemas>>> = const { RefCell::new(None) };
}

/// Runs `f` with `schemas` as the context of every [`PluginSpec`] read.
pub(crate) fn with_schemas<R>(schemas: Arc<Schemas>, f: impl FnOnce() -> R) -> R {
    SCHEMAS.with(|s| *s.borrow_mut() = Some(schemas));
    let out = f();
    SCHEMAS.with(|s| *s.borrow_mut() = None);
    out
}

/// A plugin slot of the experiment file.
pub trait Slot {
    /// The slot's name (`reward term`, `stage`, ...), as errors say it.
    const NAME: &'static str;
}

macro_rules! slot {
    ($ty:ident, $name:literal) => {
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub struct $ty;
        impl Slot for $ty {
            const NAME: &'static str = $name;
        }
    };
}
slot!(DataSlot, "dataset source");
slot!(StartSlot, "start list");
slot!(PolicySlot, "policy");
slot!(RewardSlot, "reward term");
slot!(StageSlot, "stage");
slot!(LoggerSlot, "logger");

/// A plugin named by `kind`, with its parameters.
pub struct PluginSpec<S> {
    /// The plugin's kind.
    pub kind: String,
    /// Its parameters as the file gives them (checked against the kind's
    /// schema when the file is read).
    pub params: ron::Map,
    slot: PhantomData<S>,
}

impl<S> Clone for PluginSpec<S> {
    fn clone(&self) -> Self {
        Self {
            kind: self.kind.clone(),
            params: self.params.clone(),
            slot: PhantomData,
        }
    }
}

impl<S> fmt::Debug for PluginSpec<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginSpec")
            .field("kind", &self.kind)
            .field("params", &self.params)
            .finish()
    }
}

impl<S> PartialEq for PluginSpec<S> {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.params == other.params
    }
}

impl<S> PluginSpec<S> {
    /// A specification of `kind` without parameters.
    pub fn new(kind: &str) -> Self {
        Self {
            kind: kind.to_string(),
            params: ron::Map::new(),
            slot: PhantomData,
        }
    }

    /// A parameter, if given.
    pub fn param(&self, key: &str) -> Option<&ron::Value> {
        self.params.get(&ron::Value::String(key.to_string()))
    }

    /// The parameters as JSON, what the builders take.
    pub fn params_json(&self) -> serde_json::Value {
        let map = self
            .params
            .iter()
            .filter_map(|(k, v)| match k {
                ron::Value::String(k) => Some((
                    k.clone(),
                    serde_json::to_value(v).unwrap_or(serde_json::Value::Null),
                )),
                _ => None,
            })
            .collect();
        serde_json::Value::Object(map)
    }
}

/// Field names as `&'static str`, which serde's struct serialisation
/// needs: each distinct name is kept once for the life of the process.
fn static_name(name: &str) -> &'static str {
    static NAMES: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<&'static str>>> =
        std::sync::OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .expect("the name set is never poisoned");
    if let Some(n) = names.get(name) {
        return n;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}

/// Written as a RON struct, `(kind: "ddi_rate", weight: 0.2)`, so that a
/// resolved file reads like the file it came from.
impl<S> Serialize for PluginSpec<S> {
    fn serialize<Se: Serializer>(&self, serializer: Se) -> Result<Se::Ok, Se::Error> {
        let mut m = serializer.serialize_struct("Plugin", self.params.len() + 1)?;
        m.serialize_field("kind", &self.kind)?;
        for (k, v) in self.params.iter() {
            let key = match k {
                ron::Value::String(s) => static_name(s),
                _ => {
                    return Err(serde::ser::Error::custom(
                        "plugin parameters are named by identifiers",
                    ));
                }
            };
            m.serialize_field(key, v)?;
        }
        m.end()
    }
}

impl<'de, S: Slot> Deserialize<'de> for PluginSpec<S> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `any`: a struct `(kind: ...)` in files, a map in value trees.
        deserializer.deserialize_any(SpecVisitor::<S>(PhantomData))
    }
}

struct SpecVisitor<S>(PhantomData<S>);

impl<'de, S: Slot> Visitor<'de> for SpecVisitor<S> {
    type Value = PluginSpec<S>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} as (kind: \"...\", ...)", S::NAME)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let schemas = SCHEMAS.with(|s| s.borrow().clone());
        // Entries before `kind` wait until it is known (value trees order
        // keys alphabetically); in files `kind` comes first, so each entry
        // is checked where it stands.
        let mut kind: Option<(String, Option<PluginSchema>)> = None;
        let mut waiting: Vec<(String, ron::Value)> = Vec::new();
        let mut params = ron::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "kind" {
                let name: String = map.next_value()?;
                let schema = find_schema::<S>(schemas.as_deref(), &name).map_err(de::Error::custom)?;
                for (k, v) in waiting.drain(..) {
                    let v = check_entry::<S>(&name, schema.as_ref(), &k, v).map_err(de::Error::custom)?;
                    params.insert(ron::Value::String(k), v);
                }
                kind = Some((name, schema));
                continue;
            }
            let value: ron::Value = map.next_value()?;
            match &kind {
                Some((name, schema)) => {
                    let value =
                        check_entry::<S>(name, schema.as_ref(), &key, value).map_err(de::Error::custom)?;
                    params.insert(ron::Value::String(key), value);
                }
                None => waiting.push((key, value)),
            }
        }
        let Some((kind, schema)) = kind else {
            return Err(de::Error::custom(format!("a {} needs its `kind`", S::NAME)));
        };
        if let Some(schema) = &schema {
            schema.check_all(&params).map_err(de::Error::custom)?;
        }
        Ok(PluginSpec {
            kind,
            params,
            slot: PhantomData,
        })
    }
}

/// The schema of `kind` in slot `S`; `None` when no schemas are in context.
fn find_schema<S: Slot>(schemas: Option<&Schemas>, kind: &str) -> Result<Option<PluginSchema>, String> {
    let Some(s) = schemas else { return Ok(None) };
    let known = s.slots.get(S::NAME).map(Vec::as_slice).unwrap_or_default();
    match known.iter().find(|p| p.kind == kind) {
        Some(p) => Ok(Some(p.clone())),
        None => {
            let names: Vec<&str> = known.iter().map(|p| p.kind.as_str()).collect();
            Err(format!(
                "unknown {} kind `{kind}`{}; known kinds: {}",
                S::NAME,
                rxalign_core::suggest::did_you_mean(kind, names.iter().copied()),
                if names.is_empty() {
                    "(none registered yet)".to_string()
                } else {
                    names.join(", ")
                }
            ))
        }
    }
}

/// Checks one parameter against the kind's schema; returns its value as
/// kept (see [`PluginSchema::check_field`]).
fn check_entry<S: Slot>(
    kind: &str,
    schema: Option<&PluginSchema>,
    key: &str,
    value: ron::Value,
) -> Result<ron::Value, String> {
    let Some(schema) = schema else { return Ok(value) };
    if !schema.fields.contains(&key) {
        return Err(format!(
            "unknown field `{key}` of {} `{kind}`{}; known fields: {}",
            S::NAME,
            rxalign_core::suggest::did_you_mean(key, schema.fields.iter().copied()),
            schema.fields.join(", ")
        ));
    }
    schema.check_field(key, &value)
}
