use std::path::PathBuf;

/// A failure reading or writing one of the run's tables, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: parquet: {source}")]
    Parquet { path: PathBuf, source: parquet::errors::ParquetError },
    #[error("{path}: arrow: {source}")]
    Arrow { path: PathBuf, source: arrow::error::ArrowError },
    #[error("{path}: column `{column}`: {message}")]
    Column { path: PathBuf, column: String, message: String },
    #[error("{path}: invalid JSON: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    #[error("{path} does not exist: {hint}")]
    Missing { path: PathBuf, hint: String },
    #[error("{path} was computed from other inputs than the run has now ({changes}); re-run the `{stage}` stage")]
    Stale { path: PathBuf, changes: String, stage: String },
    #[error(
        "{path} is incomplete: the `{stage}` stage did not finish (interrupted, or still running); run it again to resume"
    )]
    Incomplete { path: PathBuf, stage: String },
    #[error("another process is running the `{stage}` stage for shard {shard} of this run (it holds {path})")]
    Busy { path: PathBuf, stage: String, shard: String },
    #[error("{path}: {message}")]
    Shards { path: PathBuf, message: String },
    #[error("{path} is a link to {target}, outside the run directory; refusing to write through it")]
    OutsideRun { path: PathBuf, target: PathBuf },
}
