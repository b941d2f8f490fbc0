//! Format versions of the records of run and experiment folders.
//!
//! A version is `MAJOR.MINOR`, written as a string (`"1.0"`). A newer minor
//! version only adds fields, which readers of an older one skip; a newer
//! major version changes what existing fields mean, and readers refuse it
//! with a message that names the file and both versions.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::CoreError;

/// A `MAJOR.MINOR` format version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FormatVersion {
    pub major: u32,
    pub minor: u32,
}

impl FormatVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }

    /// Checks that a file of version `self` can be read by a reader of
    /// version `reader`: the same major version (any minor).
    pub fn check_readable(self, reader: FormatVersion, path: &Path) -> Result<(), CoreError> {
        if self.major > reader.major {
            return Err(CoreError::file(
                path,
                format!(
                    "format version {self} is newer than this rxalign reads ({reader}: major version {}); update rxalign",
                    reader.major
                ),
            ));
        }
        if self.major < reader.major {
            return Err(CoreError::file(
                path,
                format!(
                    "format version {self} is older than this rxalign reads ({reader}); rerun with the rxalign that wrote it"
                ),
            ));
        }
        Ok(())
    }
}

impl fmt::Display for FormatVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for FormatVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a format version (MAJOR.MINOR, such as 1.0)");
        let (major, minor) = s.split_once('.').ok_or_else(bad)?;
        Ok(Self {
            major: major.parse().map_err(|_| bad())?,
            minor: minor.parse().map_err(|_| bad())?,
        })
    }
}

impl Serialize for FormatVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FormatVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Just the `format` field of a record, read before the rest.
#[derive(Deserialize)]
struct Probe {
    format: Option<FormatVersion>,
}

/// Reads a versioned JSON record: checks its `format` against `reader`
/// first (so a newer major version is refused with its own message, not a
/// field error), then reads every field it knows; unknown fields (of a
/// newer minor version) are skipped.
pub fn read_versioned<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
    reader: FormatVersion,
) -> Result<T, CoreError> {
    if text.trim().is_empty() {
        return Err(CoreError::file(path, "empty file (a record was expected)"));
    }
    let probe: Probe = crate::jsonl::parse_line(path, 1, text).map_err(|e| match e {
        CoreError::Input { message, .. } => {
            CoreError::file(path, format!("not a complete JSON record: {message}"))
        }
        other => other,
    })?;
    let Some(version) = probe.format else {
        return Err(CoreError::file(
            path,
            format!("no `format` field (this rxalign reads format {reader})"),
        ));
    };
    version.check_readable(reader, path)?;
    crate::jsonl::parse_line(path, 1, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_print_and_parse() {
        let v: FormatVersion = "2.13".parse().unwrap();
        assert_eq!(v, FormatVersion::new(2, 13));
        assert_eq!(v.to_string(), "2.13");
        assert!("2".parse::<FormatVersion>().is_err());
        assert!("a.b".parse::<FormatVersion>().is_err());
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"2.13\"");
    }

    #[test]
    fn newer_minor_reads_newer_major_is_refused() {
        let reader = FormatVersion::new(1, 0);
        let p = Path::new("run.json");
        FormatVersion::new(1, 7).check_readable(reader, p).unwrap();
        let e = FormatVersion::new(2, 0).check_readable(reader, p).unwrap_err();
        assert_eq!(
            e.to_string(),
            "run.json: format version 2.0 is newer than this rxalign reads (1.0: major version 1); update rxalign"
        );
    }
}
