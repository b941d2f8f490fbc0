//! Helpers shared by the end-to-end tests.

use std::path::PathBuf;

/// `../shared/data` beside the workspace, or `RXALIGN_SHARED_DATA`.
pub fn shared() -> PathBuf {
    let dir = std::env::var_os("RXALIGN_SHARED_DATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        PathBuf::from,
    );
    assert!(
        dir.join("PROVENANCE.md").is_file(),
        "the shared data folder is missing at {}: clone the project beside shared/ or set RXALIGN_SHARED_DATA",
        dir.display()
    );
    dir
}
