//! clipshift-console: what a stage binary shows the person running it.
//!
//! Owns the logging set-up (`-v`, `RUST_LOG`), the progress bar every stage draws, the
//! `--shard`/`--fresh` options of the per-image stages, and how a failed stage prints its
//! error chain, so that all stages look and behave alike on a terminal; and the one
//! allocator setting the stages that decode photographs and run a model share
//! ([`map_large_buffers`]). It holds no stage logic and no table or model code.

use clap::ArgAction;
use clipshift_tables::{Shard, Start};
pub use indicatif::ProgressBar;
use indicatif::ProgressStyle;

/// The `-v` flag every stage binary takes (`#[command(flatten)]` it into the CLI).
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct Verbosity {
    /// More logging: -v debug, -vv trace (RUST_LOG, when set, wins).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,
}

impl Verbosity {
    /// The log filter when `RUST_LOG` is unset. ONNX Runtime's own info lines stay hidden
    /// below -vv: they are about the runtime, not the run.
    pub fn default_filter(self) -> &'static str {
        match self.verbose {
            0 => "info,ort=warn",
            1 => "debug,ort=warn",
            _ => "trace",
        }
    }

    /// Sends `tracing` output to stderr, filtered by `RUST_LOG` or else by `-v`.
    pub fn init_logging(self) {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(self.default_filter()));
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
}

/// The options of every per-image stage on what to compute: one shard, and whether to
/// keep what an earlier run committed (`#[command(flatten)]` it into the CLI).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ResumeArgs {
    /// Handle only shard K of N (from 0), chosen by a hash of each image's relative path;
    /// the shards of one run share its directory, and the report merges them.
    #[arg(long, value_name = "K/N", default_value = "0/1")]
    pub shard: Shard,
    /// Recompute from scratch. Without it a stage resumes after its last commit, or does
    /// nothing when it already finished with the same settings.
    #[arg(long)]
    pub fresh: bool,
}

impl ResumeArgs {
    /// ` (shard K/N)` for a shard, nothing for the whole run.
    pub fn shard_label(&self) -> String {
        if self.shard.is_whole() { String::new() } else { format!(" (shard {})", self.shard) }
    }
}

/// How the summary line says a stage started, when not from scratch.
pub fn start_note(start: Start) -> &'static str {
    match start {
        Start::Fresh => "",
        Start::Resume => " (resumed)",
        Start::Done => " (already finished; nothing to do)",
    }
}

/// A progress bar of `len` images on stderr, prefixed with the stage's name; it draws
/// nothing when stderr is not a terminal (a log file, a CI job, a Slurm array task).
pub fn progress_bar(len: u64, stage: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>9} [{bar:40}] {pos}/{len} images {elapsed} (eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(stage.to_string());
    bar
}

/// The size from which [`map_large_buffers`] has glibc map an allocation on its own.
pub const MAPPED_FROM_BYTES: usize = 4 << 20;

/// How much free memory at the top of a heap glibc keeps after [`map_large_buffers`]
/// rather than returning it: twice the mapping threshold, glibc's own pairing.
pub const KEPT_ON_TOP_BYTES: usize = 2 * MAPPED_FROM_BYTES;

/// Has glibc give every allocation of [`MAPPED_FROM_BYTES`] or more its own mapping, so
/// that it returns to the system when freed, unless `MALLOC_MMAP_THRESHOLD_` is set; and
/// keep up to [`KEPT_ON_TOP_BYTES`] of free heap top, unless `MALLOC_TRIM_THRESHOLD_` is set.
///
/// Why: glibc raises its mapping threshold to the size of each mapped buffer freed (up
/// to 32 MiB), after which decoded photographs and batch tensors come from the heap and
/// stay there, fragmented. `clipshift-fused`'s peak RSS then varied from 0.82 to 1.10 GB
/// between identical runs of 48 photographs with a ViT-B/32; with a fixed 4 MiB it was
/// 0.80-0.88 GB at the same speed (128 KiB, glibc's initial value, gave 0.77 GB but 5%
/// slower: three times the page faults). A cluster job asks for a peak it can trust.
/// Fixing the threshold also stops glibc from raising the trim threshold with it, which
/// then stays at 128 KiB: the heap gave back and faulted in again the planes the pixel
/// metrics allocate per variant (half the system time of `clipshift-fused` with
/// the tiny model), so the trim threshold is set as glibc would pair it.
///
/// Call it in `main` after logging is set up, before any work starts; elsewhere than
/// on glibc it does nothing.
pub fn map_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (variable, parameter, bytes) in [
        ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, MAPPED_FROM_BYTES),
        ("MALLOC_TRIM_THRESHOLD_", libc::M_TRIM_THRESHOLD, KEPT_ON_TOP_BYTES),
    ] {
        if std::env::var_os(variable).is_some() {
            continue;
        }
        let value = libc::c_int::try_from(bytes).expect("the threshold fits a C int");
        // SAFETY: mallopt only sets an allocator parameter; it is called before any thread
        // that allocates starts, and glibc serialises it with malloc anyway.
        #[allow(unsafe_code)]
        let accepted = unsafe { libc::mallopt(parameter, value) };
        if accepted != 1 {
            tracing::warn!("glibc refused {variable} {value}: the peak memory may vary between runs");
        }
    }
}

/// The exit status of a stage that finished but recorded failures (rows of
/// `errors.parquet`): its results are complete for every other input.
pub const EXIT_RECORDED_ERRORS: i32 = 3;

/// The exit status of a stage binary: 0 when it finished with nothing recorded in
/// `errors.parquet`, [`EXIT_RECORDED_ERRORS`] when it finished and recorded failures,
/// and 1 when the stage itself failed (after printing `error: ` and the cause chain).
pub fn exit_status(result: anyhow::Result<usize>) -> i32 {
    match result {
        Ok(0) => 0,
        Ok(_) => EXIT_RECORDED_ERRORS,
        Err(err) => {
            eprintln!("error: {err:#}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        verbosity: Verbosity,
    }

    #[test]
    fn the_exit_status_says_whether_errors_were_recorded() {
        assert_eq!(exit_status(Ok(0)), 0);
        assert_eq!(exit_status(Ok(2)), EXIT_RECORDED_ERRORS);
        assert_eq!(exit_status(Err(anyhow::anyhow!("no run directory"))), 1);
    }

    #[test]
    fn each_v_raises_the_default_level() {
        let level = |args: &[&str]| Cli::parse_from(args).verbosity.default_filter();
        assert_eq!(level(&["stage"]), "info,ort=warn");
        assert_eq!(level(&["stage", "-v"]), "debug,ort=warn");
        assert_eq!(level(&["stage", "-vv"]), "trace");
        assert_eq!(level(&["stage", "--verbose", "--verbose", "--verbose"]), "trace");
    }
}
