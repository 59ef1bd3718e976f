//! clipshift-encode: the model sidecar, CLIP preprocessing, the ONNX Runtime session
//! (CPU, or CUDA behind the `cuda` feature), batched inference, the encode stage, and
//! the text tower (tokenizer and session) the text stage uses.
//!
//! This is the only crate that links ONNX Runtime. It loads the runtime's shared library
//! dynamically (from `ORT_DYLIB_PATH` or the workspace cache that `cargo xtask
//! fetch-runtime` fills) and never downloads anything itself.

mod bicubic;
pub mod cli;
mod error;
mod model;
mod preprocess;
mod runtime;
mod session;
pub mod stage;
mod text;

pub use error::EncodeError;
pub use model::{HeadSpec, ModelSpec, ResizePolicy, TextSpec, file_sha256};
pub use preprocess::{Preprocessor, clip_resize_crop};
pub use runtime::{Device, find_runtime_library};
pub use session::{BatchOutput, Encoder, InputPool, SessionConfig};
pub use text::{TextEncoder, Tokens};
