//! Whether two runs hold the same results: every table as a multiset of rows, whatever
//! its part files or row order (a sharded run against an unsharded one, a resumed run
//! against an uninterrupted one).

use std::path::{Path, PathBuf};

use arrow::array::{Array, ArrayRef, Float32Array, Float64Array, RecordBatch, UInt32Array};
use arrow::datatypes::DataType;
use arrow::row::{RowConverter, SortField};

use crate::{RunDir, TableError, part_files, read_table};

/// Report tables are aggregates whose sums may run in another order: their floats are
/// compared to this relative tolerance. The per-image tables must be bit-identical.
const AGGREGATE_TOLERANCE: f64 = 1e-9;

/// The tables of a run that `compare_runs` checks, relative to the run directory, and
/// whether each is an aggregate.
fn tables(run: &RunDir) -> Vec<(PathBuf, bool)> {
    let mut tables: Vec<(PathBuf, bool)> = [
        run.images(),
        run.augmentations(),
        run.embeddings(),
        run.metrics(),
        run.pairwise(),
        run.layer_shift(),
        run.text_embeddings(),
        run.zero_shot(),
        run.keyword_alignment(),
        run.caption_alignment(),
        run.sae_latents(),
        run.component_attribution(),
        run.faithfulness(),
        run.latent_labels(),
        run.errors(),
    ]
    .into_iter()
    .map(|p| (p, false))
    .collect();
    tables.extend(
        [
            run.summary(),
            run.distance_matrix(),
            run.linkage(),
            run.clusters(),
            run.wilcoxon(),
            run.drift(),
            run.noise_floor(),
        ]
        .into_iter()
        .map(|p| (p, true)),
    );
    tables.into_iter().map(|(p, agg)| (p.strip_prefix(run.root()).unwrap_or(&p).to_path_buf(), agg)).collect()
}

/// Every difference between the tables of runs `a` and `b`, one line each; empty when
/// they hold the same rows.
pub fn compare_runs(a: &RunDir, b: &RunDir) -> Result<Vec<String>, TableError> {
    let mut differences = Vec::new();
    for (table, aggregate) in tables(a) {
        let (pa, pb) = (a.root().join(&table), b.root().join(&table));
        let (ea, eb) = (!part_files(&pa)?.is_empty(), !part_files(&pb)?.is_empty());
        match (ea, eb) {
            (false, false) => continue,
            (true, false) | (false, true) => {
                differences.push(format!(
                    "{}: only in {}",
                    table.display(),
                    if ea { "the first run" } else { "the second" }
                ));
                continue;
            }
            (true, true) => {}
        }
        let tolerance = if aggregate { AGGREGATE_TOLERANCE } else { 0.0 };
        if let Some(difference) = compare_tables(&pa, &pb, tolerance)? {
            differences.push(format!("{}: {difference}", table.display()));
        }
    }
    Ok(differences)
}

/// How the rows of tables `a` and `b` differ (as multisets), or `None`.
pub fn compare_tables(a: &Path, b: &Path, tolerance: f64) -> Result<Option<String>, TableError> {
    let (ta, tb) = (read_table(a)?, read_table(b)?);
    if ta.schema().fields() != tb.schema().fields() {
        return Ok(Some(format!("schemas differ: {:?} against {:?}", ta.schema(), tb.schema())));
    }
    if ta.num_rows() != tb.num_rows() {
        return Ok(Some(format!("{} rows against {}", ta.num_rows(), tb.num_rows())));
    }
    // Sort both by their exact columns (all, or the non-float ones within a tolerance), then compare row by row.
    let exact: Vec<usize> = (0..ta.num_columns())
        .filter(|&i| tolerance == 0.0 || !matches!(ta.column(i).data_type(), DataType::Float32 | DataType::Float64))
        .collect();
    let (sa, sb) = (sorted(&ta, &exact, a)?, sorted(&tb, &exact, b)?);
    let names = ta.schema();
    for i in 0..ta.num_columns() {
        let name = names.field(i).name();
        let (ca, cb) = (sa.column(i), sb.column(i));
        if exact.contains(&i) {
            if ca.to_data() != cb.to_data() {
                let row = (0..ca.len()).find(|&r| ca.slice(r, 1).to_data() != cb.slice(r, 1).to_data()).unwrap_or(0);
                return Ok(Some(format!("column `{name}` differs (sorted row {row})")));
            }
        } else if let Some(row) = float_difference(ca, cb, tolerance) {
            return Ok(Some(format!("column `{name}` differs beyond {tolerance:e} (sorted row {row})")));
        }
    }
    Ok(None)
}

/// `batch` with its rows sorted by the row encoding of `columns`, then of all columns.
fn sorted(batch: &RecordBatch, columns: &[usize], path: &Path) -> Result<RecordBatch, TableError> {
    let arrow = |source| TableError::Arrow { path: path.to_path_buf(), source };
    let encode = |cols: &[ArrayRef]| -> Result<arrow::row::Rows, TableError> {
        let fields = cols.iter().map(|c| SortField::new(c.data_type().clone())).collect();
        RowConverter::new(fields).and_then(|conv| conv.convert_columns(cols)).map_err(arrow)
    };
    let keys = encode(&columns.iter().map(|&i| batch.column(i).clone()).collect::<Vec<_>>())?;
    let all = encode(batch.columns())?;
    let mut order: Vec<u32> = (0..batch.num_rows() as u32).collect();
    order.sort_by(|&x, &y| {
        keys.row(x as usize).cmp(&keys.row(y as usize)).then(all.row(x as usize).cmp(&all.row(y as usize)))
    });
    let indices = UInt32Array::from(order);
    let columns = batch
        .columns()
        .iter()
        .map(|c| arrow::compute::take(c, &indices, None))
        .collect::<Result<Vec<_>, _>>()
        .map_err(arrow)?;
    RecordBatch::try_new(batch.schema(), columns).map_err(arrow)
}

/// The first row where two float columns differ beyond `tolerance` (relative), or null differs.
fn float_difference(a: &ArrayRef, b: &ArrayRef, tolerance: f64) -> Option<usize> {
    let values = |c: &ArrayRef| -> Vec<Option<f64>> {
        if let Some(f) = c.as_any().downcast_ref::<Float64Array>() {
            f.iter().collect()
        } else if let Some(f) = c.as_any().downcast_ref::<Float32Array>() {
            f.iter().map(|v| v.map(f64::from)).collect()
        } else {
            unreachable!("only float columns are compared within a tolerance")
        }
    };
    values(a).into_iter().zip(values(b)).position(|(x, y)| match (x, y) {
        (Some(x), Some(y)) => {
            let same_nan = x.is_nan() && y.is_nan();
            !same_nan && (x - y).abs() > tolerance * x.abs().max(y.abs()).max(1.0)
        }
        (x, y) => x.is_some() != y.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{StringArray, UInt64Array};
    use arrow::datatypes::{Field, Schema};

    use super::*;
    use crate::TableWriter;

    fn write(path: &Path, ids: &[u64], names: &[&str], values: &[f64]) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("image_id", DataType::UInt64, false),
            Field::new("name", DataType::Utf8, false),
            Field::new("value", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(UInt64Array::from(ids.to_vec())),
                Arc::new(StringArray::from(names.to_vec())),
                Arc::new(Float64Array::from(values.to_vec())),
            ],
        )
        .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut w = TableWriter::create(path, schema).unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
    }

    #[test]
    fn rows_are_compared_as_multisets_over_parts() {
        let dir = std::env::temp_dir().join(format!("clipshift-compare-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (a, b) = (dir.join("a.parquet"), dir.join("b"));
        write(&a, &[1, 2, 3], &["x", "y", "z"], &[0.5, 0.25, 1.0]);
        // The same rows, in another order, over two parts.
        write(&b.join("part-0000-of-0002-000000.parquet"), &[3], &["z"], &[1.0]);
        write(&b.join("part-0001-of-0002-000000.parquet"), &[2, 1], &["y", "x"], &[0.25, 0.5]);
        assert_eq!(compare_tables(&a, &b, 0.0).unwrap(), None);
        // One value off by one ulp: a difference for per-image tables, none for aggregates.
        write(&b.join("part-0001-of-0002-000000.parquet"), &[2, 1], &["y", "x"], &[0.25, 0.5 + f64::EPSILON / 2.0]);
        let diff = compare_tables(&a, &b, 0.0).unwrap().unwrap();
        assert!(diff.contains("value"), "{diff}");
        assert_eq!(compare_tables(&a, &b, AGGREGATE_TOLERANCE).unwrap(), None);
        write(&b.join("part-0001-of-0002-000000.parquet"), &[2, 1], &["y", "x"], &[0.25, 0.6]);
        assert!(compare_tables(&a, &b, AGGREGATE_TOLERANCE).unwrap().unwrap().contains("value"));
        write(&b.join("part-0001-of-0002-000000.parquet"), &[2], &["y"], &[0.25]);
        assert_eq!(compare_tables(&a, &b, 0.0).unwrap().unwrap(), "3 rows against 2");
        write(&b.join("part-0001-of-0002-000000.parquet"), &[2, 1], &["y", "w"], &[0.25, 0.5]);
        assert!(compare_tables(&a, &b, AGGREGATE_TOLERANCE).unwrap().unwrap().contains("name"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
