//! What the tables of a run may hold. Every part file read through this crate is checked
//! against its table's schema and value ranges ([`check_schema`], [`check_values`]), and
//! [`validate_run`] checks that the tables agree on their images; a damaged, foreign or
//! hand-edited file is an error naming it and the problem, never a silently wrong result.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path};

use arrow::array::{
    Array, FixedSizeListArray, Float32Array, Float64Array, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Schema};

use crate::{RunDir, TableError, column, part_files, read_files, schema};

/// Rounding slack on bounded metrics.
const SLACK: f64 = 1e-9;

fn invalid(path: &Path, column: &str, message: String) -> TableError {
    TableError::Column { path: path.to_path_buf(), column: column.into(), message }
}

/// The table a file belongs to: the name of its directory (`<table>.parquet/part-…`) or
/// its own name (a table written as one file).
fn table_of(path: &Path) -> Option<&str> {
    let parent = path.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str());
    match parent {
        Some(dir) if dir.ends_with(".parquet") => Some(dir),
        _ => path.file_name().and_then(|n| n.to_str()),
    }
}

/// The expected schema of a per-image table, or `None` for other files. Embeddings have
/// model-dependent list widths, checked by kind.
fn expected(table: &str) -> Option<Schema> {
    let schema = match table {
        "images.parquet" => schema::images(),
        "augmentations.parquet" => schema::augmentations(),
        "embeddings.parquet" => schema::embeddings(1, Some(1), Some((1, 1))),
        "metrics.parquet" => schema::metrics(),
        "pairwise.parquet" => schema::pairwise(),
        "layer_shift.parquet" => schema::layer_shift(),
        "text_embeddings.parquet" => schema::text_embeddings(1),
        "zero_shot.parquet" => schema::zero_shot(),
        "keyword_alignment.parquet" => schema::keyword_alignment(),
        "caption_alignment.parquet" => schema::caption_alignment(),
        "sae_latents.parquet" => schema::sae_latents(),
        "component_attribution.parquet" => schema::component_attribution(),
        "faithfulness.parquet" => schema::faithfulness(),
        "latent_labels.parquet" => schema::latent_labels(),
        "errors.parquet" => schema::errors(),
        _ => return None,
    };
    Some(schema.as_ref().clone())
}

/// The type a column is read as: strings and binaries as written by other writers
/// (polars, pyarrow: views, 64-bit offsets) become the plain types the stages use.
fn plain(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::BinaryView | DataType::LargeBinary => DataType::Binary,
        other => other.clone(),
    }
}

/// `schema` with every column of the type it is read as ([`plain`]).
pub(crate) fn plain_schema(schema: &Schema) -> Schema {
    let fields: Vec<arrow::datatypes::Field> =
        schema.fields().iter().map(|f| f.as_ref().clone().with_data_type(plain(f.data_type()))).collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

/// `batch` with every column of the type it is read as ([`plain`]).
pub(crate) fn plain_batch(path: &Path, batch: RecordBatch) -> Result<RecordBatch, TableError> {
    let schema = batch.schema();
    if schema.fields().iter().all(|f| plain(f.data_type()) == *f.data_type()) {
        return Ok(batch);
    }
    let arrow = |source| TableError::Arrow { path: path.to_path_buf(), source };
    let columns = batch
        .columns()
        .iter()
        .map(|c| arrow::compute::cast(c, &plain(c.data_type())))
        .collect::<Result<Vec<_>, _>>()
        .map_err(arrow)?;
    RecordBatch::try_new(std::sync::Arc::new(plain_schema(&schema)), columns).map_err(arrow)
}

/// Same type once read, lists of any width.
fn same_kind(found: &DataType, wanted: &DataType) -> bool {
    let found = &plain(found);
    match (found, wanted) {
        (DataType::FixedSizeList(a, _), DataType::FixedSizeList(b, _)) => a.data_type() == b.data_type(),
        _ => found == wanted,
    }
}

/// Refuses a file of a known table whose columns are not the table's.
pub(crate) fn check_schema(path: &Path, found: &Schema) -> Result<(), TableError> {
    let Some(wanted) = table_of(path).and_then(expected) else { return Ok(()) };
    let optional = |name: &str| name == "layer_cls_states";
    for field in wanted.fields() {
        match found.field_with_name(field.name()) {
            Ok(f) if same_kind(f.data_type(), field.data_type()) => {}
            Ok(f) => {
                return Err(invalid(
                    path,
                    field.name(),
                    format!("expected {}, found {}", field.data_type(), f.data_type()),
                ));
            }
            Err(_) if optional(field.name()) => {}
            Err(_) => return Err(invalid(path, field.name(), "missing: not a table of this kind".into())),
        }
    }
    if let Some(extra) = found.fields().iter().find(|f| wanted.field_with_name(f.name()).is_err()) {
        return Err(invalid(path, extra.name(), "not a column of this table".into()));
    }
    Ok(())
}

/// The inclusive range of each bounded float column.
fn range(table: &str, column: &str) -> Option<(f64, f64)> {
    let unit = (0.0, 1.0);
    Some(match (table, column) {
        ("metrics.parquet" | "layer_shift.parquet", "cosine_similarity") | ("metrics.parquet", "ssim") => (-1.0, 1.0),
        ("metrics.parquet" | "layer_shift.parquet", "l2_distance") | ("metrics.parquet", "sensitivity") => {
            (0.0, f64::INFINITY)
        }
        (
            "metrics.parquet",
            "attention_similarity" | "patch_similarity" | "edge_preservation" | "detail_preservation",
        ) => unit,
        ("pairwise.parquet", "cosine_distance") => (0.0, 2.0),
        ("zero_shot.parquet", "probability") => unit,
        ("zero_shot.parquet", "kl_to_original") => (0.0, f64::INFINITY),
        ("keyword_alignment.parquet" | "caption_alignment.parquet", "delta_cosine") => (-2.0, 2.0),
        ("caption_alignment.parquet", "cosine_similarity") => (-1.0, 1.0),
        ("faithfulness.parquet", "cosine") | ("latent_labels.parquet", "score") => (-1.0, 1.0),
        ("pairwise.parquet", "euclidean_distance") => (0.0, f64::INFINITY),
        _ => return None,
    })
}

/// Refuses values a stage cannot have written: NaN or out-of-range metrics, non-finite
/// embeddings, empty sizes, image paths that are absolute or leave the data root.
pub(crate) fn check_values(path: &Path, batch: &RecordBatch) -> Result<(), TableError> {
    let Some(table) = table_of(path) else { return Ok(()) };
    for (field, values) in batch.schema().fields().iter().zip(batch.columns()) {
        let name = field.name().as_str();
        if let (Some((lo, hi)), Some(floats)) = (range(table, name), values.as_any().downcast_ref::<Float64Array>()) {
            let bad = floats.iter().enumerate().find(|(_, v)| v.is_some_and(|v| !(v >= lo - SLACK && v <= hi + SLACK)));
            if let Some((row, Some(v))) = bad {
                return Err(invalid(path, name, format!("value {v} in row {row} is outside [{lo}, {hi}]")));
            }
        }
        if let Some(lists) = values.as_any().downcast_ref::<FixedSizeListArray>()
            && let Some(floats) = lists.values().as_any().downcast_ref::<Float32Array>()
            && let Some(i) = floats.values().iter().position(|v| !v.is_finite())
        {
            let row = i / lists.value_length().max(1) as usize;
            return Err(invalid(path, name, format!("row {row} holds a non-finite value")));
        }
        if table == "images.parquet" && matches!(name, "width" | "height") {
            let sizes = values.as_any().downcast_ref::<UInt32Array>().expect("schema checked");
            if let Some(row) = sizes.values().iter().position(|v| *v == 0) {
                return Err(invalid(path, name, format!("row {row} has size 0")));
            }
        }
        if table == "images.parquet" && name == "path" {
            let paths = values.as_any().downcast_ref::<StringArray>().expect("schema checked");
            for (row, p) in paths.iter().enumerate() {
                let p = Path::new(p.unwrap_or_default());
                if p.as_os_str().is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
                    return Err(invalid(
                        path,
                        name,
                        format!("row {row}: `{}` is not a path inside the data root", p.display()),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// `(image_id, augmentation)` of every row of `table`, checking that its rows are grouped
/// by image; `key` is the name column (`augmentation`, or `None` for the image alone).
fn keys(table: &Path, key: Option<&str>) -> Result<Vec<(u64, String)>, TableError> {
    let mut columns = vec![schema::IMAGE_ID];
    columns.extend(key);
    let mut rows = Vec::new();
    for file in part_files(table)? {
        let mut finished = HashSet::new();
        let mut last = None;
        for batch in read_files(vec![file.clone()], 8192, Some(&columns))? {
            let batch = batch?;
            let ids = column::<UInt64Array>(&batch, &file, schema::IMAGE_ID)?;
            let names = key.map(|k| column::<StringArray>(&batch, &file, k)).transpose()?;
            for (i, id) in ids.values().iter().enumerate() {
                if last != Some(*id) {
                    if !finished.insert(*id) {
                        let message =
                            format!("the rows of image {id} are not together: every table groups rows by image");
                        return Err(invalid(&file, schema::IMAGE_ID, message));
                    }
                    last = Some(*id);
                }
                rows.push((*id, names.map(|n| n.value(i).to_string()).unwrap_or_default()));
            }
        }
    }
    Ok(rows)
}

/// Checks that the per-image tables of `run` agree: every image once in `images.parquet`;
/// each of its variants once in `augmentations.parquet`, the original among them; every
/// embedding a recorded variant; every metrics and pairwise row an embedded variant. A
/// table is checked against the one before it when that one exists. Every file read on
/// the way is checked against its schema and value ranges.
pub fn validate_run(run: &RunDir) -> Result<(), TableError> {
    let exists = |table: &Path| part_files(table).map(|parts| !parts.is_empty());
    let images = run.images();
    let mut ids: Option<HashSet<u64>> = None;
    if exists(&images)? {
        let mut seen = HashSet::new();
        for (id, _) in keys(&images, None)? {
            if !seen.insert(id) {
                return Err(invalid(&images, schema::IMAGE_ID, format!("image {id} appears twice")));
            }
        }
        ids = Some(seen);
        read_all(&images)?;
    }
    // Each table's (image, variant) keys, checked against the table before it.
    let mut known: Option<HashMap<u64, HashSet<String>>> = None;
    for table in [run.augmentations(), run.embeddings()] {
        if !exists(&table)? {
            continue;
        }
        let mut variants: HashMap<u64, HashSet<String>> = HashMap::new();
        for (id, aug) in keys(&table, Some(schema::AUGMENTATION))? {
            let recorded = match &known {
                Some(before) => before.get(&id).is_some_and(|v| v.contains(&aug)),
                None => ids.as_ref().is_none_or(|ids| ids.contains(&id)),
            };
            if !recorded {
                let message = format!("image {id} `{aug}` is not in the table the stage read");
                return Err(invalid(&table, schema::IMAGE_ID, message));
            }
            if !variants.entry(id).or_default().insert(aug.clone()) {
                return Err(invalid(&table, schema::AUGMENTATION, format!("image {id} has `{aug}` twice")));
            }
        }
        if known.is_none()
            && let Some(id) = variants.iter().find(|(_, v)| !v.contains(schema::ORIGINAL)).map(|(id, _)| id)
        {
            return Err(invalid(&table, schema::AUGMENTATION, format!("image {id} has no `original` row")));
        }
        known = Some(variants);
    }
    let keyed = [
        (run.metrics(), Some(schema::AUGMENTATION)),
        (run.pairwise(), None),
        (run.layer_shift(), Some(schema::AUGMENTATION)),
    ];
    for (table, key) in keyed {
        if !exists(&table)? {
            continue;
        }
        for (id, aug) in keys(&table, key)? {
            if let Some(embedded) = &known
                && !embedded.get(&id).is_some_and(|v| key.is_none() || v.contains(&aug))
            {
                let message = format!("image {id} {aug} has no embedding").replace("  ", " ");
                return Err(invalid(&table, schema::IMAGE_ID, message));
            }
        }
        read_all(&table)?;
    }
    read_all(&run.augmentations())
}

/// Reads every value of `table` (if it exists), so each is checked.
fn read_all(table: &Path) -> Result<(), TableError> {
    for batch in read_files(part_files(table)?, 8192, None)? {
        batch?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::TableWriter;

    fn write(path: &Path, batch: RecordBatch) {
        let mut w = TableWriter::create(path, batch.schema()).unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
    }

    fn images(paths: &[&str], width: u32) -> RecordBatch {
        let n = paths.len();
        RecordBatch::try_new(
            schema::images(),
            vec![
                Arc::new(UInt64Array::from_iter_values(0..n as u64)),
                Arc::new(StringArray::from(paths.to_vec())),
                Arc::new(UInt32Array::from(vec![width; n])),
                Arc::new(UInt32Array::from(vec![8; n])),
                Arc::new(StringArray::from(vec!["png"; n])),
            ],
        )
        .unwrap()
    }

    fn metrics(ids: &[u64], cosine: f64) -> RecordBatch {
        let n = ids.len();
        let mut columns: Vec<Arc<dyn Array>> = vec![
            Arc::new(UInt64Array::from(ids.to_vec())),
            Arc::new(StringArray::from(vec!["blur"; n])),
            Arc::new(Float64Array::from(vec![cosine; n])),
        ];
        columns.extend(
            (1..schema::METRIC_COLUMNS.len()).map(|_| Arc::new(Float64Array::from(vec![0.5; n])) as Arc<dyn Array>),
        );
        RecordBatch::try_new(schema::metrics(), columns).unwrap()
    }

    #[test]
    fn a_table_that_no_stage_could_have_written_is_refused_naming_file_and_problem() {
        let run = RunDir::new(std::env::temp_dir().join(format!("clipshift-validate-{}", std::process::id())));
        let _ = std::fs::remove_dir_all(run.root());
        run.create().unwrap();
        write(&run.images(), images(&["a.png", "sub/b.png"], 8));
        write(&run.metrics(), metrics(&[0, 0, 1], 0.9));
        validate_run(&run).unwrap();
        let err = |run: &RunDir, step: &str| {
            validate_run(run).err().unwrap_or_else(|| panic!("{step}: accepted")).to_string()
        };

        write(&run.metrics(), metrics(&[0, 1, 0], 0.9));
        let e = err(&run, "rows apart");
        assert!(e.contains("metrics.parquet") && e.contains("not together"), "{e}");
        write(&run.metrics(), metrics(&[0], f64::NAN));
        let e = err(&run, "NaN");
        assert!(e.contains("metrics.parquet") && e.contains("cosine_similarity") && e.contains("NaN"), "{e}");
        write(&run.metrics(), metrics(&[0], 1.5));
        assert!(err(&run, "out of range").contains("outside [-1, 1]"));
        write(&run.metrics(), images(&["x.png"], 8));
        let e = err(&run, "foreign table");
        assert!(e.contains("metrics.parquet") && e.contains("not a table of this kind"), "{e}");
        write(&run.metrics(), metrics(&[0], 0.9));

        for (paths, width, problem) in [
            (vec!["../outside.png"], 8, "not a path inside the data root"),
            (vec!["/etc/passwd"], 8, "not a path inside the data root"),
            (vec!["a.png"], 0, "size 0"),
            (vec!["a.png", "a.png"], 8, ""),
        ] {
            let mut batch = images(&paths, width);
            if paths.len() == 2 {
                // The same image id twice.
                let ids: Arc<dyn Array> = Arc::new(UInt64Array::from(vec![0, 0]));
                let mut columns = batch.columns().to_vec();
                columns[0] = ids;
                batch = RecordBatch::try_new(batch.schema(), columns).unwrap();
            }
            write(&run.images(), batch);
            let e = err(&run, problem);
            assert!(e.contains("images.parquet") && e.contains(problem), "{e}");
        }
        write(&run.images(), images(&["a.png", "sub/b.png"], 8));

        // An augmentations table naming an image that images.parquet does not have.
        let augmentations = RecordBatch::try_new(
            schema::augmentations(),
            vec![
                Arc::new(UInt64Array::from(vec![0, 0, 7])),
                Arc::new(StringArray::from(vec!["original", "blur", "original"])),
                Arc::new(UInt64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec!["{}", "{}", "{}"])),
                Arc::new(StringArray::from(vec![None::<&str>; 3])),
                Arc::new(arrow::array::UInt32Array::from(vec![None::<u32>; 3])),
                Arc::new(arrow::array::BooleanArray::from(vec![false; 3])),
                Arc::new(arrow::array::BinaryArray::from(vec![None::<&[u8]>; 3])),
            ],
        )
        .unwrap();
        write(&run.augmentations(), augmentations);
        let e = err(&run, "augmentations");
        assert!(e.contains("augmentations.parquet") && e.contains("image 7"), "{e}");
        std::fs::remove_dir_all(run.root()).unwrap();
    }
}
