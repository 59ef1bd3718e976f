//! Reading the run directory with polars and writing outputs atomically.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::ReportError;

/// Lazily scan `dir/name` (a Parquet table).
pub(crate) fn scan(dir: &Path, name: &str) -> Result<LazyFrame, ReportError> {
    let path = dir.join(name);
    if !path.is_file() {
        return Err(ReportError::io(&path, std::io::Error::new(std::io::ErrorKind::NotFound, "table not found")));
    }
    let pl = PlRefPath::try_from_path(&path).map_err(ReportError::polars(name))?;
    LazyFrame::scan_parquet(pl, ScanArgsParquet::default()).map_err(ReportError::polars(name))
}

/// Temporary sibling of `path`, so the final rename stays on one filesystem.
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Write bytes atomically: temp file in the same directory, fsync, rename.
pub(crate) fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let tmp = temp_path(path);
    let res = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res.map_err(|e| ReportError::io(path, e))
}

/// Write a DataFrame as Parquet atomically.
pub(crate) fn write_parquet(path: &Path, df: &mut DataFrame) -> Result<(), ReportError> {
    let tmp = temp_path(path);
    let name = path.display().to_string();
    let res = (|| -> Result<(), ReportError> {
        let f = fs::File::create(&tmp).map_err(|e| ReportError::io(&tmp, e))?;
        ParquetWriter::new(f).finish(df).map_err(ReportError::polars(name.clone()))?;
        fs::rename(&tmp, path).map_err(|e| ReportError::io(path, e))
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

pub(crate) fn col_f64(df: &DataFrame, table: &str, name: &str) -> Result<Vec<Option<f64>>, ReportError> {
    let c = df.column(name).map_err(|_| ReportError::MissingColumn { table: table.into(), column: name.into() })?;
    let c = c.cast(&DataType::Float64).map_err(ReportError::polars(table))?;
    Ok(c.f64().map_err(ReportError::polars(table))?.iter().map(|v| v.filter(|x| !x.is_nan())).collect())
}

pub(crate) fn col_u64(df: &DataFrame, table: &str, name: &str) -> Result<Vec<u64>, ReportError> {
    let c = df.column(name).map_err(|_| ReportError::MissingColumn { table: table.into(), column: name.into() })?;
    let c = c.cast(&DataType::UInt64).map_err(ReportError::polars(table))?;
    Ok(c.u64().map_err(ReportError::polars(table))?.iter().map(|v| v.unwrap_or(0)).collect())
}

pub(crate) fn col_str(df: &DataFrame, table: &str, name: &str) -> Result<Vec<String>, ReportError> {
    let c = df.column(name).map_err(|_| ReportError::MissingColumn { table: table.into(), column: name.into() })?;
    Ok(c.str().map_err(ReportError::polars(table))?.iter().map(|v| v.unwrap_or("").to_owned()).collect())
}

pub(crate) fn col_opt_str(df: &DataFrame, table: &str, name: &str) -> Result<Vec<Option<String>>, ReportError> {
    let c = df.column(name).map_err(|_| ReportError::MissingColumn { table: table.into(), column: name.into() })?;
    Ok(c.str().map_err(ReportError::polars(table))?.iter().map(|v| v.map(str::to_owned)).collect())
}

/// Build a DataFrame from named columns. NaN (an undefined statistic, such as
/// the std of one value) becomes null: no NaN reaches a table.
pub(crate) fn frame(table: &str, cols: Vec<Column>) -> Result<DataFrame, ReportError> {
    let cols = cols
        .into_iter()
        .map(|c| match c.f64() {
            Ok(ca) if ca.iter().any(|v| v.is_some_and(f64::is_nan)) => {
                let v: Vec<Option<f64>> = ca.iter().map(|v| v.filter(|x| !x.is_nan())).collect();
                Column::new(c.name().clone(), v)
            }
            _ => c,
        })
        .collect();
    DataFrame::new_infer_height(cols).map_err(ReportError::polars(table))
}
