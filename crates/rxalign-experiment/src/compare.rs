//! Comparing the runs of an experiment: final test metrics per group and
//! method, mean and standard deviation over seeds.

use std::collections::BTreeMap;
use std::path::Path;

use rxalign_core::run::RunFolder;

use crate::ExperimentError;
use crate::ablation::ResolvedRun;

/// The metrics a comparison shows, in order.
pub const COLUMNS: [&str; 8] = [
    "jaccard",
    "f1",
    "prauc",
    "ddi_rate",
    "ddi_rate_pooled",
    "med_count",
    "gt_med_count",
    "overprescription_ratio",
];

/// A finished run as read back from its folder.
#[derive(Debug)]
pub struct FinishedRun {
    pub resolved: ResolvedRun,
    pub folder: RunFolder,
    pub summary: rxalign_core::run::Summary,
    /// Methods in the order the run evaluated them.
    pub methods: Vec<String>,
}

/// The finished runs under an experiment's folder, in name order; folders
/// without a summary (unfinished runs) are counted, not read.
pub fn finished_runs(dir: &Path) -> Result<(Vec<FinishedRun>, usize), ExperimentError> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| rxalign_core::CoreError::io(dir, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.path())
        .collect();
    names.sort();
    let (mut runs, mut unfinished) = (Vec::new(), 0);
    for path in names {
        let Ok(folder) = RunFolder::open(&path) else {
            continue;
        };
        if !folder.is_finished() {
            unfinished += 1;
            continue;
        }
        let text = folder.read_resolved()?;
        let resolved: ResolvedRun = ron::from_str(&text).map_err(|e| ExperimentError::File {
            path: folder.path(rxalign_core::run::RESOLVED),
            line: e.position.line,
            column: e.position.col,
            message: e.code.to_string(),
        })?;
        let summary = folder.read_summary()?;
        let mut methods: Vec<String> = Vec::new();
        for record in folder.read_metrics()? {
            if !methods.contains(&record.method) {
                methods.push(record.method);
            }
        }
        methods.extend(
            summary
                .keys()
                .filter(|m| !methods.contains(m))
                .cloned()
                .collect::<Vec<_>>(),
        );
        runs.push(FinishedRun {
            resolved,
            folder,
            summary,
            methods,
        });
    }
    Ok((runs, unfinished))
}

/// Mean and sample standard deviation of a metric over the seeds of a group.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

/// Rows `(group, method)` with a cell per column (`None` when undefined).
#[derive(Debug)]
pub struct Comparison {
    pub rows: Vec<(String, String, Vec<Option<Cell>>)>,
    pub seeds: BTreeMap<String, Vec<u64>>,
}

pub fn compare(runs: &[FinishedRun]) -> Comparison {
    let mut values: BTreeMap<(String, String), Vec<Vec<Option<f64>>>> = BTreeMap::new();
    let mut order: Vec<(String, String)> = Vec::new();
    let mut seeds: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for run in runs {
        seeds
            .entry(run.resolved.group.clone())
            .or_default()
            .push(run.resolved.seed);
        for method in &run.methods {
            let Some(metrics) = run.summary.get(method) else {
                continue;
            };
            let key = (run.resolved.group.clone(), method.clone());
            if !values.contains_key(&key) {
                order.push(key.clone());
            }
            let row = COLUMNS
                .iter()
                .map(|c| metrics.get(*c).and_then(serde_json::Value::as_f64))
                .collect();
            values.entry(key).or_default().push(row);
        }
    }
    let rows = order
        .into_iter()
        .map(|key| {
            let samples = &values[&key];
            let cells = (0..COLUMNS.len())
                .map(|c| {
                    let xs: Vec<f64> = samples.iter().filter_map(|r| r[c]).collect();
                    (!xs.is_empty()).then(|| {
                        let n = xs.len();
                        let mean = xs.iter().sum::<f64>() / n as f64;
                        let var = if n > 1 {
                            xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
                        } else {
                            0.0
                        };
                        Cell {
                            mean,
                            std: var.sqrt(),
                            n,
                        }
                    })
                })
                .collect();
            (key.0, key.1, cells)
        })
        .collect();
    Comparison { rows, seeds }
}

/// How to print a comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Csv,
}

impl Comparison {
    pub fn render(&self, format: Format) -> String {
        let cell = |c: &Option<Cell>| match c {
            Some(c) if c.n > 1 => format!("{:.4} ± {:.4}", c.mean, c.std),
            Some(c) => format!("{:.4}", c.mean),
            None => "n/a".into(),
        };
        let n = |group: &str| self.seeds.get(group).map_or(0, Vec::len);
        match format {
            Format::Csv => {
                let mut out = String::from("group,method,seeds");
                for c in COLUMNS {
                    out.push_str(&format!(",{c}_mean,{c}_std"));
                }
                out.push('\n');
                for (g, m, cells) in &self.rows {
                    out.push_str(&format!("\"{g}\",\"{m}\",{}", n(g)));
                    for c in cells {
                        match c {
                            Some(c) => out.push_str(&format!(",{},{}", c.mean, c.std)),
                            None => out.push_str(",,"),
                        }
                    }
                    out.push('\n');
                }
                out
            }
            Format::Markdown => {
                let mut out = format!("| group | method | seeds | {} |\n", COLUMNS.join(" | "));
                out.push_str(&format!("|{}\n", "---|".repeat(COLUMNS.len() + 3)));
                for (g, m, cells) in &self.rows {
                    let cells: Vec<String> = cells.iter().map(cell).collect();
                    out.push_str(&format!("| {g} | {m} | {} | {} |\n", n(g), cells.join(" | ")));
                }
                out
            }
            Format::Text => {
                let table: Vec<Vec<String>> = std::iter::once(
                    ["group", "method", "seeds"]
                        .iter()
                        .map(|s| s.to_string())
                        .chain(COLUMNS.iter().map(|s| s.to_string()))
                        .collect(),
                )
                .chain(self.rows.iter().map(|(g, m, cells)| {
                    [g.clone(), m.clone(), n(g).to_string()]
                        .into_iter()
                        .chain(cells.iter().map(cell))
                        .collect()
                }))
                .collect();
                let widths: Vec<usize> = (0..table[0].len())
                    .map(|c| table.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
                    .collect();
                let mut out = String::new();
                for row in &table {
                    let line: Vec<String> =
                        row.iter().zip(&widths).map(|(v, w)| format!("{v:<w$}")).collect();
                    out.push_str(line.join("  ").trim_end());
                    out.push('\n');
                }
                out
            }
        }
    }
}
