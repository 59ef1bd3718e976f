//! Integration tests of clipshift-augment: agreement with albumentations / OpenCV on the
//! committed reference fixtures (`reference/generate.py`), sampling distributions,
//! replay from Params JSON, and suite parsing.

mod fixtures;
mod floor;
mod golden;
mod jpeg;
mod reference;
mod replay;
mod sampling;
mod suites;
