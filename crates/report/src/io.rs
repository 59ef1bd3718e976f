//! Reading the run directory's tables with polars, and writing the report's
//! files. Every table the report writes is first made to match its schema in
//! `clipshift_tables::schema` (the one description of every table), and every
//! file is written atomically.

use std::path::Path;

use clipshift_tables::arrow::datatypes::{DataType as ArrowType, Field, Schema};
use clipshift_tables::{AtomicFile, RunDir, write_atomic};
use polars::prelude::*;

use crate::ReportError;

/// The file name of `path`, which names the table in errors.
pub(crate) fn table_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

/// Where the figure `stem`'s SVG is, relative to the run directory (how a
/// failed figure is named in `errors.parquet`).
pub(crate) fn figure_path(run: &RunDir, stem: &str) -> String {
    let svg = run.report_dir().join(format!("{stem}.svg"));
    svg.strip_prefix(run.root()).unwrap_or(&svg).display().to_string()
}

/// The named columns of the table at `path`, with its name for errors; `None` when the
/// run has no such table (a stage that did not run, a model without per-layer states).
pub(crate) fn read_optional(path: &Path, columns: &[&str]) -> Result<Option<(DataFrame, String)>, ReportError> {
    if clipshift_tables::part_files(path)?.is_empty() {
        return Ok(None);
    }
    let name = table_name(path);
    let selected: Vec<Expr> = columns.iter().map(|c| col(*c)).collect();
    let df = scan(path)?.select(selected).collect().map_err(ReportError::polars(&name))?;
    Ok(Some((df, name)))
}

/// Lazily scans the table at `path`: its part files, or the one Parquet file.
pub(crate) fn scan(path: &Path) -> Result<LazyFrame, ReportError> {
    let name = table_name(path);
    let files = clipshift_tables::part_files(path)?;
    if files.is_empty() {
        return Err(ReportError::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, "table not found")));
    }
    let files = files
        .iter()
        .map(|f| PlRefPath::try_from_path(f).map_err(ReportError::polars(&name)))
        .collect::<Result<Vec<_>, _>>()?;
    LazyFrame::scan_parquet_files(files.into_iter().collect(), ScanArgsParquet::default())
        .map_err(ReportError::polars(name))
}

/// Writes `bytes` to `path` atomically.
pub(crate) fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    Ok(write_atomic(path, bytes)?)
}

/// Writes a DataFrame as Parquet atomically.
pub(crate) fn write_parquet(path: &Path, df: &mut DataFrame) -> Result<(), ReportError> {
    let mut file = AtomicFile::create(path)?;
    // Snappy, as every table of a run (the tables crate reads them without zstd).
    ParquetWriter::new(&mut file)
        .with_compression(ParquetCompression::Snappy)
        .finish(df)
        .map_err(ReportError::polars(table_name(path)))?;
    Ok(file.commit()?)
}

fn column<'a>(df: &'a DataFrame, table: &str, name: &str) -> Result<&'a Column, ReportError> {
    df.column(name).map_err(|_| ReportError::MissingColumn { table: table.into(), column: name.into() })
}

pub(crate) fn col_f64(df: &DataFrame, table: &str, name: &str) -> Result<Vec<Option<f64>>, ReportError> {
    let c = column(df, table, name)?.cast(&DataType::Float64).map_err(ReportError::polars(table))?;
    Ok(c.f64().map_err(ReportError::polars(table))?.iter().map(|v| v.filter(|x| !x.is_nan())).collect())
}

pub(crate) fn col_u64(df: &DataFrame, table: &str, name: &str) -> Result<Vec<u64>, ReportError> {
    let c = column(df, table, name)?.cast(&DataType::UInt64).map_err(ReportError::polars(table))?;
    Ok(c.u64().map_err(ReportError::polars(table))?.iter().map(|v| v.unwrap_or(0)).collect())
}

pub(crate) fn col_str(df: &DataFrame, table: &str, name: &str) -> Result<Vec<String>, ReportError> {
    let c = column(df, table, name)?;
    Ok(c.str().map_err(ReportError::polars(table))?.iter().map(|v| v.unwrap_or("").to_owned()).collect())
}

pub(crate) fn col_opt_str(df: &DataFrame, table: &str, name: &str) -> Result<Vec<Option<String>>, ReportError> {
    let c = column(df, table, name)?;
    Ok(c.str().map_err(ReportError::polars(table))?.iter().map(|v| v.map(str::to_owned)).collect())
}

/// Builds the table `table` from named columns and makes it match `schema`
/// (see [`conform`]). NaN (an undefined statistic, such as the std of one
/// value) becomes null first: no NaN reaches a table.
pub(crate) fn frame(table: &str, schema: &Schema, cols: Vec<Column>) -> Result<DataFrame, ReportError> {
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
    let df = DataFrame::new_infer_height(cols).map_err(ReportError::polars(table))?;
    conform(table, df, schema)
}

/// `df` with exactly the columns of `schema`, in its order and cast to its
/// types. A column of `schema` missing from `df`, a column of `df` the schema
/// does not have, a value the type cannot hold and a null in a non-nullable
/// column are errors naming the table and the column.
pub(crate) fn conform(table: &str, df: DataFrame, schema: &Schema) -> Result<DataFrame, ReportError> {
    if let Some(extra) = df.get_column_names().into_iter().find(|n| schema.field_with_name(n.as_str()).is_err()) {
        return Err(ReportError::schema(table, extra.as_str(), "not in the table's schema"));
    }
    let cols = schema
        .fields()
        .iter()
        .map(|field| {
            let name = field.name().as_str();
            let col = df.column(name).map_err(|_| ReportError::schema(table, name, "missing"))?;
            let dtype = polars_type(field)
                .ok_or_else(|| ReportError::schema(table, name, format!("no polars type for {}", field.data_type())))?;
            let col = col
                .strict_cast(&dtype)
                .map_err(|e| ReportError::schema(table, name, format!("cannot be {dtype}: {e}")))?;
            if !field.is_nullable() && col.null_count() > 0 {
                return Err(ReportError::schema(
                    table,
                    name,
                    format!("{} nulls in a non-nullable column", col.null_count()),
                ));
            }
            Ok(col)
        })
        .collect::<Result<Vec<_>, _>>()?;
    DataFrame::new(df.height(), cols).map_err(ReportError::polars(table))
}

/// The polars type that holds an Arrow field of the report's tables.
fn polars_type(field: &Field) -> Option<DataType> {
    Some(match field.data_type() {
        ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View => DataType::String,
        ArrowType::Boolean => DataType::Boolean,
        ArrowType::UInt32 => DataType::UInt32,
        ArrowType::UInt64 => DataType::UInt64,
        ArrowType::Int32 => DataType::Int32,
        ArrowType::Int64 => DataType::Int64,
        ArrowType::Float32 => DataType::Float32,
        ArrowType::Float64 => DataType::Float64,
        ArrowType::Binary | ArrowType::LargeBinary => DataType::Binary,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("name", ArrowType::Utf8, false),
            Field::new("count", ArrowType::UInt32, false),
            Field::new("value", ArrowType::Float64, true),
        ])
    }

    fn df(cols: Vec<Column>) -> DataFrame {
        DataFrame::new_infer_height(cols).unwrap()
    }

    #[test]
    fn conform_orders_and_casts_to_the_schema() {
        let d = df(vec![
            Column::new("value".into(), [Some(1.5), None]),
            Column::new("count".into(), [3i64, 4]),
            Column::new("name".into(), ["a", "b"]),
        ]);
        let out = conform("t", d, &schema()).unwrap();
        let names: Vec<&str> = out.get_column_names().iter().map(|n| n.as_str()).collect();
        assert_eq!(names, ["name", "count", "value"]);
        assert_eq!(out.column("count").unwrap().dtype(), &DataType::UInt32);
        assert_eq!(out.column("count").unwrap().u32().unwrap().get(1), Some(4));
        assert_eq!(out.column("value").unwrap().f64().unwrap().get(1), None);
    }

    #[test]
    fn conform_names_the_table_and_column_that_do_not_fit() {
        let err = |cols: Vec<Column>| conform("fig.parquet", df(cols), &schema()).unwrap_err().to_string();
        let name = || Column::new("name".into(), ["a"]);
        let value = || Column::new("value".into(), [1.0]);
        let missing = err(vec![name(), value()]);
        assert!(
            missing.contains("fig.parquet") && missing.contains("`count`") && missing.contains("missing"),
            "{missing}"
        );
        let extra = err(vec![name(), Column::new("count".into(), [1u32]), value(), Column::new("x".into(), [1])]);
        assert!(extra.contains("`x`") && extra.contains("not in the table's schema"), "{extra}");
        let negative = err(vec![name(), Column::new("count".into(), [-1i64]), value()]);
        assert!(negative.contains("`count`"), "{negative}");
        let null = err(vec![name(), Column::new("count".into(), [None::<u32>]), value()]);
        assert!(null.contains("`count`") && null.contains("non-nullable"), "{null}");
        let strings = err(vec![name(), Column::new("count".into(), ["three"]), value()]);
        assert!(strings.contains("`count`"), "{strings}");
    }

    #[test]
    fn frame_turns_nan_into_null() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", ArrowType::Float64, true)]));
        let out = frame("t", &schema, vec![Column::new("v".into(), [1.0, f64::NAN])]).unwrap();
        assert_eq!(out.column("v").unwrap().f64().unwrap().get(1), None);
    }
}
