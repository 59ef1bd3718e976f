use std::path::PathBuf;

/// Everything that can go wrong while loading, augmenting or replaying an image.
#[derive(Debug, thiserror::Error)]
pub enum AugmentError {
    #[error("cannot read image {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot decode image {path}: {source}")]
    Decode { path: PathBuf, source: image::ImageError },
    #[error("cannot decode image {path}: {message}")]
    Jpeg { path: PathBuf, message: String },
    #[error("image {path} is empty ({width}x{height})")]
    Empty { path: PathBuf, width: u32, height: u32 },
    #[error(
        "image {path} has {width}x{height} pixels, more than the limit of {max_pixels} (a decompression bomb?); \
         raise it with --max-pixels if the file is trusted"
    )]
    TooManyPixels { path: PathBuf, width: u32, height: u32, max_pixels: u64 },
    #[error("{path}: the file name is not valid UTF-8, which the tables' path column needs; rename the file")]
    PathNotUtf8 { path: PathBuf },
    #[error("augmentation {augmentation}: invalid parameters: {message}")]
    InvalidParams { augmentation: String, message: String },
    #[error("suite {origin}: {message}")]
    Suite { origin: String, message: String },
    #[error(transparent)]
    Table(#[from] clipshift_tables::TableError),
    #[error("cannot encode PNG for image {image_id} / {augmentation}: {source}")]
    EncodePng { image_id: u64, augmentation: String, source: image::ImageError },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl AugmentError {
    /// The `errors.parquet` kind of this failure when it is recorded for one image.
    pub fn kind(&self) -> clipshift_tables::ErrorKind {
        use clipshift_tables::ErrorKind;
        match self {
            Self::Read { .. } => ErrorKind::Read,
            Self::Decode { .. } | Self::Jpeg { .. } | Self::Empty { .. } | Self::TooManyPixels { .. } => {
                ErrorKind::Decode
            }
            Self::PathNotUtf8 { .. } => ErrorKind::Read,
            Self::InvalidParams { .. } | Self::Suite { .. } => ErrorKind::Params,
            Self::EncodePng { .. } | Self::Io { .. } | Self::Table(_) => ErrorKind::Write,
        }
    }
}
