//! Reading JSON lines with errors that name the file, line and field.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::CoreError;

/// Parses one JSON line; an error names `path`, the 1-based `line` and the
/// field at fault (a path such as `scores.C09AA03` for nested fields).
pub fn parse_line<T: DeserializeOwned>(path: &Path, line: usize, text: &str) -> Result<T, CoreError> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let inner = e.inner().to_string();
        let at = e.path().to_string();
        let field = if at == "." || at.is_empty() {
            field_named_in(&inner).unwrap_or_else(|| "(line)".to_string())
        } else {
            at
        };
        CoreError::input(path, line, field, inner)
    })
}

/// The field a serde message names (`missing field `x``, `unknown field `x``).
fn field_named_in(message: &str) -> Option<String> {
    ["missing field `", "unknown field `", "duplicate field `"]
        .iter()
        .find_map(|marker| message.split(marker).nth(1))
        .and_then(|rest| rest.split('`').next())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "fields exist to be parsed")]
    struct Row {
        id: String,
        age: Option<f32>,
    }

    #[test]
    fn errors_name_the_field() {
        let p = Path::new("visits.jsonl");
        let e = parse_line::<Row>(p, 4, r#"{"id": "a", "age": "old"}"#).unwrap_err();
        assert!(e.to_string().starts_with("visits.jsonl:4: field `age`"), "{e}");
        let e = parse_line::<Row>(p, 5, r#"{"age": 3}"#).unwrap_err();
        assert!(e.to_string().contains("field `id`"), "{e}");
        let e = parse_line::<Row>(p, 6, r#"{"id": "a", "agee": 3}"#).unwrap_err();
        assert!(e.to_string().contains("field `agee`"), "{e}");
    }
}
