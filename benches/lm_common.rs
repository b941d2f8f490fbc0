//! What the language-model benches share. They belong to different crates
//! (`lm_throughput` to rxalign-lm, `lm_grpo` to rxalign-train), so each
//! includes this file as a module (`#[path]`).

use std::path::PathBuf;

/// The converted SmolLM2 folder, from `RXALIGN_LM_DIR`; `None` when it is
/// not set, saying that `bench` skips.
pub fn model_dir(bench: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("RXALIGN_LM_DIR").map(PathBuf::from);
    if dir.is_none() {
        eprintln!("{bench}: skipped, RXALIGN_LM_DIR is not set (the converted SmolLM2 folder, see .ci/run)");
    }
    dir
}

/// Makes this thread one of `flex`'s threads, as `rxalign` makes its own
/// (`rxalign_policy::device::join_cpu_pool`, a floor above rxalign-lm,
/// which says why); call it before anything uses rayon.
pub fn join_cpu_pool() {
    rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global()
        .expect("the bench builds rayon's pool before anything uses it");
}

/// burn's `flex` threads: `RAYON_NUM_THREADS`, else every core (the
/// PyTorch references read the same variable).
pub fn threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
