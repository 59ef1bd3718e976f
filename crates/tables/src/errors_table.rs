use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, RecordBatch, StringArray, UInt64Array};

use crate::io::column;
use crate::{TableError, TableWriter, read_table, schema};

/// What went wrong, the same in every stage: the `kind` column of `errors.parquet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A file could not be read (missing, unreadable, an I/O error).
    Read,
    /// A file's bytes are not an image that can be decoded, or decode to no pixels.
    Decode,
    /// A file with the same content as an earlier one; only the first is used.
    Duplicate,
    /// An augmentation's parameters are invalid, so its variant cannot be made or replayed.
    Params,
    /// An `image_id` of one table is not in `images.parquet`.
    MissingImage,
    /// A variant has no row in `embeddings.parquet`, so nothing downstream of it exists.
    MissingEmbedding,
    /// The model failed on a batch; its variants have no embeddings.
    Inference,
    /// A per-image metric could not be computed; its columns are null.
    Metric,
    /// An output file (a saved variant, dumped pixels) could not be written.
    Write,
    /// A report figure could not be drawn; the rest of the report is written.
    Figure,
    /// A captions file, or one of its rows, could not be used; the other captions are.
    Caption,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 11] = [
        Self::Read,
        Self::Decode,
        Self::Duplicate,
        Self::Params,
        Self::MissingImage,
        Self::MissingEmbedding,
        Self::Inference,
        Self::Metric,
        Self::Write,
        Self::Figure,
        Self::Caption,
    ];

    /// The value stored in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Decode => "decode",
            Self::Duplicate => "duplicate",
            Self::Params => "params",
            Self::MissingImage => "missing-image",
            Self::MissingEmbedding => "missing-embedding",
            Self::Inference => "inference",
            Self::Metric => "metric",
            Self::Write => "write",
            Self::Figure => "figure",
            Self::Caption => "caption",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == value)
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One failure: a bad file, an image that could not be augmented, a failed batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRecord {
    pub stage: String,
    pub path: Option<String>,
    pub image_id: Option<u64>,
    pub augmentation: Option<String>,
    pub kind: ErrorKind,
    pub message: String,
}

/// Collects a stage's failures (from any thread) until they are committed with the
/// stage's rows ([`crate::StageParts`]) as the stage's part of `errors.parquet`.
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
        kind: ErrorKind,
        message: String,
    ) {
        tracing::warn!(stage = %self.stage, ?path, ?image_id, ?augmentation, %kind, "{message}");
        self.records.lock().expect("error log poisoned").push(ErrorRecord {
            stage: self.stage.clone(),
            path: path.map(str::to_string),
            image_id,
            augmentation: augmentation.map(str::to_string),
            kind,
            message,
        });
    }

    /// Records not yet taken.
    pub fn len(&self) -> usize {
        self.records.lock().expect("error log poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the records collected so far, leaving the log empty.
    pub fn take(&self) -> Vec<ErrorRecord> {
        std::mem::take(&mut *self.records.lock().expect("error log poisoned"))
    }

    /// Moves `other`'s records (already logged) into this log.
    pub fn append(&self, other: ErrorLog) {
        let records = other.records.into_inner().expect("error log poisoned");
        self.records.lock().expect("error log poisoned").extend(records);
    }
}

/// Writes `records` as one Parquet file at `path`.
pub(crate) fn write_errors(path: &Path, rows: &[ErrorRecord]) -> Result<(), TableError> {
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
    Ok(())
}

/// Reads every row of `errors.parquet` (all stages and shards); none when it does not exist.
pub fn read_errors(table: &Path) -> Result<Vec<ErrorRecord>, TableError> {
    read_error_files(&crate::part_files(table)?)
}

/// Reads every row of the given parts of `errors.parquet`.
pub fn read_error_files(files: &[PathBuf]) -> Result<Vec<ErrorRecord>, TableError> {
    let mut records = Vec::new();
    for path in files {
        let batch = read_table(path)?;
        let stage: &StringArray = column(&batch, path, "stage")?;
        let file: &StringArray = column(&batch, path, "path")?;
        let image: &UInt64Array = column(&batch, path, schema::IMAGE_ID)?;
        let aug: &StringArray = column(&batch, path, schema::AUGMENTATION)?;
        let kind: &StringArray = column(&batch, path, "kind")?;
        let message: &StringArray = column(&batch, path, "message")?;
        for i in 0..batch.num_rows() {
            let kind = ErrorKind::parse(kind.value(i)).ok_or_else(|| TableError::Column {
                path: path.clone(),
                column: "kind".into(),
                message: format!("unknown error kind `{}`", kind.value(i)),
            })?;
            records.push(ErrorRecord {
                stage: stage.value(i).to_string(),
                path: file.is_valid(i).then(|| file.value(i).to_string()),
                image_id: image.is_valid(i).then(|| image.value(i)),
                augmentation: aug.is_valid(i).then(|| aug.value(i).to_string()),
                kind,
                message: message.value(i).to_string(),
            });
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_run_whole_replaces_only_its_rows() {
        let run = crate::RunDir::new(std::env::temp_dir().join(format!("clipshift-errors-{}", std::process::id())));
        run.create().unwrap();
        let augment = ErrorLog::new("augment");
        augment.record(Some("bad.jpg"), None, None, ErrorKind::Decode, "not a JPEG".into());
        crate::replace_stage_errors(&run, "augment", &augment.take()).unwrap();
        assert!(augment.is_empty());
        let report = ErrorLog::new("report");
        report.record(None, Some(7), Some("blur"), ErrorKind::Figure, "boom".into());
        crate::replace_stage_errors(&run, "report", &report.take()).unwrap();
        assert_eq!(read_errors(&run.errors()).unwrap().len(), 2);
        // The report re-run without failures: only augment's row stays.
        crate::replace_stage_errors(&run, "report", &[]).unwrap();
        let rows = read_errors(&run.errors()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].path.as_deref(), Some("bad.jpg"));
        assert_eq!(rows[0].image_id, None);
        assert_eq!(rows[0].kind, ErrorKind::Decode);
        crate::replace_stage_errors(&run, "augment", &[]).unwrap();
        assert!(read_errors(&run.errors()).unwrap().is_empty());
        std::fs::remove_dir_all(run.root()).unwrap();
    }

    #[test]
    fn every_kind_round_trips_through_its_table_value() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ErrorKind::parse("augment"), None);
    }
}
