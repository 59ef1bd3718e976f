//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use clipshift_tables::arrow::array::RecordBatch;
use clipshift_tables::read_table;

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// A fresh empty directory under the system temp dir.
pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clipshift-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The first `n` sample photographs (sorted), copied into `dir`.
pub(crate) fn copy_samples(dir: &Path, n: usize) -> Vec<PathBuf> {
    let samples = workspace_root().join("data/samples");
    let mut files = clipshift_augment::scan_images(&samples).unwrap();
    assert!(files.len() >= n, "data/samples has {} images, need {n}", files.len());
    files.truncate(n);
    files
        .iter()
        .map(|f| {
            let to = dir.join(f.file_name().unwrap());
            std::fs::copy(f, &to).unwrap();
            to
        })
        .collect()
}

pub(crate) fn tiny_model() -> PathBuf {
    workspace_root().join("models/tiny-clip")
}

pub(crate) fn table(path: &Path) -> RecordBatch {
    read_table(path).unwrap_or_else(|e| panic!("{e}"))
}

/// A stage binary built by `cargo xtask test` (target/debug/clipshift-<stage>).
pub(crate) fn stage_binary(stage: &str) -> Command {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
    let bin = target.join("debug").join(format!("clipshift-{stage}"));
    assert!(bin.exists(), "{} is missing: run the tests through `cargo xtask test`", bin.display());
    Command::new(bin)
}

pub(crate) fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
