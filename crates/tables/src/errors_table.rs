use std::path::Path;
use std::sync::{Arc, Mutex};

use arrow::array::{Array, RecordBatch, StringArray, UInt64Array};

use crate::io::column;
use crate::{TableError, TableWriter, read_table, schema};

/// One failure: a bad file, an image that could not be augmented, a failed batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRecord {
    pub stage: String,
    pub path: Option<String>,
    pub image_id: Option<u64>,
    pub augmentation: Option<String>,
    /// A short machine-readable class, e.g. `decode`, `inference`, `missing-embedding`.
    pub kind: String,
    pub message: String,
}

/// Collects a stage's failures (from any thread) and merges them into `errors.parquet`.
///
/// Re-running a stage replaces that stage's earlier rows and keeps the other stages' rows.
#[derive(Debug)]
pub struct ErrorLog {
    stage: String,
    records: Mutex<Vec<ErrorRecord>>,
}

impl ErrorLog {
    pub fn new(stage: &str) -> Self {
        Self { stage: stage.to_string(), records: Mutex::new(Vec::new()) }
    }

    /// Records a failure and logs it as a warning.
    pub fn record(
        &self,
        path: Option<&str>,
        image_id: Option<u64>,
        augmentation: Option<&str>,
        kind: &str,
        message: String,
    ) {
        tracing::warn!(stage = %self.stage, ?path, ?image_id, ?augmentation, kind, "{message}");
        self.records.lock().expect("error log poisoned").push(ErrorRecord {
            stage: self.stage.clone(),
            path: path.map(str::to_string),
            image_id,
            augmentation: augmentation.map(str::to_string),
            kind: kind.to_string(),
            message,
        });
    }

    pub fn len(&self) -> usize {
        self.records.lock().expect("error log poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes this stage's records into `path`, replacing its earlier rows. Returns the count.
    pub fn save(&self, path: &Path) -> Result<usize, TableError> {
        let mut rows: Vec<ErrorRecord> = if path.exists() {
            read_errors(path)?.into_iter().filter(|r| r.stage != self.stage).collect()
        } else {
            Vec::new()
        };
        let mine = self.records.lock().expect("error log poisoned").clone();
        let count = mine.len();
        rows.extend(mine);
        if rows.is_empty() {
            if path.exists() {
                std::fs::remove_file(path).map_err(|source| TableError::Io { path: path.to_path_buf(), source })?;
            }
            return Ok(0);
        }
        let batch = RecordBatch::try_new(
            schema::errors(),
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.stage.as_str()))),
                Arc::new(rows.iter().map(|r| r.path.as_deref()).collect::<StringArray>()),
                Arc::new(rows.iter().map(|r| r.image_id).collect::<UInt64Array>()),
                Arc::new(rows.iter().map(|r| r.augmentation.as_deref()).collect::<StringArray>()),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.kind.as_str()))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.message.as_str()))),
            ],
        )
        .map_err(|source| TableError::Arrow { path: path.to_path_buf(), source })?;
        let mut writer = TableWriter::create(path, schema::errors())?;
        writer.write(&batch)?;
        writer.finish()?;
        Ok(count)
    }
}

/// Reads every row of an `errors.parquet` file.
pub fn read_errors(path: &Path) -> Result<Vec<ErrorRecord>, TableError> {
    let batch = read_table(path)?;
    let stage: &StringArray = column(&batch, path, "stage")?;
    let file: &StringArray = column(&batch, path, "path")?;
    let image: &UInt64Array = column(&batch, path, schema::IMAGE_ID)?;
    let aug: &StringArray = column(&batch, path, schema::AUGMENTATION)?;
    let kind: &StringArray = column(&batch, path, "kind")?;
    let message: &StringArray = column(&batch, path, "message")?;
    Ok((0..batch.num_rows())
        .map(|i| ErrorRecord {
            stage: stage.value(i).to_string(),
            path: file.is_valid(i).then(|| file.value(i).to_string()),
            image_id: image.is_valid(i).then(|| image.value(i)),
            augmentation: aug.is_valid(i).then(|| aug.value(i).to_string()),
            kind: kind.value(i).to_string(),
            message: message.value(i).to_string(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rerunning_a_stage_replaces_only_its_rows() {
        let dir = std::env::temp_dir().join(format!("clipshift-errors-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("errors.parquet");
        let augment = ErrorLog::new("augment");
        augment.record(Some("bad.jpg"), None, None, "decode", "not a JPEG".into());
        assert_eq!(augment.save(&path).unwrap(), 1);
        let encode = ErrorLog::new("encode");
        encode.record(None, Some(7), Some("blur"), "inference", "boom".into());
        encode.save(&path).unwrap();
        assert_eq!(read_errors(&path).unwrap().len(), 2);
        // encode re-run without failures: only augment's row stays.
        ErrorLog::new("encode").save(&path).unwrap();
        let rows = read_errors(&path).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].path.as_deref(), Some("bad.jpg"));
        assert_eq!(rows[0].image_id, None);
        ErrorLog::new("augment").save(&path).unwrap();
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
