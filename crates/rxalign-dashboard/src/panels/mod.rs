//! One struct per panel, each with its own state and a `show` method that
//! reads the store and the shared selection.

mod ablation;
mod curves;
mod drugs;
mod runs;
mod trajectory;

pub use ablation::{AblationPanel, AblationTable, PlaneMode, latex_table};
pub use curves::{Band, CurvesPanel, Series, XAxis, decimate, series, smooth};
pub use drugs::{DrugRow, DrugsPanel, add_edits, drug_rows};
pub use runs::{RunsPanel, state_label};
pub use trajectory::{CellState, TrajectoryPanel, mention_colour, note_segments, timeline};

use eframe::egui::Color32;

/// A fixed palette for series and groups, told apart on a light or dark
/// background.
pub fn palette(i: usize) -> Color32 {
    const COLOURS: [Color32; 8] = [
        Color32::from_rgb(31, 119, 180),
        Color32::from_rgb(255, 127, 14),
        Color32::from_rgb(44, 160, 44),
        Color32::from_rgb(214, 39, 40),
        Color32::from_rgb(148, 103, 189),
        Color32::from_rgb(140, 86, 75),
        Color32::from_rgb(227, 119, 194),
        Color32::from_rgb(23, 190, 207),
    ];
    COLOURS[i % COLOURS.len()]
}
