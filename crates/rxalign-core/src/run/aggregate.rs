//! Reading results across runs: final test metrics per group and method
//! (mean and standard deviation over seeds), tables in text, Markdown and
//! CSV, the Pareto front of safety and accuracy, and histogram buckets.
//! `compare`, `plot`, `status`, TensorBoard and the dashboard share these.

use std::collections::BTreeMap;

use super::discover::FinishedRun;
use crate::metrics::{EDIT_METRICS, is_edit_metric};

/// The standard metrics a comparison shows first, in this order; other
/// metrics of the summaries follow (see [`columns`]).
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

/// Mean and sample standard deviation of a metric over the seeds of a group.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl Cell {
    /// The mean and sample standard deviation (0 for one value); `None` for
    /// no values.
    pub fn of(xs: &[f64]) -> Option<Self> {
        if xs.is_empty() {
            return None;
        }
        let n = xs.len();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Some(Self {
            mean,
            std: var.sqrt(),
            n,
        })
    }
}

/// Which mean of each run's test visits a comparison shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mean {
    /// Each metric averaged over the test visits (every visit weighs the
    /// same): the papers' convention, and the default.
    #[default]
    PerVisit,
    /// Each metric computed over each patient's test visits, then averaged
    /// over patients (every patient weighs the same); its columns are
    /// named `per_patient/<metric>`.
    PerPatient,
}

/// The prefix of the per-patient means' columns.
pub const PER_PATIENT: &str = "per_patient/";

impl Mean {
    /// One line saying what the table's numbers are.
    pub fn describe(self) -> &'static str {
        match self {
            Self::PerVisit => {
                "each cell: mean ± sample std over seeds of the run's per-visit mean on the test split (every test visit weighs the same; `--mean per-patient` averages each patient's visits first)"
            }
            Self::PerPatient => {
                "each cell: mean ± sample std over seeds of the run's per-patient mean on the test split (each metric over each patient's test visits, then averaged over patients; `--mean per-visit` is the papers' convention)"
            }
        }
    }
}

/// Rows `(group, method)` with a cell per column (`None` when undefined).
#[derive(Debug)]
pub struct Comparison {
    /// The metric of each cell of a row: [`COLUMNS`], then the metrics of
    /// the summaries that are not standard (see [`columns`]).
    pub columns: Vec<String>,
    pub rows: Vec<(String, String, Vec<Option<Cell>>)>,
    /// Each group's seeds.
    pub seeds: BTreeMap<String, Vec<u64>>,
}

/// The columns of a comparison of `runs`: the standard [`COLUMNS`] first
/// (always, so tables of standard runs keep their shape), then every metric
/// of the runs' summaries that is not one of the standard metrics (a
/// researcher's own: a stage of theirs that records it), by name. The
/// standard metrics outside [`COLUMNS`] (precision, recall) stay out, as
/// before.
pub fn columns(runs: &[FinishedRun]) -> Vec<String> {
    let standard: std::collections::HashSet<String> = crate::metrics::definitions()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let extra: std::collections::BTreeSet<&String> = runs
        .iter()
        .flat_map(|r| {
            r.methods
                .iter()
                .filter_map(|m| r.summary.methods.get(m))
                .flat_map(|s| s.metrics.keys())
        })
        .filter(|k| !standard.contains(*k))
        .collect();
    let (edits, own): (Vec<&String>, Vec<&String>) = extra.into_iter().partition(|k| is_edit_metric(k));
    COLUMNS
        .iter()
        .map(|c| c.to_string())
        .chain(own.into_iter().cloned())
        // The edit metrics last, in their report order.
        .chain(
            EDIT_METRICS
                .iter()
                .filter(|(n, _)| edits.iter().any(|e| e == n))
                .map(|(n, _)| n.to_string()),
        )
        .collect()
}

/// Final test metrics of finished runs per group and method, over seeds,
/// in the [`columns`] of the runs.
///
/// Runs are averaged only with runs of their group made with the same
/// settings (but the seed, [`super::RunRecord::group_settings_sha256`]):
/// where a group's runs were made with different settings (two versions of
/// a file run into one folder), each settings is a group of its own, named
/// `group (settings 1a2b3c4d)` after the first hex digits of its digest.
pub fn compare(runs: &[FinishedRun]) -> Comparison {
    compare_with(runs, Mean::PerVisit)
}

/// [`compare`] with the given [`Mean`]: per patient, the standard
/// [`COLUMNS`] as `per_patient/<metric>` (runs of builds before run format
/// 1.3 recorded none: n/a), then the edit metrics as they are (counted
/// over the test lists as a whole, the `_per_visit` ones per visit: the
/// same whichever mean the other columns take).
pub fn compare_with(runs: &[FinishedRun], mean: Mean) -> Comparison {
    let columns = match mean {
        Mean::PerVisit => columns(runs),
        Mean::PerPatient => COLUMNS
            .iter()
            .map(|c| format!("{PER_PATIENT}{c}"))
            .chain(columns(runs).into_iter().filter(|c| is_edit_metric(c)))
            .collect(),
    };
    let value = |run: &FinishedRun, method: &str, column: &str| match column.strip_prefix(PER_PATIENT) {
        Some(metric) if mean == Mean::PerPatient => run.summary.per_patient_metric(method, metric),
        _ => run.summary.metric(method, column),
    };
    let mut values: BTreeMap<(String, String), Vec<Vec<Option<f64>>>> = BTreeMap::new();
    let mut order: Vec<(String, String)> = Vec::new();
    let mut seeds: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut settings: BTreeMap<&str, std::collections::BTreeSet<Option<&str>>> = BTreeMap::new();
    for run in runs {
        settings
            .entry(run.record.group.as_str())
            .or_default()
            .insert(run.record.group_settings_sha256.as_deref());
    }
    for run in runs {
        let group = match run.record.group_settings_sha256.as_deref() {
            Some(hash) if settings[run.record.group.as_str()].len() > 1 => {
                format!("{} (settings {})", run.record.group, &hash[..hash.len().min(8)])
            }
            None if settings[run.record.group.as_str()].len() > 1 => {
                format!("{} (settings not recorded)", run.record.group)
            }
            _ => run.record.group.clone(),
        };
        seeds.entry(group.clone()).or_default().push(run.record.seed);
        for method in &run.methods {
            let key = (group.clone(), method.clone());
            if !values.contains_key(&key) {
                order.push(key.clone());
            }
            let row = columns.iter().map(|c| value(run, method, c)).collect();
            values.entry(key).or_default().push(row);
        }
    }
    let rows = order
        .into_iter()
        .map(|key| {
            let samples = &values[&key];
            let cells = (0..columns.len())
                .map(|c| Cell::of(&samples.iter().filter_map(|r| r[c]).collect::<Vec<_>>()))
                .collect();
            (key.0, key.1, cells)
        })
        .collect();
    Comparison { columns, rows, seeds }
}

/// Why the DDI rates of some runs are n/a: their data had no DDI graph
/// (`drugs.json` lists no interacting pair), so the rate of a list is not
/// measured; `None` when every run had one.
pub fn no_ddi_graph_note<'a>(runs: impl IntoIterator<Item = &'a super::RunFolder>) -> Option<String> {
    let mut origins: Vec<String> = Vec::new();
    let mut count = 0usize;
    for run in runs {
        if let Ok(drugs) = run.read_drugs()
            && drugs.ddi.is_empty()
        {
            count += 1;
            if !origins.contains(&drugs.ddi_origin) {
                origins.push(drugs.ddi_origin);
            }
        }
    }
    (count > 0).then(|| {
        format!(
            "ddi_rate and ddi_rate_pooled are n/a for {count} run(s): their dataset has no DDI graph ({}), so no list's interactions are measured; add the dataset's ddi.csv to measure them",
            origins.join("; ")
        )
    })
}

/// How to print a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns for a terminal.
    Text,
    Markdown,
    /// RFC 4180, through the `csv` crate.
    Csv,
}

/// Renders a table: a header and rows of cells, in any [`Format`].
pub fn render_table(header: &[String], rows: &[Vec<String>], format: Format) -> String {
    match format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            // Writing into memory cannot fail.
            let _ = w.write_record(header);
            for r in rows {
                let _ = w.write_record(r);
            }
            String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
        }
        Format::Markdown => {
            let escape = |s: &String| s.replace('|', "\\|");
            let mut out = format!(
                "| {} |\n|{}\n",
                header.iter().map(escape).collect::<Vec<_>>().join(" | "),
                "---|".repeat(header.len())
            );
            for r in rows {
                out.push_str(&format!(
                    "| {} |\n",
                    r.iter().map(escape).collect::<Vec<_>>().join(" | ")
                ));
            }
            out
        }
        Format::Text => {
            let widths: Vec<usize> = (0..header.len())
                .map(|c| {
                    std::iter::once(header)
                        .chain(rows.iter().map(Vec::as_slice))
                        .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let mut out = String::new();
            for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
                let line: Vec<String> = row.iter().zip(&widths).map(|(v, w)| format!("{v:<w$}")).collect();
                out.push_str(line.join("  ").trim_end());
                out.push('\n');
            }
            out
        }
    }
}

impl Comparison {
    /// The table: in CSV one table of every column; in text and Markdown,
    /// the metrics first, then (where a method starts from a list) the
    /// edit metrics of those methods in a table of their own, with their
    /// definitions.
    pub fn render(&self, format: Format) -> String {
        if format == Format::Csv {
            return self.render_columns(format, |_| true, |_| true);
        }
        let edit = |c: &str| is_edit_metric(c);
        let mut out = self.render_columns(format, |c| !edit(c), |_| true);
        let editors = |cells: &[Option<Cell>]| {
            self.columns
                .iter()
                .zip(cells)
                .any(|(c, v)| edit(c) && v.is_some())
        };
        if self.rows.iter().any(|(_, _, cells)| editors(cells)) {
            out.push_str(
                "\nedits of the methods that start from a list (test split, mean ± std over seeds), where\n",
            );
            for (name, definition) in EDIT_METRICS
                .iter()
                .filter(|(n, _)| self.columns.iter().any(|c| c == n))
            {
                out.push_str(&format!("  {name}: {definition}\n"));
            }
            out.push('\n');
            out.push_str(&self.render_columns(format, edit, editors));
        }
        out
    }

    /// The rows that `rows` keeps, in the columns that `columns` keeps.
    fn render_columns(
        &self,
        format: Format,
        columns: impl Fn(&str) -> bool,
        rows: impl Fn(&[Option<Cell>]) -> bool,
    ) -> String {
        let n = |group: &str| self.seeds.get(group).map_or(0, Vec::len);
        let keep: Vec<bool> = self.columns.iter().map(|c| columns(c)).collect();
        let shown = self
            .columns
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(c, _)| c);
        let mut header: Vec<String> = ["group", "method", "seeds"].map(String::from).to_vec();
        match format {
            Format::Csv => {
                for c in shown {
                    header.push(format!("{c}_mean"));
                    header.push(format!("{c}_std"));
                }
            }
            _ => header.extend(shown.cloned()),
        }
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .filter(|(_, _, cells)| rows(cells))
            .map(|(g, m, cells)| {
                let mut row = vec![g.clone(), m.clone(), n(g).to_string()];
                for c in cells.iter().zip(&keep).filter(|(_, k)| **k).map(|(c, _)| c) {
                    match (format, c) {
                        (Format::Csv, Some(c)) => row.extend([c.mean.to_string(), c.std.to_string()]),
                        (Format::Csv, None) => row.extend([String::new(), String::new()]),
                        (_, Some(c)) if c.n > 1 => row.push(format!("{:.4} ± {:.4}", c.mean, c.std)),
                        (_, Some(c)) => row.push(format!("{:.4}", c.mean)),
                        (_, None) => row.push("n/a".into()),
                    }
                }
                row
            })
            .collect();
        render_table(&header, &rows, format)
    }
}

/// The points no other point beats on both axes (lower DDI rate, higher
/// Jaccard), in order of DDI rate.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut front: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|&(d, j)| {
            !points
                .iter()
                .any(|&(d2, j2)| d2 <= d && j2 >= j && (d2 < d || j2 > j))
        })
        .collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    front.dedup();
    front
}

/// A histogram of equal-width buckets over the finite `values`.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    pub min: f64,
    pub max: f64,
    /// Each bucket's right edge (the last is `max`).
    pub limits: Vec<f64>,
    pub counts: Vec<f64>,
}

/// `n` equal-width buckets over the finite values (one bucket when they
/// are all equal); `None` when there is no finite value or `n` is 0.
pub fn histogram(values: &[f64], n: usize) -> Option<Histogram> {
    let finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if finite.is_empty() || n == 0 {
        return None;
    }
    let (min, max) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    if max <= min {
        return Some(Histogram {
            min,
            max,
            limits: vec![min],
            counts: vec![finite.len() as f64],
        });
    }
    let width = (max - min) / n as f64;
    let limits: Vec<f64> = (1..=n)
        .map(|k| if k == n { max } else { min + width * k as f64 })
        .collect();
    let mut counts = vec![0.0; n];
    for &x in &finite {
        let k = (((x - min) / width) as usize).min(n - 1);
        counts[k] += 1.0;
    }
    Some(Histogram {
        min,
        max,
        limits,
        counts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pareto_front_keeps_the_undominated() {
        let pts = [(0.05, 0.6), (0.03, 0.5), (0.04, 0.7), (0.06, 0.65), (0.03, 0.4)];
        assert_eq!(pareto_front(&pts), vec![(0.03, 0.5), (0.04, 0.7)]);
    }

    #[test]
    fn buckets_cover_every_finite_value_once() {
        let h = histogram(&[0.0, 1.0, 1.5, 2.0, 10.0, f64::NAN], 4).unwrap();
        assert_eq!(h.limits.len(), 4);
        assert_eq!(*h.limits.last().unwrap(), 10.0);
        assert_eq!(h.counts, vec![4.0, 0.0, 0.0, 1.0]);
        let same = histogram(&[3.0, 3.0], 5).unwrap();
        assert_eq!((same.limits, same.counts), (vec![3.0], vec![2.0]));
        assert!(histogram(&[], 3).is_none());
    }

    #[test]
    fn tables_render_in_each_format() {
        let header = vec!["group".to_string(), "value".to_string()];
        let rows = vec![vec!["a,b".to_string(), "1 | 2".to_string()]];
        assert_eq!(
            render_table(&header, &rows, Format::Csv),
            "group,value\n\"a,b\",1 | 2\n"
        );
        assert_eq!(
            render_table(&header, &rows, Format::Markdown),
            "| group | value |\n|---|---|\n| a,b | 1 \\| 2 |\n"
        );
        assert_eq!(
            render_table(&header, &rows, Format::Text),
            "group  value\na,b    1 | 2\n"
        );
    }
}
