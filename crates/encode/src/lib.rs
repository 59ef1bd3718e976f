//! clipshift-encode: the model sidecar, CLIP preprocessing, the ONNX Runtime session
//! (CPU, or CUDA behind the `cuda` feature), batched inference, and the encode stage.
//!
//! This is the only crate that links ONNX Runtime. It loads the runtime's shared library
//! dynamically (from `ORT_DYLIB_PATH` or the workspace cache that `cargo xtask
//! fetch-runtime` fills) and never downloads anything itself.

mod bicubic;
mod error;
mod model;
mod preprocess;
mod runtime;
mod session;
pub mod stage;

pub use error::EncodeError;
pub use model::{ModelSpec, ResizePolicy};
pub use preprocess::{Preprocessor, clip_resize_crop};
pub use runtime::{Device, find_runtime_library};
pub use session::{BatchOutput, Encoder, SessionConfig};
