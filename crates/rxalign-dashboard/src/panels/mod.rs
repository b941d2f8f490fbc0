//! One struct per panel, each with its own state and a `show` method that
//! reads the store and the shared selection.

mod ablation;
mod curves;
mod drugs;
mod runs;
mod trajectory;

pub use ablation::{AblationPanel, AblationTable, PlaneMode, latex_table};
pub use curves::{Band, CurvesPanel, Series, XAxis, decimate, series, smooth};
pub use drugs::{DrugRow, DrugsPanel, EditKind, add_edits, drug_rows, edit_visits};
pub use runs::{RunsPanel, state_label};
pub use trajectory::{
    CellState, NEGATED_COLOUR, TrajectoryPanel, VisitFilter, last_trained_method, mention_colour, note_marks,
    note_segments, timeline,
};

use eframe::egui::{self, Color32};

/// `text` with each character the bundled fonts cannot draw written as
/// its escape (`\u{2190}`), so that text from outside (what a generative
/// policy wrote) is never drawn with a missing-glyph box.
pub fn drawable(ui: &egui::Ui, text: &str) -> String {
    let font = egui::TextStyle::Body.resolve(ui.style());
    ui.ctx().fonts_mut(|f| {
        text.chars()
            .map(|c| {
                if c.is_whitespace() || f.has_glyph(&font, c) {
                    c.to_string()
                } else {
                    c.escape_unicode().to_string()
                }
            })
            .collect()
    })
}

/// A table whose first column stays in place while the others scroll
/// horizontally, within the visible width: `cell(ui, row, column)` draws
/// one cell, row 0 being the header. Cells are one line each (a label or a button), so the rows of
/// the two halves line up.
pub fn pinned_table(
    ui: &mut egui::Ui,
    id: &str,
    rows: usize,
    columns: usize,
    mut cell: impl FnMut(&mut egui::Ui, usize, usize),
) {
    let text = ui.text_style_height(&egui::TextStyle::Button);
    let height = ui
        .spacing()
        .interact_size
        .y
        .max(text + 2.0 * ui.spacing().button_padding.y);
    ui.horizontal_top(|ui| {
        egui::Grid::new((id, "pinned"))
            .striped(true)
            .min_row_height(height)
            .show(ui, |ui| {
                for r in 0..rows {
                    cell(ui, r, 0);
                    ui.end_row();
                }
            });
        // The scrolled half ends where the window (or the panel's view)
        // does: a wider line above the table (a definition in a grid, say)
        // widens the ui past the window, and a scroll area that took that
        // width would be cut at the window's edge with its scroll bar out
        // of sight.
        let visible = (ui.clip_rect().right() - ui.cursor().left()).max(4.0 * height);
        egui::ScrollArea::horizontal()
            .id_salt((id, "scrolled"))
            .max_width(visible)
            .show(ui, |ui| {
                egui::Grid::new((id, "scrolled grid"))
                    .striped(true)
                    .min_row_height(height)
                    .show(ui, |ui| {
                        for r in 0..rows {
                            for c in 1..columns {
                                cell(ui, r, c);
                            }
                            ui.end_row();
                        }
                    });
            });
    });
}

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
