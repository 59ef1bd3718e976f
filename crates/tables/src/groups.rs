use std::path::{Path, PathBuf};

use arrow::array::{RecordBatch, StringArray, UInt64Array};

use crate::io::{column, read_files};
use crate::{TableError, schema};

/// Streams a table whose rows are grouped by `image_id` (every stage writes them so),
/// yielding one batch per image: `(image_id, rows of that image)`.
///
/// Memory is bounded by one read batch plus one image's rows.
pub struct ImageGroups {
    path: PathBuf,
    batches: Box<dyn Iterator<Item = Result<RecordBatch, TableError>> + Send>,
    current: Option<RecordBatch>,
    offset: usize,
    carry: Vec<RecordBatch>,
}

impl ImageGroups {
    /// Every row of `table` (a directory of parts, or one file).
    pub fn open(table: &Path) -> Result<Self, TableError> {
        Self::open_files(table, crate::part_files(table)?, None)
    }

    /// The rows of `files`, parts of `table`, reading only `columns` (which must include
    /// `image_id`; all when `None`).
    pub fn open_files(table: &Path, files: Vec<PathBuf>, columns: Option<&[&str]>) -> Result<Self, TableError> {
        Ok(Self {
            path: table.to_path_buf(),
            batches: Box::new(read_files(files, 4096, columns)?),
            current: None,
            offset: 0,
            carry: Vec::new(),
        })
    }

    /// The groups `images` at a time, in table order (the last chunk shorter; none for
    /// an empty table): for stages that compute a chunk of images in parallel.
    pub fn chunks(mut self, images: usize) -> impl Iterator<Item = Result<Vec<(u64, RecordBatch)>, TableError>> {
        let images = images.max(1);
        std::iter::from_fn(move || {
            let mut chunk = Vec::with_capacity(images);
            for group in self.by_ref() {
                match group {
                    Ok(group) => chunk.push(group),
                    Err(err) => return Some(Err(err)),
                }
                if chunk.len() == images {
                    break;
                }
            }
            (!chunk.is_empty()).then_some(Ok(chunk))
        })
    }

    fn emit(&mut self, id: u64) -> Result<(u64, RecordBatch), TableError> {
        let parts = std::mem::take(&mut self.carry);
        let schema = parts[0].schema();
        let rows = if parts.len() == 1 {
            parts.into_iter().next().expect("one part")
        } else {
            arrow::compute::concat_batches(&schema, &parts)
                .map_err(|source| TableError::Arrow { path: self.path.clone(), source })?
        };
        Ok((id, rows))
    }

    fn carry_id(&self) -> Result<Option<u64>, TableError> {
        match self.carry.first() {
            Some(b) => Ok(Some(column::<UInt64Array>(b, &self.path, schema::IMAGE_ID)?.value(0))),
            None => Ok(None),
        }
    }

    fn step(&mut self) -> Result<Option<(u64, RecordBatch)>, TableError> {
        loop {
            let Some(batch) = self.current.clone() else {
                match self.batches.next() {
                    Some(batch) => {
                        self.current = Some(batch?);
                        self.offset = 0;
                        continue;
                    }
                    None => {
                        return match self.carry_id()? {
                            Some(id) => self.emit(id).map(Some),
                            None => Ok(None),
                        };
                    }
                }
            };
            let ids = column::<UInt64Array>(&batch, &self.path, schema::IMAGE_ID)?;
            if self.offset >= batch.num_rows() {
                self.current = None;
                continue;
            }
            let id = ids.value(self.offset);
            if let Some(carried) = self.carry_id()?
                && carried != id
            {
                return self.emit(carried).map(Some);
            }
            let mut end = self.offset + 1;
            while end < batch.num_rows() && ids.value(end) == id {
                end += 1;
            }
            self.carry.push(batch.slice(self.offset, end - self.offset));
            self.offset = end;
            if end < batch.num_rows() {
                return self.emit(id).map(Some);
            }
            // The run reaches the end of this batch: it may continue in the next one.
        }
    }
}

/// The `(augmentation, params JSON)` of one image's rows of `augmentations.parquet`
/// (read from `path`), in table order: what a stage replays.
pub fn recorded_variants(rows: &RecordBatch, path: &Path) -> Result<Vec<(String, String)>, TableError> {
    let augmentations = column::<StringArray>(rows, path, schema::AUGMENTATION)?;
    let params = column::<StringArray>(rows, path, "params")?;
    Ok(augmentations
        .iter()
        .zip(params.iter())
        .map(|(a, p)| (a.unwrap_or_default().to_string(), p.unwrap_or_default().to_string()))
        .collect())
}

impl Iterator for ImageGroups {
    type Item = Result<(u64, RecordBatch), TableError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step().transpose()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::StringArray;

    use super::*;
    use crate::TableWriter;

    #[test]
    fn groups_runs_across_batch_boundaries() {
        let dir = std::env::temp_dir().join(format!("clipshift-groups-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("g.parquet");
        let s = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new(schema::IMAGE_ID, arrow::datatypes::DataType::UInt64, false),
            arrow::datatypes::Field::new("v", arrow::datatypes::DataType::Utf8, false),
        ]));
        // 3000 rows of image 1, 3000 of image 2, 1 of image 3, 5000 of image 4: runs straddle 4096-row batches.
        let mut ids = Vec::new();
        for (id, n) in [(1u64, 3000), (2, 3000), (3, 1), (4, 5000)] {
            ids.extend(std::iter::repeat_n(id, n));
        }
        let mut w = TableWriter::create(&path, s.clone()).unwrap();
        let values = StringArray::from_iter_values(ids.iter().enumerate().map(|(i, _)| i.to_string()));
        w.write(&RecordBatch::try_new(s, vec![Arc::new(UInt64Array::from(ids.clone())), Arc::new(values)]).unwrap())
            .unwrap();
        w.finish().unwrap();
        let groups: Vec<(u64, usize, String)> = ImageGroups::open(&path)
            .unwrap()
            .map(|g| {
                let (id, rows) = g.unwrap();
                let v = rows.column(1).as_any().downcast_ref::<StringArray>().unwrap();
                (id, rows.num_rows(), v.value(0).to_string())
            })
            .collect();
        assert_eq!(
            groups,
            vec![(1, 3000, "0".into()), (2, 3000, "3000".into()), (3, 1, "6000".into()), (4, 5000, "6001".into())]
        );
        assert!(groups.iter().all(|g| g.1 > 0));
        // A projection reads only the named columns and keeps the grouping.
        let projected: Vec<(u64, usize, usize)> =
            ImageGroups::open_files(&path, vec![path.clone()], Some(&[schema::IMAGE_ID]))
                .unwrap()
                .map(|g| {
                    let (id, rows) = g.unwrap();
                    (id, rows.num_rows(), rows.num_columns())
                })
                .collect();
        assert_eq!(projected, vec![(1, 3000, 1), (2, 3000, 1), (3, 1, 1), (4, 5000, 1)]);
        // Chunks keep the order and the groups whole; the last one is shorter.
        let chunked: Vec<Vec<(u64, usize)>> = ImageGroups::open(&path)
            .unwrap()
            .chunks(3)
            .map(|c| c.unwrap().iter().map(|(id, rows)| (*id, rows.num_rows())).collect())
            .collect();
        assert_eq!(chunked, vec![vec![(1, 3000), (2, 3000), (3, 1)], vec![(4, 5000)]]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
