//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use clipshift_augment::Suite;
use clipshift_augment::stage::AugmentConfig;
use clipshift_encode::stage::EncodeConfig;
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

/// The augment stage on `data` into `run` at 224 pixels, unsharded, resuming.
pub(crate) fn augment_config(run: &Path, data: &Path, suite: Suite, seed: u64) -> AugmentConfig {
    AugmentConfig {
        run_dir: run.to_path_buf(),
        data_dir: data.to_path_buf(),
        suite,
        seed,
        image_size: 224,
        max_pixels: clipshift_augment::DEFAULT_MAX_PIXELS,
        save_images: false,
        limit: None,
        shard: clipshift_tables::Shard::WHOLE,
        fresh: false,
    }
}

/// The encode stage of `run` with the tiny model on the CPU, unsharded, resuming.
pub(crate) fn encode_config(run: &Path, batch: usize) -> EncodeConfig {
    EncodeConfig {
        run_dir: run.to_path_buf(),
        model_dir: tiny_model(),
        policy: None,
        session: clipshift_encode::SessionConfig::default(),
        batch,
        dump_pixels: None,
        shard: clipshift_tables::Shard::WHOLE,
        fresh: false,
    }
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
