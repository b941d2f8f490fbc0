//! Reading MIMIC tables: `.csv` or `.csv.gz`, headers in upper case (the
//! full database) or lower case (the public demo), streamed row by row.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use rxalign_core::CoreError;

use crate::DataError;
use crate::time::VisitTime;

/// An open table: its path, its lower-cased header, and a streaming reader.
pub(crate) struct Table {
    pub path: PathBuf,
    header: Vec<String>,
    reader: csv::Reader<Box<dyn Read>>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("path", &self.path)
            .field("header", &self.header)
            .finish()
    }
}

/// Where a table named `name` (for example `PRESCRIPTIONS`) lies in `dir`:
/// `NAME.csv`, `NAME.csv.gz`, `name.csv` or `name.csv.gz`.
pub(crate) fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    [name.to_uppercase(), name.to_lowercase()]
        .iter()
        .flat_map(|n| [format!("{n}.csv"), format!("{n}.csv.gz")])
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
}

impl Table {
    /// Opens a table that must exist.
    pub fn open(dir: &Path, name: &str) -> Result<Self, DataError> {
        let path = find(dir, name).ok_or_else(|| {
            CoreError::file(
                dir,
                format!("missing table {name} (looked for {name}.csv, {name}.csv.gz and lower-case names)"),
            )
        })?;
        Self::open_path(&path)
    }

    /// Opens a table at a path (gzip when it ends in `.gz`).
    pub fn open_path(path: &Path) -> Result<Self, DataError> {
        let file = File::open(path).map_err(|e| CoreError::io(path, e))?;
        let raw: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
                1 << 20,
                file,
            )))
        } else {
            Box::new(file)
        };
        let mut reader = csv::ReaderBuilder::new()
            .buffer_capacity(1 << 20)
            .from_reader(raw);
        let header = reader
            .byte_headers()
            .map_err(|e| csv_error(path, &e))?
            .iter()
            .enumerate()
            .map(|(i, h)| {
                // A UTF-8 byte-order mark some editors write is not part of
                // the first column's name.
                let h = if i == 0 {
                    h.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(h)
                } else {
                    h
                };
                std::str::from_utf8(h)
                    .map(|h| h.trim().to_lowercase())
                    .map_err(|_| {
                        DataError::from(CoreError::input(
                            path,
                            1,
                            "header",
                            format!(
                                "column {} of the header is not UTF-8 text; save the file as UTF-8",
                                i + 1
                            ),
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            path: path.to_path_buf(),
            header,
            reader,
        })
    }

    /// The index of a column (case-insensitive); an error names the file,
    /// the column and the columns it has.
    pub fn column(&self, name: &str) -> Result<usize, DataError> {
        self.header.iter().position(|h| h == name).ok_or_else(|| {
            CoreError::input(
                &self.path,
                1,
                name,
                format!(
                    "missing column `{name}`; the header has: {}",
                    self.header.join(", ")
                ),
            )
            .into()
        })
    }

    /// Whether the first column's header passes `test` (a header that looks
    /// like data: the file has no header line).
    pub fn header_looks_like(&self, test: impl Fn(&str) -> bool) -> bool {
        self.header.first().is_some_and(|h| test(h))
    }

    /// The index of a column if the table has it.
    pub fn optional_column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// Calls `f(line, record)` for each row; a malformed row is an error
    /// naming its line, and `f` may fail with a row error of its own.
    pub fn for_each(
        &mut self,
        mut f: impl FnMut(usize, &csv::ByteRecord) -> Result<(), RowError>,
    ) -> Result<u64, DataError> {
        let mut record = csv::ByteRecord::new();
        let mut rows = 0u64;
        loop {
            match self.reader.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => return Ok(rows),
                Err(e) => return Err(csv_error(&self.path, &e)),
            }
            rows += 1;
            let line = record.position().map_or(0, |p| p.line() as usize);
            f(line, &record).map_err(|e| {
                DataError::from(CoreError::input(
                    &self.path,
                    line,
                    self.header
                        .get(e.column)
                        .map_or_else(|| format!("column {}", e.column + 1), Clone::clone),
                    e.message,
                ))
            })?;
        }
    }
}

/// A problem with one field of a row.
#[derive(Debug)]
pub(crate) struct RowError {
    pub column: usize,
    pub message: String,
}

/// The trimmed text of a field.
pub(crate) fn text(record: &csv::ByteRecord, column: usize) -> Result<&str, RowError> {
    let bytes = record.get(column).unwrap_or_default();
    std::str::from_utf8(bytes).map(str::trim).map_err(|e| RowError {
        column,
        message: format!(
            "byte {} of the field (0x{:02X}) is not UTF-8; save the file as UTF-8",
            e.valid_up_to() + 1,
            bytes[e.valid_up_to()]
        ),
    })
}

/// A date or date-time (see [`crate::time`]); `None` when the field is
/// empty, an error naming the column when it is not a real date or time.
pub(crate) fn time(record: &csv::ByteRecord, column: usize) -> Result<Option<VisitTime>, RowError> {
    let t = text(record, column)?;
    if t.is_empty() {
        return Ok(None);
    }
    VisitTime::parse(t)
        .map(Some)
        .map_err(|message| RowError { column, message })
}

/// A non-negative integer id; `None` when the field is empty.
pub(crate) fn id(record: &csv::ByteRecord, column: usize) -> Result<Option<u64>, RowError> {
    let bytes = trim(record.get(column).unwrap_or_default());
    if bytes.is_empty() {
        return Ok(None);
    }
    // MIMIC-IV exports some ids as floats ("12345.0").
    let digits = bytes.strip_suffix(b".0").unwrap_or(bytes);
    let mut value = 0u64;
    for &b in digits {
        if !b.is_ascii_digit() {
            return Err(RowError {
                column,
                message: format!("`{}` is not an id", String::from_utf8_lossy(bytes)),
            });
        }
        value = value * 10 + u64::from(b - b'0');
    }
    Ok(Some(value))
}

/// The field as a required id.
pub(crate) fn required_id(record: &csv::ByteRecord, column: usize) -> Result<u64, RowError> {
    id(record, column)?.ok_or(RowError {
        column,
        message: "empty id".into(),
    })
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if first.is_ascii_whitespace() {
            b = rest
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if last.is_ascii_whitespace() {
            b = rest
        } else {
            break;
        }
    }
    b
}

fn csv_error(path: &Path, e: &csv::Error) -> DataError {
    let line = e.position().map_or(0, |p| p.line() as usize);
    CoreError::input(path, line, "(row)", e.to_string()).into()
}
