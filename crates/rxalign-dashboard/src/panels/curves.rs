//! The curves panel: any logged metric of the ticked runs, by step (each
//! stage its own series) or wall time; each group as the mean over its
//! seeds with a band, seeds on demand; smoothing with the raw curve faint
//! behind; log scale; long series decimated.

use std::collections::{BTreeMap, BTreeSet};

use eframe::egui;
use egui_plot::{ColorConflictHandling, FilledArea, Legend, Line, Plot};

use crate::app::Selection;
use crate::panels::palette;
use crate::store::{RunId, RunStore};

/// What the x axis shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum XAxis {
    /// The stage's own step (epoch, iteration).
    Step,
    /// Seconds since the run started.
    WallTime,
}

/// The band drawn around a group's mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Band {
    None,
    /// Mean ± the sample standard deviation over seeds.
    Std,
    MinMax,
}

/// One group's curve of one stage: the mean over seeds at each step, the
/// band, and each seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// `group · method (stage k)`.
    pub name: String,
    pub mean: Vec<[f64; 2]>,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
    /// How many seeds each point averages (the most of any step).
    pub seeds_n: usize,
    /// `(run name, points)`.
    pub seeds: Vec<(String, Vec<[f64; 2]>)>,
}

/// The curves panel's own state.
#[derive(Debug)]
pub struct CurvesPanel {
    pub metric: Option<String>,
    pub split: Option<String>,
    pub x: XAxis,
    pub band: Band,
    /// Draw each seed as well as the group's mean.
    pub show_seeds: bool,
    /// Exponential smoothing weight in [0, 1); 0 draws the raw values.
    pub smoothing: f64,
    pub log_y: bool,
    /// Points per drawn series at most (min-max decimation beyond).
    pub max_points: usize,
    cache: Option<(CacheKey, Vec<Series>)>,
    /// The splits and each split's metrics, by generation and runs.
    choices: Option<((u64, Vec<RunId>), Choices)>,
    /// What is drawn: smoothed, scaled and decimated, per series.
    drawn: Option<(DrawKey, Vec<Drawn>)>,
}

type Choices = BTreeMap<String, BTreeSet<String>>;
type DrawKey = (CacheKey, u64, bool, usize, bool);

/// One series as drawn: each polyline at most `max_points` long.
#[derive(Debug)]
struct Drawn {
    name: String,
    band: Option<(Vec<f64>, Vec<f64>, Vec<f64>)>,
    raw: Vec<[f64; 2]>,
    mean: Vec<[f64; 2]>,
    seeds: Vec<(String, Vec<[f64; 2]>)>,
}

type CacheKey = (u64, Vec<RunId>, Option<String>, Option<String>, XAxis, Band);

impl Default for CurvesPanel {
    fn default() -> Self {
        Self {
            metric: None,
            split: None,
            x: XAxis::Step,
            band: Band::Std,
            show_seeds: false,
            smoothing: 0.0,
            log_y: false,
            max_points: 2000,
            cache: None,
            choices: None,
            drawn: None,
        }
    }
}

/// Exponential smoothing as TensorBoard does it (debiased, so the first
/// points are not pulled towards zero).
pub fn smooth(points: &[[f64; 2]], weight: f64) -> Vec<[f64; 2]> {
    if weight <= 0.0 {
        return points.to_vec();
    }
    let (mut last, mut n) = (0.0, 0i32);
    points
        .iter()
        .map(|&[x, y]| {
            last = last * weight + (1.0 - weight) * y;
            n += 1;
            [x, last / (1.0 - weight.powi(n))]
        })
        .collect()
}

/// At most about `max` points: the points are cut into `max / 2` buckets
/// in order and each keeps its lowest and highest point (in x order), so
/// spikes stay visible.
pub fn decimate(points: &[[f64; 2]], max: usize) -> Vec<[f64; 2]> {
    if points.len() <= max.max(4) {
        return points.to_vec();
    }
    let buckets = (max / 2).max(2);
    let size = points.len().div_ceil(buckets);
    let mut out = Vec::with_capacity(buckets * 2);
    for chunk in points.chunks(size) {
        let lo = chunk.iter().enumerate().min_by(|a, b| a.1[1].total_cmp(&b.1[1]));
        let hi = chunk.iter().enumerate().max_by(|a, b| a.1[1].total_cmp(&b.1[1]));
        if let (Some((i, &l)), Some((j, &h))) = (lo, hi) {
            match i.cmp(&j) {
                std::cmp::Ordering::Less => out.extend([l, h]),
                std::cmp::Ordering::Greater => out.extend([h, l]),
                std::cmp::Ordering::Equal => out.push(l),
            }
        }
    }
    out
}

/// The runs the panel draws: the ticked ones, else every run.
fn runs_in_view(store: &RunStore, sel: &Selection) -> Vec<RunId> {
    if sel.runs.is_empty() {
        store.all_runs().map(|r| r.id.clone()).collect()
    } else {
        sel.runs.iter().cloned().collect()
    }
}

/// A series' values by step: `(x, y, run)` of each seed.
type BySteps = BTreeMap<u64, Vec<(f64, f64, String)>>;

/// The series of `metric` on `split` of `runs`, one per group and stage.
pub fn series(
    store: &RunStore,
    runs: &[RunId],
    metric: &str,
    split: &str,
    x: XAxis,
    band: Band,
) -> Vec<Series> {
    let experiments: BTreeSet<&str> = runs.iter().map(|r| r.experiment.as_str()).collect();
    // (group, stage) -> step -> [(x, y, run)]
    let mut by_key: BTreeMap<(String, (usize, String)), BySteps> = BTreeMap::new();
    for id in runs {
        let Some(run) = store.run(id) else { continue };
        let Some(records) = &run.metrics.value else {
            continue;
        };
        let started = run.record().and_then(|r| r.started);
        let group = if experiments.len() > 1 {
            format!("{}/{}", id.experiment, run.group())
        } else {
            run.group().to_string()
        };
        for rec in records.iter().filter(|r| r.split == split) {
            let Some(Some(y)) = rec.metrics.get(metric) else {
                continue;
            };
            if !y.is_finite() {
                continue;
            }
            let xv = match x {
                XAxis::Step => rec.step as f64,
                XAxis::WallTime => match (rec.time, started) {
                    (Some(t), Some(s)) => t.duration_since(s).as_secs_f64(),
                    _ => continue,
                },
            };
            let stage = rec
                .stage
                .as_ref()
                .map_or((usize::MAX, rec.method.clone()), |s| (s.index, s.method.clone()));
            by_key
                .entry((group.clone(), stage))
                .or_default()
                .entry(rec.step)
                .or_default()
                .push((xv, *y, id.run.clone()));
        }
    }
    by_key
        .into_iter()
        .map(|((group, (index, method)), steps)| {
            let stage = if index == usize::MAX {
                method
            } else {
                format!("{method} (stage {index})")
            };
            let mut s = Series {
                name: format!("{group} · {stage}"),
                mean: Vec::new(),
                lower: Vec::new(),
                upper: Vec::new(),
                seeds_n: 0,
                seeds: Vec::new(),
            };
            let mut seeds: BTreeMap<String, Vec<[f64; 2]>> = BTreeMap::new();
            for values in steps.values() {
                let n = values.len() as f64;
                let mx = values.iter().map(|v| v.0).sum::<f64>() / n;
                let my = values.iter().map(|v| v.1).sum::<f64>() / n;
                let (lo, hi) = match band {
                    Band::MinMax => values
                        .iter()
                        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                            (l.min(v.1), h.max(v.1))
                        }),
                    _ => {
                        let sd = if values.len() > 1 {
                            (values.iter().map(|v| (v.1 - my).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
                        } else {
                            0.0
                        };
                        (my - sd, my + sd)
                    }
                };
                s.mean.push([mx, my]);
                s.lower.push(lo);
                s.upper.push(hi);
                s.seeds_n = s.seeds_n.max(values.len());
                for (xv, y, run) in values {
                    seeds.entry(run.clone()).or_default().push([*xv, *y]);
                }
            }
            s.seeds = seeds.into_iter().collect();
            s
        })
        .collect()
}

/// The splits and metrics logged by `runs`.
fn available(store: &RunStore, runs: &[RunId]) -> Choices {
    let mut out = Choices::new();
    for id in runs {
        let Some(records) = store.run(id).and_then(|r| r.metrics.value.as_ref()) else {
            continue;
        };
        for r in records {
            let metrics = match out.get_mut(&r.split) {
                Some(m) => m,
                None => out.entry(r.split.clone()).or_default(),
            };
            for (k, v) in &r.metrics {
                if v.is_some() && !metrics.contains(k) {
                    metrics.insert(k.clone());
                }
            }
        }
    }
    out
}

/// Every `step`-th point of a band, so that it is as long as the lines.
fn thin<T: Copy>(xs: &[T], max: usize) -> Vec<T> {
    let step = xs.len().div_ceil(max.max(1)).max(1);
    xs.iter().step_by(step).copied().collect()
}

fn log_points(points: &[[f64; 2]]) -> Vec<[f64; 2]> {
    points
        .iter()
        .filter(|p| p[1] > 0.0)
        .map(|p| [p[0], p[1].log10()])
        .collect()
}

impl CurvesPanel {
    pub fn show(&mut self, ui: &mut egui::Ui, store: &RunStore, sel: &mut Selection) {
        let runs = runs_in_view(store, sel);
        let choices_key = (store.generation(), runs.clone());
        if self.choices.as_ref().is_none_or(|(k, _)| *k != choices_key) {
            self.choices = Some((choices_key, available(store, &runs)));
        }
        let choices = self.choices.as_ref().map(|(_, c)| c.clone()).unwrap_or_default();
        let splits: BTreeSet<String> = choices.keys().cloned().collect();
        if self.split.as_ref().is_none_or(|s| !splits.contains(s)) {
            self.split = splits
                .iter()
                .find(|s| *s == "val")
                .or(splits.iter().next())
                .cloned();
        }
        let metrics = self
            .split
            .as_ref()
            .and_then(|s| choices.get(s))
            .cloned()
            .unwrap_or_default();
        if self.metric.as_ref().is_none_or(|m| !metrics.contains(m)) {
            self.metric = metrics
                .iter()
                .find(|m| *m == "jaccard")
                .or(metrics.iter().next())
                .cloned();
        }
        ui.horizontal_wrapped(|ui| {
            ui.label(if sel.runs.is_empty() {
                format!(
                    "all {} run(s) (tick runs in the Runs panel to choose)",
                    runs.len()
                )
            } else {
                format!("{} ticked run(s)", runs.len())
            });
            ui.separator();
            egui::ComboBox::from_label("metric")
                .selected_text(self.metric.clone().unwrap_or_else(|| "(none logged)".into()))
                .show_ui(ui, |ui| {
                    for m in &metrics {
                        ui.selectable_value(&mut self.metric, Some(m.clone()), m);
                    }
                });
            egui::ComboBox::from_label("split")
                .selected_text(self.split.clone().unwrap_or_else(|| "(none)".into()))
                .show_ui(ui, |ui| {
                    for s in &splits {
                        ui.selectable_value(&mut self.split, Some(s.clone()), s);
                    }
                });
            ui.separator();
            ui.label("x:");
            ui.radio_value(&mut self.x, XAxis::Step, "step (per stage)");
            ui.radio_value(&mut self.x, XAxis::WallTime, "wall time");
        });
        ui.horizontal_wrapped(|ui| {
            ui.label("band over seeds:");
            ui.radio_value(&mut self.band, Band::Std, "mean ± std");
            ui.radio_value(&mut self.band, Band::MinMax, "min-max");
            ui.radio_value(&mut self.band, Band::None, "none");
            ui.separator();
            ui.checkbox(&mut self.show_seeds, "individual seeds");
            ui.checkbox(&mut self.log_y, "log scale");
            ui.add(egui::Slider::new(&mut self.smoothing, 0.0..=0.99).text("smoothing"));
        });
        let (Some(metric), Some(split)) = (self.metric.clone(), self.split.clone()) else {
            ui.label("No metric logged yet by these runs.");
            return;
        };
        let key: CacheKey = (
            store.generation(),
            runs.clone(),
            Some(metric.clone()),
            Some(split.clone()),
            self.x,
            self.band,
        );
        if self.cache.as_ref().is_none_or(|(k, _)| *k != key) {
            let s = series(store, &runs, &metric, &split, self.x, self.band);
            self.cache = Some((key.clone(), s));
        }
        let (smoothing, log_y, max, show_seeds) =
            (self.smoothing, self.log_y, self.max_points, self.show_seeds);
        let draw_key: DrawKey = (key, smoothing.to_bits(), log_y, max, show_seeds);
        if self.drawn.as_ref().is_none_or(|(k, _)| *k != draw_key) {
            let all = self.cache.as_ref().map(|(_, s)| s.as_slice()).unwrap_or_default();
            let ty = |p: &[[f64; 2]]| if log_y { log_points(p) } else { p.to_vec() };
            let drawn = all
                .iter()
                .map(|s| Drawn {
                    name: s.name.clone(),
                    band: (self.band != Band::None && s.seeds_n > 1).then(|| {
                        let xs: Vec<f64> = s.mean.iter().map(|p| p[0]).collect();
                        let f = |v: &f64| {
                            if log_y {
                                v.max(f64::MIN_POSITIVE).log10()
                            } else {
                                *v
                            }
                        };
                        let lo: Vec<f64> = s.lower.iter().map(f).collect();
                        let hi: Vec<f64> = s.upper.iter().map(f).collect();
                        (thin(&xs, max), thin(&lo, max), thin(&hi, max))
                    }),
                    raw: if smoothing > 0.0 {
                        decimate(&ty(&s.mean), max)
                    } else {
                        Vec::new()
                    },
                    mean: decimate(&ty(&smooth(&s.mean, smoothing)), max),
                    seeds: if show_seeds {
                        s.seeds
                            .iter()
                            .map(|(run, pts)| (run.clone(), decimate(&ty(&smooth(pts, smoothing)), max)))
                            .collect()
                    } else {
                        Vec::new()
                    },
                })
                .collect();
            self.drawn = Some((draw_key, drawn));
        }
        let Some((_, all)) = self.drawn.as_ref() else {
            return;
        };
        if all.is_empty() {
            ui.label(format!("No values of `{metric}` on `{split}` in these runs."));
            return;
        }
        ui.label(format!(
            "{metric} on split `{split}`: the line is the mean over each group's seeds at each step{}; {} series.",
            match self.band {
                Band::Std => ", the band ± one sample standard deviation",
                Band::MinMax => ", the band from the lowest to the highest seed",
                Band::None => "",
            },
            all.len()
        ));
        let plot = Plot::new("curves")
            .legend(Legend::default().color_conflict_handling(ColorConflictHandling::PickFirst))
            .x_axis_label(match self.x {
                XAxis::Step => "step of the stage",
                XAxis::WallTime => "seconds since the run started",
            })
            .y_axis_label(if log_y {
                format!("{metric} (log10)")
            } else {
                metric.clone()
            });
        let plot = if log_y {
            plot.y_axis_formatter(|m, _| format!("{:.3e}", 10f64.powf(m.value)))
        } else {
            plot
        };
        plot.show(ui, |p| {
            for (i, s) in all.iter().enumerate() {
                let colour = palette(i);
                // The mean first: the legend takes the colour of a name's first item.
                p.line(
                    Line::new(&s.name, s.mean.clone())
                        .color(colour)
                        .width(2.0)
                        .id((&s.name, "mean")),
                );
                if let Some((xs, lo, hi)) = &s.band {
                    p.add(
                        FilledArea::new(&s.name, xs, lo, hi)
                            .fill_color(colour.gamma_multiply(0.15))
                            .id((&s.name, "band")),
                    );
                }
                if !s.raw.is_empty() {
                    p.line(
                        Line::new(&s.name, s.raw.clone())
                            .color(colour.gamma_multiply(0.3))
                            .id((&s.name, "raw")),
                    );
                }
                for (run, pts) in &s.seeds {
                    p.line(
                        Line::new(&s.name, pts.clone())
                            .color(colour.gamma_multiply(0.6))
                            .style(egui_plot::LineStyle::dashed_loose())
                            .id((&s.name, run.as_str())),
                    );
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimation_keeps_the_extremes_and_bounds_the_size() {
        let pts: Vec<[f64; 2]> = (0..100_000).map(|i| [i as f64, (i % 97) as f64]).collect();
        let mut spiky = pts.clone();
        spiky[54_321][1] = 1e6;
        let d = decimate(&spiky, 2000);
        assert!(d.len() <= 2000, "{}", d.len());
        assert!(d.iter().any(|p| p[1] == 1e6));
        assert!(d.windows(2).all(|w| w[0][0] <= w[1][0]), "x order is kept");
        assert_eq!(decimate(&pts[..10], 2000).len(), 10);
    }

    #[test]
    fn smoothing_is_debiased_and_zero_weight_is_raw() {
        let pts = [[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]];
        assert_eq!(smooth(&pts, 0.0), pts.to_vec());
        for p in smooth(&pts, 0.9) {
            assert!((p[1] - 1.0).abs() < 1e-12, "{p:?}");
        }
        let s = smooth(&[[0.0, 0.0], [1.0, 10.0]], 0.5);
        assert!((s[1][1] - 10.0 * 0.5 / 0.75).abs() < 1e-12);
    }
}
