use std::path::PathBuf;

/// Everything that can stop the report stage. Each variant names the file,
/// table or column involved so the binary can print a useful chain.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse {path}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Tables(#[from] clipshift_tables::TableError),
    #[error("table {table}: {message}")]
    Table { table: String, message: String },
    #[error("polars failed on {table}")]
    Polars {
        table: String,
        #[source]
        source: polars::error::PolarsError,
    },
    #[error("missing column `{column}` in {table}")]
    MissingColumn { table: String, column: String },
    /// A table the report built does not match its schema in `clipshift_tables::schema`.
    #[error("table {table}, column `{column}`: {message}")]
    Schema { table: String, column: String, message: String },
    #[error("cannot render figure {figure}: {message}")]
    Render { figure: String, message: String },
    #[error("unknown linkage method `{0}` (expected ward, average, complete or single)")]
    UnknownLinkage(String),
}

impl ReportError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    pub(crate) fn polars(table: impl Into<String>) -> impl FnOnce(polars::error::PolarsError) -> Self {
        let table = table.into();
        move |source| Self::Polars { table, source }
    }

    pub(crate) fn table(table: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Table { table: table.into(), message: message.into() }
    }

    pub(crate) fn schema(table: &str, column: &str, message: impl Into<String>) -> Self {
        Self::Schema { table: table.into(), column: column.into(), message: message.into() }
    }
}
