//! Reading text files and JSON lines with errors that name the file, line
//! and field.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::CoreError;

/// The UTF-8 byte-order mark some editors put at the start of a file.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads a text file as UTF-8 (see [`decode_text`]).
pub fn read_text(path: &Path) -> Result<String, CoreError> {
    let bytes = std::fs::read(path).map_err(|e| CoreError::io(path, e))?;
    decode_text(path, bytes)
}

/// The bytes of the file at `path` as UTF-8 text. A leading UTF-8
/// byte-order mark is dropped; a UTF-16 or UTF-32 byte-order mark, and bytes
/// that are not UTF-8, are errors naming the line and the byte column.
pub fn decode_text(path: &Path, mut bytes: Vec<u8>) -> Result<String, CoreError> {
    if bytes.starts_with(UTF8_BOM) {
        bytes.drain(..UTF8_BOM.len());
    }
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") || bytes.starts_with(b"\0\0\xFE\xFF")
    {
        return Err(CoreError::input(
            path,
            1,
            "(encoding)",
            "the file is UTF-16 or UTF-32 (it starts with such a byte-order mark); save it as UTF-8",
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let (line, column) = line_and_column(bytes, at);
        CoreError::input(
            path,
            line,
            "(encoding)",
            format!(
                "byte {column} of the line (0x{:02X}) is not UTF-8; save the file as UTF-8",
                bytes[at]
            ),
        )
    })
}

/// The 1-based line and byte column of the byte at `offset`.
pub fn line_and_column(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, column)
}

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
    fn a_utf8_mark_is_dropped_and_other_encodings_are_named() {
        let p = Path::new("v.jsonl");
        assert_eq!(decode_text(p, b"\xEF\xBB\xBFab\n".to_vec()).unwrap(), "ab\n");
        let e = decode_text(p, b"ok\nfine\nbad \xE9t\xE9\n".to_vec()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("v.jsonl:3: field `(encoding)`: byte 5 of the line (0xE9)"),
            "{e}"
        );
        let e = decode_text(p, b"\xFF\xFEa\0".to_vec()).unwrap_err();
        assert!(e.to_string().contains("UTF-16"), "{e}");
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
