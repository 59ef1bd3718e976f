//! clipshift-sae: which components of the model move under augmentation. A TopK sparse
//! autoencoder (SAE) on the last block's class-token state splits each state into a few
//! active latents; the stage records them for every variant (`sae_latents.parquet`),
//! attributes each variant's cosine drop to the latents by the closed-form gradient
//! through the model's head (`component_attribution.parquet`), checks the attribution
//! by restoring latents in its order against baselines (`faithfulness.parquet`), and
//! labels every latent by its decoder direction through the head against a concept
//! vocabulary embedded by the text tower (`latent_labels.parquet`). `train` fits an SAE
//! on a run's states with candle. The definitions are in docs/sae.md.

mod attribution;
mod code;
mod labels;
mod linalg;
pub mod stage;
pub mod train;
mod weights;

pub use attribution::{LatentAttribution, Lens, Order, State, faithfulness, restore_counts};
pub use code::Code;
pub use labels::Concepts;
pub use weights::{Activation, Head, InputNorm, Sae};

use std::path::PathBuf;

/// A failure of the SAE stage or of training.
#[derive(Debug, thiserror::Error)]
pub enum SaeError {
    #[error(transparent)]
    Table(#[from] clipshift_tables::TableError),
    #[error(transparent)]
    Encode(#[from] clipshift_encode::EncodeError),
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("tensor computation failed: {0}")]
    Tensor(String),
    #[error("{0}")]
    Config(String),
}
