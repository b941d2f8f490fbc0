//! Figures of an experiment's runs, drawn with plotters as PNG and SVG with
//! the font shipped in `assets/fonts` (so they look the same everywhere):
//! validation curves per stage (each on its own steps, a line per variant),
//! the safety-accuracy plane with its Pareto front, list sizes against the
//! ground truth's, and the reward by term.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use rxalign_core::predictions::PredictionRecord;
use rxalign_core::run::{FinishedRun, GROUND_TRUTH, StageRef, finished_runs, pareto_front, read_jsonl};

use crate::ExperimentError;

const FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
const SIZE: (u32, u32) = (960, 640);

fn register_font() -> Result<(), ExperimentError> {
    static DONE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok =
        *DONE.get_or_init(|| plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(ExperimentError::Invalid(
            "the shipped font could not be read".into(),
        ))
    }
}

type DrawResult = Result<(), String>;

/// `group -> step -> values over seeds`.
type Curve = BTreeMap<String, BTreeMap<u64, Vec<f64>>>;

/// What the figures show, gathered from the run folders.
#[derive(Debug, Default)]
struct Figures {
    /// `stage -> group -> step -> validation Jaccard over seeds`.
    curves: BTreeMap<StageRef, Curve>,
    /// `stage -> split (train, val) -> group -> step -> the outcome reward
    /// of the greedy lists over seeds`: what a training stage has seen
    /// against what it has not.
    gaps: BTreeMap<StageRef, BTreeMap<String, Curve>>,
    /// `(group, method, ddi_rate, jaccard)` per run, test split.
    points: Vec<(String, String, f64, f64)>,
    /// `method -> list sizes` over every run's test predictions.
    sizes: BTreeMap<String, Vec<usize>>,
    /// `method -> term -> test values over runs`.
    terms: BTreeMap<String, BTreeMap<String, Vec<f64>>>,
    methods: Vec<String>,
    groups: Vec<String>,
}

fn gather(runs: &[FinishedRun]) -> Result<Figures, ExperimentError> {
    let mut f = Figures::default();
    for run in runs {
        let group = run.record.group.clone();
        if !f.groups.contains(&group) {
            f.groups.push(group.clone());
        }
        for m in &run.methods {
            if !f.methods.contains(m) && m != GROUND_TRUTH {
                f.methods.push(m.clone());
            }
        }
        for r in run.folder.read_metrics()? {
            if let ("val", Some(Some(j)), Some(stage)) =
                (r.split.as_str(), r.metrics.get("jaccard"), &r.stage)
            {
                f.curves
                    .entry(stage.clone())
                    .or_default()
                    .entry(group.clone())
                    .or_default()
                    .entry(r.step)
                    .or_default()
                    .push(*j);
            }
            if let (true, Some(Some(_)), Some(Some(o)), Some(stage)) = (
                r.split == "train" || r.split == "val",
                r.metrics.get("jaccard"),
                r.metrics.get("reward/outcome"),
                &r.stage,
            ) {
                f.gaps
                    .entry(stage.clone())
                    .or_default()
                    .entry(r.split.clone())
                    .or_default()
                    .entry(group.clone())
                    .or_default()
                    .entry(r.step)
                    .or_default()
                    .push(*o);
            }
            if r.split == "test" {
                for (k, v) in &r.metrics {
                    if let (Some(term), Some(v)) = (k.strip_prefix("reward/"), v) {
                        f.terms
                            .entry(r.method.clone())
                            .or_default()
                            .entry(term.to_string())
                            .or_default()
                            .push(*v);
                    }
                }
            }
        }
        for method in &run.methods {
            if let (Some(d), Some(j)) = (
                run.summary.metric(method, "ddi_rate"),
                run.summary.metric(method, "jaccard"),
            ) {
                f.points.push((group.clone(), method.clone(), d, j));
            }
        }
        for name in f.methods.iter().map(String::as_str).chain([GROUND_TRUTH]) {
            let path = run.folder.predictions_of(name);
            if path.is_file() {
                let records: Vec<PredictionRecord> = read_jsonl(&path)?;
                f.sizes
                    .entry(name.to_string())
                    .or_default()
                    .extend(records.iter().map(|r| r.drugs.len()));
            }
        }
    }
    // Stages with a curve (more than one step); one-off evaluations (the
    // references, the baselines) are points, in the other figures.
    let curved: Vec<StageRef> = f
        .curves
        .iter()
        .filter(|(_, c)| c.values().any(|steps| steps.len() > 1))
        .map(|(s, _)| s.clone())
        .collect();
    if !curved.is_empty() {
        f.curves.retain(|s, _| curved.contains(s));
    }
    // Gaps exist for the stages evaluated on both splits more than once.
    f.gaps.retain(|_, splits| {
        splits.len() == 2 && splits.values().all(|c| c.values().any(|steps| steps.len() > 1))
    });
    Ok(f)
}

/// Draws every figure of the experiment in `dir` into `out`; returns the
/// files written.
pub fn plot_experiment(dir: &Path, out: &Path) -> Result<Vec<PathBuf>, ExperimentError> {
    register_font()?;
    let (runs, _) = finished_runs(dir)?;
    if runs.is_empty() {
        return Err(ExperimentError::Invalid(format!(
            "no finished run under {}",
            dir.display()
        )));
    }
    let f = gather(&runs)?;
    std::fs::create_dir_all(out).map_err(|e| rxalign_core::CoreError::io(out, e))?;
    let mut written = Vec::new();
    let figures = [
        ("learning_curves", Figure::LearningCurves),
        ("safety_accuracy", Figure::SafetyAccuracy),
        ("list_sizes", Figure::ListSizes),
        ("reward_terms", Figure::RewardTerms),
        ("generalisation", Figure::Generalisation),
    ];
    for (name, figure) in figures {
        let fail = |e: String| ExperimentError::Invalid(format!("drawing {name}: {e}"));
        let svg_path = out.join(format!("{name}.svg"));
        {
            let area = SVGBackend::new(&svg_path, SIZE).into_drawing_area();
            draw(figure, &f, area.clone()).map_err(fail)?;
            area.present().map_err(|e| fail(e.to_string()))?;
        }
        let png_path = out.join(format!("{name}.png"));
        {
            let area = BitMapBackend::new(&png_path, SIZE).into_drawing_area();
            draw(figure, &f, area.clone()).map_err(fail)?;
            area.present().map_err(|e| fail(e.to_string()))?;
        }
        written.extend([png_path, svg_path]);
    }
    Ok(written)
}

#[derive(Clone, Copy, Debug)]
enum Figure {
    LearningCurves,
    SafetyAccuracy,
    ListSizes,
    RewardTerms,
    Generalisation,
}

fn draw<DB: DrawingBackend>(figure: Figure, f: &Figures, area: DrawingArea<DB, Shift>) -> DrawResult {
    match figure {
        Figure::LearningCurves => learning_curves(f, area),
        Figure::SafetyAccuracy => safety_accuracy(f, area),
        Figure::ListSizes => list_sizes(f, area),
        Figure::RewardTerms => reward_terms(f, area),
        Figure::Generalisation => generalisation(f, area),
    }
}

fn color(i: usize) -> RGBColor {
    let c = Palette99::pick(i).to_rgba();
    RGBColor(c.0, c.1, c.2)
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// One panel per stage with validation records, each on its own steps
/// (epochs, iterations), a line per variant (mean over seeds).
fn learning_curves<DB: DrawingBackend>(f: &Figures, root: DrawingArea<DB, Shift>) -> DrawResult {
    root.fill(&WHITE).map_err(err)?;
    if f.curves.is_empty() {
        root.draw(&Text::new(
            "no validation records in these runs",
            (20, 20),
            ("sans-serif", 18).into_font(),
        ))
        .map_err(err)?;
        return Ok(());
    }
    let n = f.curves.len();
    let cols = if n > 3 { 2 } else { 1 };
    let panels = root.split_evenly((n.div_ceil(cols), cols));
    for (panel, (stage, curve)) in panels.iter().zip(&f.curves) {
        let steps = || curve.values().flat_map(|c| c.keys()).copied();
        let min_step = steps().min().unwrap_or(0);
        let max_step = steps().max().unwrap_or(0).max(min_step + 1);
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!(
                    "stage {} `{}`: validation Jaccard (per-visit mean)",
                    stage.index, stage.method
                ),
                ("sans-serif", 16),
            )
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(44)
            .build_cartesian_2d(min_step as f64..max_step as f64, 0f64..1f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(format!("{} step", stage.method))
            .y_desc("jaccard")
            .draw()
            .map_err(err)?;
        for (group, steps) in curve {
            let i = f.groups.iter().position(|g| g == group).unwrap_or(0);
            let pts: Vec<(f64, f64)> = steps
                .iter()
                .map(|(s, v)| (*s as f64, v.iter().sum::<f64>() / v.len() as f64))
                .collect();
            let c = color(i);
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(err)?
                .label(group.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
            chart
                .draw_series(pts.iter().map(|p| Circle::new(*p, 3, c.filled())))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

/// One panel per training stage: the outcome reward of its greedy lists on
/// the training patients (dashed: what it has seen) and the validation
/// patients (solid: what it has not), each variant's mean over seeds, on
/// the stage's own steps.
fn generalisation<DB: DrawingBackend>(f: &Figures, root: DrawingArea<DB, Shift>) -> DrawResult {
    root.fill(&WHITE).map_err(err)?;
    if f.gaps.is_empty() {
        root.draw(&Text::new(
            "no training stage evaluated on the training and validation patients",
            (20, 20),
            ("sans-serif", 18).into_font(),
        ))
        .map_err(err)?;
        return Ok(());
    }
    let n = f.gaps.len();
    let cols = if n > 3 { 2 } else { 1 };
    let panels = root.split_evenly((n.div_ceil(cols), cols));
    let mean = |v: &Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
    for (panel, (stage, splits)) in panels.iter().zip(&f.gaps) {
        let points = || {
            splits
                .values()
                .flat_map(|c| c.values())
                .flat_map(|steps| steps.iter())
        };
        let min_step = points().map(|(s, _)| *s).min().unwrap_or(0);
        let max_step = points().map(|(s, _)| *s).max().unwrap_or(0).max(min_step + 1);
        let lo = points().map(|(_, v)| mean(v)).fold(0f64, f64::min);
        let hi = points().map(|(_, v)| mean(v)).fold(0f64, f64::max);
        let pad = ((hi - lo) * 0.08).max(1e-3);
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!(
                    "stage {} `{}`: outcome reward, train (dashed) vs validation",
                    stage.index, stage.method
                ),
                ("sans-serif", 16),
            )
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(52)
            .build_cartesian_2d(min_step as f64..max_step as f64, lo - pad..hi + pad)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(format!("{} step", stage.method))
            .y_desc("outcome reward (per-visit mean)")
            .draw()
            .map_err(err)?;
        for (split, curve) in splits {
            for (group, steps) in curve {
                let i = f.groups.iter().position(|g| g == group).unwrap_or(0);
                let c = color(i);
                let pts: Vec<(f64, f64)> = steps.iter().map(|(s, v)| (*s as f64, mean(v))).collect();
                if split == "val" {
                    chart
                        .draw_series(LineSeries::new(pts, c.stroke_width(2)))
                        .map_err(err)?
                        .label(group.as_str())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
                } else {
                    chart
                        .draw_series(DashedLineSeries::new(pts, 6, 4, c.stroke_width(1)))
                        .map_err(err)?;
                }
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

fn safety_accuracy<DB: DrawingBackend>(f: &Figures, root: DrawingArea<DB, Shift>) -> DrawResult {
    root.fill(&WHITE).map_err(err)?;
    let max_d = f.points.iter().map(|p| p.2).fold(0.0, f64::max).max(0.01) * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "safety and accuracy on the test split (one point per run and method)",
            ("sans-serif", 18),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..max_d, 0f64..1f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("DDI rate (per-visit mean; lower is safer)")
        .y_desc("Jaccard (per-visit mean)")
        .draw()
        .map_err(err)?;
    for (i, m) in f.methods.iter().enumerate() {
        let c = color(i);
        let pts: Vec<(f64, f64)> = f
            .points
            .iter()
            .filter(|p| &p.1 == m)
            .map(|p| (p.2, p.3))
            .collect();
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 5, c.filled())))
            .map_err(err)?
            .label(m.as_str())
            .legend(move |(x, y)| Circle::new((x + 8, y), 5, c.filled()));
    }
    let all: Vec<(f64, f64)> = f.points.iter().map(|p| (p.2, p.3)).collect();
    let front = pareto_front(&all);
    chart
        .draw_series(LineSeries::new(front.clone(), BLACK.stroke_width(1)))
        .map_err(err)?
        .label("Pareto front")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK));
    chart
        .draw_series(front.iter().map(|p| Circle::new(*p, 8, BLACK.stroke_width(1))))
        .map_err(err)?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

fn list_sizes<DB: DrawingBackend>(f: &Figures, root: DrawingArea<DB, Shift>) -> DrawResult {
    root.fill(&WHITE).map_err(err)?;
    let max = f.sizes.values().flatten().copied().max().unwrap_or(1).min(80);
    let share = |sizes: &[usize]| -> Vec<(f64, f64)> {
        let mut counts = vec![0usize; max + 1];
        for &s in sizes {
            counts[s.min(max)] += 1;
        }
        counts
            .iter()
            .enumerate()
            .map(|(s, &c)| (s as f64, c as f64 / sizes.len().max(1) as f64))
            .collect()
    };
    let top = f
        .sizes
        .values()
        .flat_map(|s| share(s))
        .map(|p| p.1)
        .fold(0.0, f64::max)
        .max(0.05)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "list sizes on the test split against the ground truth's",
            ("sans-serif", 18),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..max as f64, 0f64..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("drugs in the list")
        .y_desc("share of visits")
        .draw()
        .map_err(err)?;
    if let Some(gt) = f.sizes.get("ground_truth") {
        chart
            .draw_series(LineSeries::new(share(gt), BLACK.stroke_width(3)))
            .map_err(err)?
            .label("ground truth")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.stroke_width(3)));
    }
    for (i, m) in f.methods.iter().enumerate() {
        let Some(sizes) = f.sizes.get(m) else { continue };
        let c = color(i);
        chart
            .draw_series(LineSeries::new(share(sizes), c.stroke_width(2)))
            .map_err(err)?
            .label(m.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

fn reward_terms<DB: DrawingBackend>(f: &Figures, root: DrawingArea<DB, Shift>) -> DrawResult {
    root.fill(&WHITE).map_err(err)?;
    let terms: Vec<String> = {
        let mut t: Vec<String> = f.terms.values().flat_map(|m| m.keys().cloned()).collect();
        t.sort();
        t.dedup();
        t
    };
    let mean = |v: &Vec<f64>| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let values: Vec<f64> = f.terms.values().flat_map(|m| m.values().map(mean)).collect();
    let (lo, hi) = (
        values.iter().copied().fold(0.0, f64::min) * 1.1 - 0.05,
        values.iter().copied().fold(0.0, f64::max) * 1.1 + 0.05,
    );
    let n = f.methods.len().max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "mean weighted reward terms of the final lists (test split)",
            ("sans-serif", 18),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..n as f64, lo..hi)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&|_| String::new())
        .y_desc("weighted term (outcome: from the start list)")
        .draw()
        .map_err(err)?;
    // One label under each method's bars.
    chart
        .draw_series(f.methods.iter().enumerate().map(|(i, m)| {
            Text::new(
                m.clone(),
                (i as f64 + 0.1, lo + (hi - lo) * 0.02),
                ("sans-serif", 13).into_font(),
            )
        }))
        .map_err(err)?;
    let width = 0.8 / terms.len().max(1) as f64;
    for (t, term) in terms.iter().enumerate() {
        let c = color(t + 10);
        let bars: Vec<Rectangle<(f64, f64)>> = f
            .methods
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let v = mean(f.terms.get(m)?.get(term)?);
                let x0 = i as f64 + 0.1 + t as f64 * width;
                Some(Rectangle::new([(x0, 0.0), (x0 + width * 0.9, v)], c.filled()))
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(err)?
            .label(term.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rxalign_core::run::{MetricsRecord, RunFolder, RunRecord, StageRef, SummaryRecord};

    use super::*;

    /// A finished run folder with validation records of two training
    /// stages, each on its own steps, and a one-off evaluation.
    fn fake_run(dir: &Path, seed: u64) {
        let run = RunFolder::create(dir.join(format!("base.seed={seed}"))).unwrap();
        let record: RunRecord = serde_json::from_value(serde_json::json!({
            "format": "1.0", "experiment": "e", "run": format!("base.seed={seed}"), "group": "base",
            "seed": seed, "settings_sha256": "", "stages": [], "status": "finished",
            "created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z",
            "rxalign_version": "0", "device": "cpu",
        }))
        .unwrap();
        run.write_record(&record).unwrap();
        let rec = |stage: usize, method: &str, step: u64, j: f64| {
            let mut r = MetricsRecord::new(
                step,
                "val",
                method,
                BTreeMap::from([("jaccard".into(), Some(j)), ("ddi_rate".into(), Some(0.05))]),
            );
            r.stage = Some(StageRef {
                index: stage,
                method: method.into(),
            });
            r
        };
        let mut records = vec![rec(0, "ceiling", 0, 0.9)];
        records.extend((1..=3).map(|s| rec(4, "sft", s, 0.2 * s as f64)));
        records.extend([10, 20, 30].map(|s| rec(5, "step_grpo", s, 0.6 + s as f64 / 100.0)));
        run.append_metrics(&records).unwrap();
        let mut summary = SummaryRecord::default();
        for m in ["ceiling", "sft", "step_grpo"] {
            summary.insert(
                m,
                None,
                10,
                BTreeMap::from([("jaccard".into(), Some(0.5)), ("ddi_rate".into(), Some(0.05))]),
            );
        }
        run.write_summary(&summary).unwrap();
    }

    #[test]
    fn learning_curves_draw_each_training_stage_on_its_own_steps() {
        let tmp = tempfile::tempdir().unwrap();
        let exp = tmp.path().join("e");
        fake_run(&exp, 1);
        fake_run(&exp, 2);
        let (runs, _) = finished_runs(&exp).unwrap();
        let f = gather(&runs).unwrap();
        let stages: Vec<(usize, &str)> = f.curves.keys().map(|s| (s.index, s.method.as_str())).collect();
        assert_eq!(
            stages,
            [(4, "sft"), (5, "step_grpo")],
            "one-off evaluations are not curves"
        );
        let grpo = &f.curves.keys().nth(1).map(|s| &f.curves[s]).unwrap()["base"];
        assert_eq!(grpo.keys().copied().collect::<Vec<_>>(), [10, 20, 30]);
        assert_eq!(grpo[&20], [0.8, 0.8], "both seeds");
        let out = tmp.path().join("figures");
        plot_experiment(&exp, &out).unwrap();
        let svg = std::fs::read_to_string(out.join("learning_curves.svg")).unwrap();
        assert!(svg.contains("stage 4 `sft`: validation Jaccard"), "{svg}");
        assert!(svg.contains("stage 5 `step_grpo`: validation Jaccard"));
        assert!(svg.contains("step_grpo step") && !svg.contains("`ceiling`"));
    }
}
