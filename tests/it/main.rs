//! End-to-end tests: the whole pipeline on a few sample images with the tiny model,
//! each stage re-run alone from the run directory, and bad input.
//!
//! Needs ONNX Runtime: run through `cargo xtask test`, which provisions it and builds
//! the stage binaries first.

mod bad_input;
mod pipeline;
mod resume;
mod support;
