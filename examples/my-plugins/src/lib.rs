//! A researcher's own rxalign plugins, one of each kind a study most often
//! adds, registered by [`register`] and named from
//! `experiments/my-experiment.ron`:
//!
//! - [`reward::FBetaReward`], reward term `f_beta`: the F-beta score of the
//!   list, with `beta` as its parameter (below 1 it weighs precision more,
//!   so that a wrong drug costs more than a missing one);
//! - [`start::SafePreviousVisit`], start list `safe_previous_visit`: the
//!   previous visit's drugs without those that interact with one kept;
//! - [`stage::StartListsStage`], stage `start_lists`: scores the run's start
//!   lists as a method of their own, the point every policy edits from;
//! - [`family::DiagnosisLinear`], policy family `diagnosis_linear`: a linear
//!   softmax over the edits, from the visit's diagnoses and the current
//!   list, trained by rxalign's own SFT and (step-wise) GRPO loops.
//!
//! `src/main.rs` is the whole `rxalign` command with them added:
//! `rxalign_cli::App::new().plugin(my_plugins::register).run()`.

pub mod family;
pub mod reward;
pub mod stage;
pub mod start;

use rxalign_env::{RewardTerm, StartList};
use rxalign_experiment::stage::Stage;
use rxalign_experiment::{ExperimentError, Plugins};

/// Registers this crate's kinds on `plugins` (the built-in ones, in
/// `rxalign_cli::App`): each settings type is read, checked and listed by
/// `plugins` like the built-ins'.
pub fn register(plugins: &mut Plugins) -> Result<(), ExperimentError> {
    plugins.reward.register::<reward::FBetaConfig>("f_beta", |c, _| {
        Ok(Box::new(reward::FBetaReward::new(c.beta)?) as Box<dyn RewardTerm>)
    })?;
    plugins
        .init_list
        .register::<start::SafePreviousVisitConfig>("safe_previous_visit", |_, _| {
            Ok(Box::new(start::SafePreviousVisit) as Box<dyn StartList>)
        })?;
    plugins
        .stage
        .register::<stage::StartListsConfig>("start_lists", |c, _| {
            Ok(Box::new(stage::StartListsStage(c)) as Box<dyn Stage>)
        })?;
    plugins
        .policy
        .register_family::<family::DiagnosisLinearConfig>(family::KIND)?;
    Ok(())
}
