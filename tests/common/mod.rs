//! Helpers shared by the end-to-end tests.

#![allow(dead_code, reason = "each test binary uses some of the helpers")]

use std::path::{Path, PathBuf};

/// The real data kept in the repository for the tests (`tests/data`, see its
/// PROVENANCE.md): present in every clone.
pub fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data")
}

/// The repository's root, where the experiment files' relative paths start.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `rxalign ARGS` run in `dir`.
pub fn rxalign_in(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_rxalign"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

/// `rxalign ARGS` run in `dir`, which must succeed (its standard output and
/// error are shown where it does not).
pub fn ok_in(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = rxalign_in(dir, args);
    assert!(
        out.status.success(),
        "rxalign {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `rxalign ARGS` run from the repository's root.
pub fn rxalign_at_root(args: &[&str]) -> std::process::Output {
    rxalign_in(&root(), args)
}

/// The arguments of `rxalign` that import the MIMIC-III demo of `tests/data`
/// at ATC level 3 with GAMENet's DDI graph into `out`, keeping every
/// patient and every drug (`--min-visits 1 --top-drugs 0`).
pub fn mimic3_demo_import_args(out: &Path) -> Vec<String> {
    let s = data();
    let path = |p: PathBuf| p.to_string_lossy().into_owned();
    vec![
        "data".into(),
        "mimic3".into(),
        "--root".into(),
        path(s.join("mimic-iii-demo-1.4")),
        "--out".into(),
        path(out.to_path_buf()),
        "--ndc-map".into(),
        path(s.join("code-maps-gamenet-safedrug/ndc2atc3_molerec.csv")),
        "--ddi".into(),
        path(s.join("ddi-atc3-twosides/gamenet_ddi_atc3_edges.csv")),
        "--min-visits".into(),
        "1".into(),
        "--top-drugs".into(),
        "0".into(),
    ]
}

/// The environment variable that names a folder of data that may not be
/// redistributed (the WHO ATC index); `.ci/run` sets it to `../shared/data`.
pub const SHARED_DATA_VAR: &str = "RXALIGN_SHARED_DATA";

/// A file in the folder `RXALIGN_SHARED_DATA` names, or `None` (with a note
/// on standard error saying that `test` is skipped) when the variable is not
/// set. A variable that is set but lacks the file fails the test: a
/// misconfigured CI must not pass by skipping.
pub fn shared_file(relative: &str, test: &str) -> Option<PathBuf> {
    let Some(dir) = std::env::var_os(SHARED_DATA_VAR) else {
        eprintln!(
            "skipped {test}: it reads {relative}, which may not be redistributed; set {SHARED_DATA_VAR} to a folder holding it (.ci/run sets ../shared/data)"
        );
        return None;
    };
    let path = PathBuf::from(dir).join(relative);
    assert!(
        path.is_file(),
        "{SHARED_DATA_VAR} is set but {} is missing",
        path.display()
    );
    Some(path)
}
