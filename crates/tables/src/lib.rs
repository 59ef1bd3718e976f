//! clipshift-tables: the contract between the pipeline stages.
//!
//! Owns the run-directory layout, the Arrow schema of every table, atomic file
//! writes (every file of a run is written through [`AtomicFile`]), streaming
//! Parquet writes and reads in bounded batches, tables as directories of part files
//! committed as a stage goes ([`StageParts`]: resume and [`Shard`]s), the shared
//! `errors.parquet` table with its one set of [`ErrorKind`]s, and the typed `run.json`
//! ([`RunManifest`]). It contains no image or model code, so every stage (and
//! external tools) can depend on it cheaply. `docs/tables.md` describes every table.

mod atomic;
mod compare;
mod error;
mod errors_table;
mod groups;
mod hash;
mod io;
mod layout;
mod manifest;
mod merge;
mod parts;
pub mod schema;
mod sources;
mod validate;

pub use atomic::{AtomicFile, write_atomic};
pub use compare::{compare_runs, compare_tables};
pub use error::TableError;
pub use errors_table::{ErrorKind, ErrorLog, ErrorRecord, read_error_files, read_errors};
pub use groups::{ImageGroups, recorded_variants};
pub use hash::Fnv1a;
pub use io::{RowTable, TableWriter, column, count_rows, read_batches, read_files, read_table, read_u64_column};
pub use layout::RunDir;
pub use manifest::{
    AugmentManifest, EncodeManifest, InputsManifest, Lineage, MemberManifest, MetricsManifest, ModelManifest,
    RunManifest, SaeManifest, StageProgress, Start, SuiteManifest, TextManifest, encode_lineage, fingerprint,
};
pub use merge::merge_shards;
pub use parts::{
    COMMIT_SECONDS_ENV, Shard, StageParts, part_files, replace_stage_errors, shard_counts, shard_part_files,
    stage_error_files,
};
pub use sources::SourceImages;
pub use validate::validate_run;

pub use arrow;
