use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::validate::{check_schema, check_values, plain_batch, plain_schema};
use crate::{AtomicFile, TableError, part_files};

/// Rows per Parquet row group: bounded memory on write, and useful pruning on read.
const ROW_GROUP_ROWS: usize = 4096;

/// Streams record batches into a Parquet file that appears atomically ([`AtomicFile`]):
/// readers never see a half-written table, and an interrupted stage leaves the
/// previous table intact.
pub struct TableWriter {
    target: PathBuf,
    writer: ArrowWriter<AtomicFile>,
    rows: usize,
}

impl TableWriter {
    pub fn create(target: &Path, schema: SchemaRef) -> Result<Self, TableError> {
        let file = AtomicFile::create(target)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let writer = ArrowWriter::try_new(file, schema, Some(props))
            .map_err(|source| TableError::Parquet { path: target.to_path_buf(), source })?;
        Ok(Self { target: target.to_path_buf(), writer, rows: 0 })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), TableError> {
        self.rows += batch.num_rows();
        self.writer.write(batch).map_err(|source| TableError::Parquet { path: self.target.clone(), source })
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Closes the file and commits it over the target. Returns the row count.
    pub fn finish(self) -> Result<usize, TableError> {
        let file =
            self.writer.into_inner().map_err(|source| TableError::Parquet { path: self.target.clone(), source })?;
        file.commit()?;
        Ok(self.rows)
    }
}

/// A table written from rows of type `R` as they arrive: buffered, and written as one
/// record batch (by `columns`) whenever enough have gathered.
pub struct RowTable<R> {
    schema: SchemaRef,
    writer: TableWriter,
    rows: Vec<R>,
    columns: fn(&[R]) -> Vec<arrow::array::ArrayRef>,
}

impl<R> RowTable<R> {
    /// Rows buffered before they are written.
    const FLUSH_ROWS: usize = 65_536;

    pub fn create(
        target: &Path,
        schema: SchemaRef,
        columns: fn(&[R]) -> Vec<arrow::array::ArrayRef>,
    ) -> Result<Self, TableError> {
        Ok(Self { writer: TableWriter::create(target, schema.clone())?, schema, rows: Vec::new(), columns })
    }

    pub fn extend(&mut self, rows: impl IntoIterator<Item = R>) -> Result<(), TableError> {
        self.rows.extend(rows);
        if self.rows.len() >= Self::FLUSH_ROWS { self.flush() } else { Ok(()) }
    }

    fn flush(&mut self) -> Result<(), TableError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let batch = RecordBatch::try_new(self.schema.clone(), (self.columns)(&self.rows))
            .map_err(|source| TableError::Arrow { path: self.writer.target.clone(), source })?;
        self.writer.write(&batch)?;
        self.rows.clear();
        Ok(())
    }

    /// Writes what is left and commits the table. Returns the row count.
    pub fn finish(mut self) -> Result<usize, TableError> {
        self.flush()?;
        self.writer.finish()
    }
}

/// Reads a table (a directory of parts, or one Parquet file) in batches of at most
/// `batch_rows` rows, so memory stays bounded by the batch and not by the table.
pub fn read_batches(
    table: &Path,
    batch_rows: usize,
) -> Result<impl Iterator<Item = Result<RecordBatch, TableError>> + Send + use<>, TableError> {
    read_files(part_files(table)?, batch_rows, None)
}

/// The rows of `files` (parts of one table) in order, in batches of at most `batch_rows`,
/// of only the named top-level `columns` (all when `None`): the others are never decoded,
/// which matters for wide columns such as per-layer states.
pub fn read_files(
    files: Vec<PathBuf>,
    batch_rows: usize,
    columns: Option<&[&str]>,
) -> Result<impl Iterator<Item = Result<RecordBatch, TableError>> + Send + use<>, TableError> {
    let readers = files.iter().map(|path| read_file(path, batch_rows, columns)).collect::<Result<Vec<_>, _>>()?;
    Ok(readers.into_iter().flatten())
}

fn read_file(
    path: &Path,
    batch_rows: usize,
    columns: Option<&[&str]>,
) -> Result<impl Iterator<Item = Result<RecordBatch, TableError>> + Send + use<>, TableError> {
    let file = File::open(path).map_err(|source| TableError::Io { path: path.to_path_buf(), source })?;
    let mut builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|source| TableError::Parquet { path: path.to_path_buf(), source })?
        .with_batch_size(batch_rows);
    check_schema(path, builder.schema())?;
    if let Some(columns) = columns {
        let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
        builder = builder.with_projection(mask);
    }
    let reader = builder.build().map_err(|source| TableError::Parquet { path: path.to_path_buf(), source })?;
    let path = path.to_path_buf();
    Ok(reader.map(move |b| {
        let batch = plain_batch(&path, b.map_err(|source| TableError::Arrow { path: path.clone(), source })?)?;
        check_values(&path, &batch)?;
        Ok(batch)
    }))
}

/// Reads a whole (small) table, e.g. `images.parquet`, into one batch. Its parts must
/// share one schema.
pub fn read_table(table: &Path) -> Result<RecordBatch, TableError> {
    let files = part_files(table)?;
    let Some(first) = files.first() else {
        return Err(TableError::Missing { path: table.to_path_buf(), hint: "the table has no parts".into() });
    };
    let file = File::open(first).map_err(|source| TableError::Io { path: first.clone(), source })?;
    let schema = plain_schema(
        ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|source| TableError::Parquet { path: first.clone(), source })?
            .schema(),
    );
    let mut batches = Vec::new();
    for path in &files {
        for batch in read_file(path, 8192, None)? {
            let batch = batch?;
            if batch.schema().fields() != schema.fields() {
                return Err(TableError::Column {
                    path: path.clone(),
                    column: "(schema)".into(),
                    message: format!("differs from the schema of {}", first.display()),
                });
            }
            batches.push(batch);
        }
    }
    arrow::compute::concat_batches(&std::sync::Arc::new(schema), &batches)
        .map_err(|source| TableError::Arrow { path: table.to_path_buf(), source })
}

/// The number of rows in `files`, from their metadata.
pub fn count_rows(files: &[PathBuf]) -> Result<usize, TableError> {
    let mut rows = 0;
    for path in files {
        let file = File::open(path).map_err(|source| TableError::Io { path: path.clone(), source })?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|source| TableError::Parquet { path: path.clone(), source })?;
        rows += usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    }
    Ok(rows)
}

/// The values of the `u64` column `name` in `files` (e.g. the image ids a stage committed).
pub fn read_u64_column(files: &[PathBuf], name: &str) -> Result<Vec<u64>, TableError> {
    let mut values = Vec::new();
    for path in files {
        for batch in read_file(path, 8192, Some(&[name]))? {
            let batch = batch?;
            values.extend(column::<arrow::array::UInt64Array>(&batch, path, name)?.iter().flatten());
        }
    }
    Ok(values)
}

/// Typed column access with an error naming the file and column.
pub fn column<'a, T: 'static>(batch: &'a RecordBatch, path: &Path, name: &str) -> Result<&'a T, TableError> {
    batch.column_by_name(name).and_then(|c| c.as_any().downcast_ref::<T>()).ok_or_else(|| TableError::Column {
        path: path.to_path_buf(),
        column: name.to_string(),
        message: "missing or of the wrong type".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{StringArray, UInt64Array};

    use super::*;

    #[test]
    fn writes_atomically_and_reads_back_in_batches() {
        let dir = std::env::temp_dir().join(format!("clipshift-tables-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("t.parquet");
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("id", arrow::datatypes::DataType::UInt64, false),
            arrow::datatypes::Field::new("name", arrow::datatypes::DataType::Utf8, false),
        ]));
        let mut w = TableWriter::create(&target, schema.clone()).unwrap();
        for chunk in 0..3u64 {
            let ids = UInt64Array::from_iter_values((0..10).map(|i| chunk * 10 + i));
            let names = StringArray::from_iter_values((0..10).map(|i| format!("n{}", chunk * 10 + i)));
            w.write(&RecordBatch::try_new(schema.clone(), vec![Arc::new(ids), Arc::new(names)]).unwrap()).unwrap();
        }
        assert!(!target.exists(), "target must not appear before finish");
        assert_eq!(w.finish().unwrap(), 30);
        assert!(target.exists());

        let batches: Vec<_> = read_batches(&target, 7).unwrap().collect::<Result<_, _>>().unwrap();
        assert!(batches.iter().all(|b| b.num_rows() <= 7));
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 30);
        let all = read_table(&target).unwrap();
        let ids: &UInt64Array = column(&all, &target, "id").unwrap();
        assert_eq!(ids.values().iter().copied().collect::<Vec<_>>(), (0..30).collect::<Vec<_>>());
        assert!(column::<UInt64Array>(&all, &target, "name").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
