//! The rxalign dashboard: an egui window over a runs folder.
//!
//! Built as rerun's viewer is: a [`RunStore`] that reads experiments and
//! runs through `rxalign_core::run` and reloads what changed, and one
//! struct per panel with its own state and a `show` method. Nothing here
//! links burn; nothing here writes into a run folder.

mod app;
pub mod panels;
pub mod store;

use std::path::PathBuf;

pub use app::{Dashboard, OpenVisit, Selection, Tab};
pub use store::{Refresh, RunData, RunId, RunStore};

/// What can go wrong opening the window.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("the dashboard window could not be opened: {0}")]
    Window(String),
}

/// Opens the dashboard window on `runs_dir` and returns when it is closed.
pub fn run_native(runs_dir: PathBuf) -> Result<(), DashboardError> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(format!("rxalign dashboard: {}", runs_dir.display()))
            .with_inner_size([1280.0, 820.0]),
        ..Default::default()
    };
    eframe::run_native(
        "rxalign dashboard",
        options,
        Box::new(move |cc| {
            // A change under the folder repaints the window at once.
            let ctx = cc.egui_ctx.clone();
            let wake: store::Wake = Box::new(move || ctx.request_repaint());
            Ok(Box::new(app::Window::new(Dashboard::with_store(
                RunStore::open_watched(runs_dir, Some(wake)),
            ))))
        }),
    )
    .map_err(|e| DashboardError::Window(e.to_string()))
}

pub use eframe::egui;
