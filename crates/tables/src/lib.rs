//! clipshift-tables: the contract between the pipeline stages.
//!
//! Owns the run-directory layout, the Arrow schema of every table, atomic
//! streaming Parquet writes, Parquet reads in bounded batches, the shared
//! `errors.parquet` table and the `run.json` manifest. It contains no image or
//! model code, so every stage (and external tools) can depend on it cheaply.

mod error;
mod errors_table;
mod groups;
mod io;
mod layout;
mod manifest;
pub mod schema;
mod sources;

pub use error::TableError;
pub use errors_table::{ErrorLog, ErrorRecord, read_errors};
pub use groups::ImageGroups;
pub use io::{TableWriter, column, read_batches, read_table};
pub use layout::RunDir;
pub use manifest::{read_manifest, update_manifest, write_atomic};
pub use sources::SourceImages;

pub use arrow;
