//! Where a run's source images are: the data root and canonical size from `run.json`,
//! and each image's path from `images.parquet`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use arrow::array::{StringArray, UInt64Array};

use crate::{RunDir, RunManifest, Shard, TableError, column, part_files, read_files, schema, shard_part_files};

/// The source images of a run, for the stages that replay variants from them.
///
/// Holds one short path per image (not the pixels), so it stays small for large datasets.
#[derive(Debug, Clone)]
pub struct SourceImages {
    data_root: PathBuf,
    image_size: u32,
    max_pixels: u64,
    paths: HashMap<u64, String>,
}

impl SourceImages {
    /// Reads the manifest and `images.parquet` of `shard` (of the whole run, merged, for
    /// [`Shard::WHOLE`]), both written by the augment stage.
    pub fn load(run: &RunDir, shard: Shard) -> Result<Self, TableError> {
        run.require(&run.images(), "augment")?;
        let manifest = RunManifest::load_shard(run, shard)?;
        let augment = manifest.require_augment(run)?;
        let (data_root, image_size, max_pixels) = (augment.data_root.clone(), augment.image_size, augment.max_pixels);
        let path = run.images();
        let files = if shard.is_whole() { part_files(&path)? } else { shard_part_files(&path, shard)? };
        let mut paths = HashMap::new();
        for batch in read_files(files, 8192, None)? {
            let batch = batch?;
            let ids = column::<UInt64Array>(&batch, &path, schema::IMAGE_ID)?;
            let files = column::<StringArray>(&batch, &path, "path")?;
            paths.extend(ids.values().iter().zip(files.iter()).map(|(id, p)| (*id, p.unwrap_or_default().to_owned())));
        }
        Ok(Self { data_root, image_size, max_pixels, paths })
    }

    /// Number of source images.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Side of the canonical square image every augmentation starts from.
    pub fn image_size(&self) -> u32 {
        self.image_size
    }

    /// The pixel limit the augment stage decoded the sources with.
    pub fn max_pixels(&self) -> u64 {
        self.max_pixels
    }

    /// The image's path relative to the data root, as recorded in `images.parquet`.
    pub fn relative_path(&self, image_id: u64) -> Option<&str> {
        self.paths.get(&image_id).map(String::as_str)
    }

    /// The image's file on disk.
    pub fn file(&self, image_id: u64) -> Option<PathBuf> {
        self.relative_path(image_id).map(|rel| self.data_root.join(rel))
    }

    pub fn data_root(&self) -> &Path {
        &self.data_root
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{RecordBatch, StringArray, UInt32Array, UInt64Array};
    use serde_json::json;

    use super::*;
    use crate::{TableWriter, write_atomic};

    /// A complete augment section of run.json, with `changes` applied (null removes a key).
    fn manifest(changes: serde_json::Value) -> serde_json::Value {
        let mut m = json!({
            "tool_version": "0", "seed": 0, "data_root": "/data", "image_size": 224, "max_pixels": 1000, "limit": null,
            "save_images": false, "suite": {"name": "s", "members": []},
            "inputs": {"images": 2, "fingerprint": "0", "suite": "0"},
        });
        for (key, value) in changes.as_object().unwrap() {
            match value {
                serde_json::Value::Null => m.as_object_mut().unwrap().remove(key),
                v => m.as_object_mut().unwrap().insert(key.clone(), v.clone()),
            };
        }
        m
    }

    fn run_with(name: &str, manifest: serde_json::Value) -> RunDir {
        let run = RunDir::new(std::env::temp_dir().join(format!("clipshift-sources-{}-{name}", std::process::id())));
        run.create().unwrap();
        write_atomic(&run.manifest(), manifest.to_string().as_bytes()).unwrap();
        let mut w = TableWriter::create(&run.images(), schema::images()).unwrap();
        let batch = RecordBatch::try_new(
            schema::images(),
            vec![
                Arc::new(UInt64Array::from(vec![7, 9])),
                Arc::new(StringArray::from(vec!["a.png", "sub/b.jpg"])),
                Arc::new(UInt32Array::from(vec![10, 20])),
                Arc::new(UInt32Array::from(vec![30, 40])),
                Arc::new(StringArray::from(vec!["png", "jpeg"])),
            ],
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
        run
    }

    #[test]
    fn resolves_paths_against_the_data_root() {
        let run = run_with("ok", manifest(json!({"image_size": 96})));
        let sources = SourceImages::load(&run, Shard::WHOLE).unwrap();
        assert_eq!((sources.len(), sources.image_size()), (2, 96));
        assert_eq!(sources.relative_path(9), Some("sub/b.jpg"));
        assert_eq!(sources.file(7), Some(PathBuf::from("/data/a.png")));
        assert_eq!(sources.file(8), None);
        std::fs::remove_dir_all(run.root()).unwrap();
    }

    #[test]
    fn names_run_json_when_it_is_incomplete() {
        let run = run_with("no-root", manifest(json!({"data_root": null})));
        let err = SourceImages::load(&run, Shard::WHOLE).unwrap_err().to_string();
        assert!(err.contains("run.json") && err.contains("data_root"), "{err}");
        std::fs::remove_dir_all(run.root()).unwrap();

        let run = run_with("bad-size", manifest(json!({"image_size": "big"})));
        let err = SourceImages::load(&run, Shard::WHOLE).unwrap_err().to_string();
        assert!(err.contains("run.json") && err.contains("image_size") && err.contains("u32"), "{err}");
        std::fs::remove_dir_all(run.root()).unwrap();
    }
}
