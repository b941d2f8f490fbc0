//! Tables of metrics by method, with the definitions of their columns.

use rxalign_core::metrics::{MetricReport, definitions};

/// The columns shown in terminal tables, in order: those of `compare`.
pub use rxalign_experiment::compare::COLUMNS;

/// An aligned table: one row per method, one column per metric, `n/a` where
/// a metric is undefined; then the definition of every column.
pub fn render(rows: &[(String, MetricReport)]) -> String {
    let name_width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(6).max(6);
    let mut out = format!("{:name_width$}  {:>6}", "method", "visits");
    for c in COLUMNS {
        out.push_str(&format!("  {c:>w$}", w = c.len().max(7)));
    }
    out.push('\n');
    for (name, report) in rows {
        out.push_str(&format!("{name:name_width$}  {:>6}", report.visits));
        for c in COLUMNS {
            let v = report
                .get(c)
                .map_or_else(|| "n/a".to_string(), |x| format!("{x:.4}"));
            out.push_str(&format!("  {v:>w$}", w = c.len().max(7)));
        }
        out.push('\n');
    }
    out.push_str("\nwhere\n");
    out.push_str(&legend());
    out
}

/// `name: definition`, one a line, for the columns of [`render`].
pub fn legend() -> String {
    let defs = definitions();
    COLUMNS
        .iter()
        .filter_map(|c| defs.iter().find(|(n, _)| n == c))
        .map(|(n, d)| format!("  {n}: {d}\n"))
        .collect()
}
