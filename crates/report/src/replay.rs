//! Figures that need pixels: the augmentation gallery and attention overlays.
//! Pixels come from the `png` column of `augmentations.parquet` when saved.

use std::path::Path;

use crate::figures::{Ctx, Figure};
use crate::run_info::RunInfo;
use crate::{ReportConfig, ReportError};

pub(crate) fn gallery(_ctx: &Ctx<'_>, _run: &RunInfo, _dir: &Path, _config: &ReportConfig) -> Result<Option<Figure>, ReportError> {
    Ok(None)
}

pub(crate) fn attention_overlays(_ctx: &Ctx<'_>, _run: &RunInfo, _dir: &Path, _config: &ReportConfig) -> Result<Option<Figure>, ReportError> {
    Ok(None)
}
