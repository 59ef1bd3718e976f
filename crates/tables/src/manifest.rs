//! `run.json`: the resolved configuration of a run, merged into by each stage.

use std::io::Write;
use std::path::Path;

use serde_json::{Map, Value};

use crate::TableError;

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TableError> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".partial");
    let tmp = path.with_file_name(tmp_name);
    let io = |source| TableError::Io { path: path.to_path_buf(), source };
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Reads `run.json`; an absent file reads as an empty object.
pub fn read_manifest(path: &Path) -> Result<Map<String, Value>, TableError> {
    if !path.exists() {
        return Ok(Map::new());
    }
    let text = std::fs::read_to_string(path).map_err(|source| TableError::Io { path: path.to_path_buf(), source })?;
    match serde_json::from_str(&text).map_err(|source| TableError::Json { path: path.to_path_buf(), source })? {
        Value::Object(map) => Ok(map),
        _ => Err(TableError::Column {
            path: path.to_path_buf(),
            column: "<root>".into(),
            message: "expected a JSON object".into(),
        }),
    }
}

/// Sets top-level keys of `run.json` (creating it if needed), keeping the others.
pub fn update_manifest(path: &Path, entries: Map<String, Value>) -> Result<(), TableError> {
    let mut manifest = read_manifest(path)?;
    manifest.extend(entries);
    let text = serde_json::to_string_pretty(&Value::Object(manifest))
        .map_err(|source| TableError::Json { path: path.to_path_buf(), source })?;
    write_atomic(path, text.as_bytes())
}
