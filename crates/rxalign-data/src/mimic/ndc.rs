//! National Drug Codes and the maps from them to a drug coding.

use std::collections::HashMap;
use std::path::Path;

use rxalign_core::CoreError;

use super::table::{Table, text};
use crate::DataError;

/// An NDC as a number: NDCs are compared as 11-digit strings with leading
/// zeros, which is the same as comparing their values. `None` for an empty
/// field, `0` (MIMIC's "no NDC"), or anything that is not 1 to 11 digits.
pub fn parse_ndc(bytes: &[u8]) -> Option<u64> {
    let b = bytes.strip_suffix(b".0").unwrap_or(bytes);
    if b.is_empty() || b.len() > 11 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = b.iter().fold(0u64, |v, &d| v * 10 + u64::from(d - b'0'));
    (value != 0).then_some(value)
}

/// An NDC as the 11-digit string with leading zeros.
pub fn format_ndc(ndc: u64) -> String {
    format!("{ndc:011}")
}

/// A map from NDC to a drug code (ATC level 3, DrugBank id, ...).
#[derive(Clone, Debug, Default)]
pub struct NdcMap {
    /// Drug codes in order of first appearance.
    pub codes: Vec<String>,
    /// Optional names from a third column.
    pub names: HashMap<String, String>,
    map: HashMap<u64, u32>,
}

impl NdcMap {
    /// Reads a CSV whose first column is the NDC and second the drug code,
    /// with a header row (for example `ndc11,atc3`); a third column, when
    /// present, names the drug.
    pub fn load(path: &Path) -> Result<Self, DataError> {
        let mut table = Table::open_path(path)?;
        if table.header_looks_like(|h| parse_ndc(h.as_bytes()).is_some()) {
            return Err(CoreError::input(
                path,
                1,
                "header",
                "the first line holds an NDC, not column names: the NDC map needs a header line (for example `ndc11,atc3`), or its first row would be lost",
            )
            .into());
        }
        let mut out = Self::default();
        let mut index: HashMap<String, u32> = HashMap::new();
        table.for_each(|_, r| {
            let Some(ndc) = r.get(0).and_then(parse_ndc) else {
                return Err(super::table::RowError {
                    column: 0,
                    message: format!(
                        "`{}` is not an NDC of 1 to 11 digits",
                        String::from_utf8_lossy(r.get(0).unwrap_or_default())
                    ),
                });
            };
            let code = text(r, 1)?;
            if code.is_empty() {
                return Err(super::table::RowError {
                    column: 1,
                    message: "empty drug code".into(),
                });
            }
            let next = index.len() as u32;
            let i = *index.entry(code.to_string()).or_insert_with(|| {
                out.codes.push(code.to_string());
                next
            });
            if r.len() > 2 {
                let name = text(r, 2)?;
                if !name.is_empty() {
                    out.names
                        .entry(code.to_string())
                        .or_insert_with(|| name.to_string());
                }
            }
            out.map.insert(ndc, i);
            Ok(())
        })?;
        if out.map.is_empty() {
            return Err(CoreError::file(path, "the NDC map has no rows").into());
        }
        Ok(out)
    }

    /// The drug code index of an NDC.
    pub fn get(&self, ndc: u64) -> Option<u32> {
        self.map.get(&ndc).copied()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndcs_compare_as_eleven_digit_strings() {
        assert_eq!(parse_ndc(b"00006494300"), Some(6_494_300));
        assert_eq!(parse_ndc(b"6494300"), Some(6_494_300));
        assert_eq!(parse_ndc(b"6494300.0"), Some(6_494_300));
        assert_eq!(parse_ndc(b"0"), None);
        assert_eq!(parse_ndc(b""), None);
        assert_eq!(parse_ndc(b"0006-4943-00"), None);
        assert_eq!(parse_ndc(b"123456789012"), None);
        assert_eq!(format_ndc(6_494_300), "00006494300");
    }
}
