use std::path::PathBuf;

/// A failure loading the model or runtime, preprocessing, or running inference.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("model {path}: {message}")]
    Model { path: PathBuf, message: String },
    #[error(
        "ONNX Runtime shared library not found ({searched}); run `cargo xtask fetch-runtime` \
         or set ORT_DYLIB_PATH to libonnxruntime.so from the onnxruntime wheel"
    )]
    RuntimeMissing { searched: String },
    #[error("ONNX Runtime: {context}: {message}")]
    Runtime { context: String, message: String },
    #[error("model output `{name}`: {message}")]
    Output { name: String, message: String },
    #[error(transparent)]
    Augment(#[from] clipshift_augment::AugmentError),
    #[error(transparent)]
    Table(#[from] clipshift_tables::TableError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl EncodeError {
    pub(crate) fn runtime(context: impl Into<String>, err: impl std::fmt::Display) -> Self {
        Self::Runtime { context: context.into(), message: err.to_string() }
    }
}
