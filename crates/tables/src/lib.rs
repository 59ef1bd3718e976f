//! clipshift-tables: the contract between the pipeline stages.
//!
//! Owns the run-directory layout, the Arrow schema of every table, atomic file
//! writes (every file of a run is written through [`AtomicFile`]), streaming
//! Parquet writes and reads in bounded batches, the shared `errors.parquet`
//! table with its one set of [`ErrorKind`]s, and the typed `run.json`
//! ([`RunManifest`]). It contains no image or model code, so every stage (and
//! external tools) can depend on it cheaply. `docs/tables.md` describes every table.

mod atomic;
mod error;
mod errors_table;
mod groups;
mod io;
mod layout;
mod manifest;
pub mod schema;
mod sources;

pub use atomic::{AtomicFile, write_atomic};
pub use error::TableError;
pub use errors_table::{ErrorKind, ErrorLog, ErrorRecord, read_errors};
pub use groups::{ImageGroups, recorded_variants};
pub use io::{TableWriter, column, read_batches, read_table};
pub use layout::RunDir;
pub use manifest::{
    AugmentManifest, EncodeManifest, InputsManifest, Lineage, MemberManifest, MetricsManifest, ModelManifest,
    RunManifest, SuiteManifest,
};
pub use sources::SourceImages;

pub use arrow;
