//! The window: a tab per panel over one store and one selection.

use std::collections::BTreeSet;
use std::path::PathBuf;

use eframe::egui;

use crate::panels::{AblationPanel, CurvesPanel, DrugsPanel, RunsPanel, TrajectoryPanel};
use crate::store::{Refresh, RunId, RunStore};

/// The panels, one tab each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Runs,
    Curves,
    Trajectory,
    Ablation,
    Drugs,
}

impl Tab {
    pub const ALL: [Tab; 5] = [Tab::Runs, Tab::Curves, Tab::Trajectory, Tab::Ablation, Tab::Drugs];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Runs => "Runs",
            Tab::Curves => "Curves",
            Tab::Trajectory => "Trajectory",
            Tab::Ablation => "Ablation",
            Tab::Drugs => "Drugs",
        }
    }
}

/// What the panels share: the runs ticked in the runs panel, the run in
/// focus, and a request to open a visit in the trajectory panel.
#[derive(Debug, Default)]
pub struct Selection {
    pub runs: BTreeSet<RunId>,
    pub focus: Option<RunId>,
    /// A visit to open in the trajectory panel (set by the drugs panel).
    pub open_visit: Option<OpenVisit>,
}

/// A recorded visit to open: the run, the visit and, where it matters, the
/// method whose trajectory to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenVisit {
    pub run: RunId,
    pub visit: String,
    pub method: Option<String>,
}

impl Selection {
    /// The focused run, else the first ticked one.
    pub fn current(&self) -> Option<&RunId> {
        self.focus.as_ref().or_else(|| self.runs.iter().next())
    }
}

/// The whole dashboard, without its window: what tests drive.
#[derive(Debug)]
pub struct Dashboard {
    pub store: RunStore,
    pub selection: Selection,
    pub tab: Tab,
    pub runs: RunsPanel,
    pub curves: CurvesPanel,
    pub trajectory: TrajectoryPanel,
    pub ablation: AblationPanel,
    pub drugs: DrugsPanel,
}

impl Dashboard {
    pub fn open(runs_dir: PathBuf) -> Self {
        Self::with_store(RunStore::open(runs_dir))
    }

    pub fn with_store(store: RunStore) -> Self {
        Self {
            store,
            selection: Selection::default(),
            tab: Tab::Runs,
            runs: RunsPanel::default(),
            curves: CurvesPanel::default(),
            trajectory: TrajectoryPanel::default(),
            ablation: AblationPanel::default(),
            drugs: DrugsPanel::default(),
        }
    }

    /// One frame: polls the store, then the tab bar and the open panel.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        self.store.poll();
        ui.horizontal(|ui| {
            for tab in Tab::ALL {
                ui.selectable_value(&mut self.tab, tab, tab.title());
            }
            ui.separator();
            ui.label(format!("runs folder: {}", self.store.root().display()));
            match self.store.refresh_mode() {
                Refresh::Watching => ui.label("live (watching for changes)"),
                Refresh::Polling => ui.label("live (looking every second)"),
                Refresh::Fallback(why) => ui
                    .label("live (looking every second)")
                    .on_hover_text(format!("watching the folder failed: {why}")),
            };
        });
        ui.separator();
        if let Some(notice) = &self.store.notice {
            ui.colored_label(ui.visuals().warn_fg_color, notice);
        }
        if self.selection.open_visit.is_some() {
            self.tab = Tab::Trajectory;
        }
        let (store, sel) = (&self.store, &mut self.selection);
        match self.tab {
            Tab::Runs => self.runs.show(ui, store, sel),
            Tab::Curves => self.curves.show(ui, store, sel),
            Tab::Trajectory => self.trajectory.show(ui, store, sel),
            Tab::Ablation => self.ablation.show(ui, store, sel),
            Tab::Drugs => self.drugs.show(ui, store, sel),
        }
    }
}

/// The native window around a [`Dashboard`].
#[derive(Debug)]
pub(crate) struct Window {
    dashboard: Dashboard,
}

impl Window {
    pub(crate) fn new(dashboard: Dashboard) -> Self {
        Self { dashboard }
    }
}

impl eframe::App for Window {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        egui::CentralPanel::default().show(ui, |ui| self.dashboard.ui(ui));
        // Live runs: the watcher repaints on a change; look again anyway
        // after the polling (or backstop) interval.
        ui.ctx().request_repaint_after(self.dashboard.store.next_look());
    }
}
