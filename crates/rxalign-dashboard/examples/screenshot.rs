//! Renders one panel of the dashboard in a real window and saves it as a
//! PNG, then exits: what `scripts/dashboard-screenshots.sh` runs under Xvfb
//! with Mesa's software OpenGL.
//!
//! `cargo run -p rxalign-dashboard --example screenshot -- RUNS_DIR TAB OUT.png`

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rxalign_core::trajectory::ActionRecord;
use rxalign_dashboard::egui;
use rxalign_dashboard::{Dashboard, Tab};

type Shot = Arc<Mutex<Option<Arc<egui::ColorImage>>>>;

#[derive(Debug)]
struct App {
    dashboard: Dashboard,
    out: PathBuf,
    frames: u32,
    shot: Shot,
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        egui::CentralPanel::default().show(ui, |ui| self.dashboard.ui(ui));
        let ctx = ui.ctx().clone();
        self.frames += 1;
        let image = self.shot.lock().ok().and_then(|mut s| s.take());
        if let Some(image) = image {
            if let Err(e) = save(&image, &self.out) {
                eprintln!("{}: {e}", self.out.display());
                std::process::exit(1);
            }
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        }
        // A few frames first, so that plots fit their bounds and fonts settle.
        if self.frames == 8 {
            let shot = self.shot.clone();
            ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(egui::ScreenshotCallback::new(
                move |image| {
                    if let Ok(mut s) = shot.lock() {
                        *s = Some(image);
                    }
                },
            )));
        }
        ctx.request_repaint();
    }
}

fn save(image: &egui::ColorImage, out: &PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let file = std::io::BufWriter::new(std::fs::File::create(out)?);
    let [w, h] = image.size;
    let mut enc = png::Encoder::new(file, w as u32, h as u32);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header()?;
    let bytes: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_array()).collect();
    writer.write_image_data(&bytes)?;
    Ok(())
}

/// Shows each panel on something worth seeing: every run ticked; in the
/// trajectory panel, the step-wise GRPO episode of the first run that both
/// adds and removes drugs, with the most steps, among the visits where the
/// policy edited.
fn prepare(d: &mut Dashboard, tab: Tab) {
    d.tab = tab;
    let ids: Vec<_> = d
        .store
        .all_runs()
        .filter(|r| r.summary.value.is_some())
        .map(|r| r.id.clone())
        .collect();
    d.selection.runs.extend(ids.iter().cloned());
    if tab == Tab::Curves {
        d.curves.smoothing = 0.3;
    }
    if tab == Tab::Drugs {
        d.drugs.method = Some("step_grpo".into());
        // By wrong removals, the column this picture is about.
        d.drugs.sort = (9, true);
    }
    let edits = |t: &rxalign_core::Trajectory| {
        let count = |add: bool| {
            t.steps
                .iter()
                .filter(|s| match &s.action {
                    ActionRecord::Add(_) => add,
                    ActionRecord::Remove(_) => !add,
                    _ => false,
                })
                .count()
        };
        (count(true), count(false))
    };
    if let Some(id) = ids.first()
        && let Some(ts) = d.store.run(id).and_then(|r| r.trajectories.value.as_ref())
        && let Some((i, _)) = ts
            .iter()
            .enumerate()
            .filter(|(_, t)| t.method == "step_grpo")
            .max_by_key(|(_, t)| {
                let (a, r) = edits(t);
                (a > 0 && r > 0, a + r)
            })
    {
        d.trajectory.run = Some(id.clone());
        d.trajectory.method = Some("step_grpo".into());
        // The picker lists the visits where the policy edited.
        d.trajectory.filter = rxalign_dashboard::panels::VisitFilter::Edited;
        d.trajectory.visit = i;
    }
}

/// The window's size: the trajectory panel is tall (the visit, the steps,
/// the timeline).
fn size(tab: Tab) -> [f32; 2] {
    match tab {
        Tab::Trajectory => [1400.0, 1450.0],
        _ => [1400.0, 900.0],
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, tab, out] = args.as_slice() else {
        return Err("usage: screenshot RUNS_DIR TAB OUT.png".into());
    };
    let tab = Tab::ALL
        .into_iter()
        .find(|t| t.title().eq_ignore_ascii_case(tab))
        .ok_or_else(|| format!("no tab `{tab}`"))?;
    let mut dashboard = Dashboard::open(PathBuf::from(dir));
    prepare(&mut dashboard, tab);
    let app = App {
        dashboard,
        out: PathBuf::from(out),
        frames: 0,
        shot: Shot::default(),
    };
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default().with_inner_size(size(tab)),
        ..Default::default()
    };
    eframe::run_native("rxalign dashboard", options, Box::new(|_| Ok(Box::new(app))))?;
    Ok(())
}
