//! clipshift-text: the text stage. With the model's text tower (exported beside the
//! vision tower) it embeds a label set under prompt templates, the suite's keyword
//! prompts and the data's captions, once each (`text_embeddings.parquet`), and compares
//! every stored image embedding with them: zero-shot labels and how augmentations move
//! them (`zero_shot.parquet`), the change of similarity to each keyword prompt
//! (`keyword_alignment.parquet`), and similarity to and retrieval of each image's own
//! caption (`caption_alignment.parquet`).
//!
//! It runs on the whole run, after every shard's encode, reads `embeddings.parquet` and
//! never an image; a model without a text tower skips it with one line saying why.

mod align;
mod prompts;
pub mod stage;

pub use prompts::{DEFAULT_TEMPLATE, LabelSet};

use std::path::PathBuf;

/// A failure of the text stage.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error(transparent)]
    Table(#[from] clipshift_tables::TableError),
    #[error(transparent)]
    Encode(#[from] clipshift_encode::EncodeError),
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Config(String),
}
