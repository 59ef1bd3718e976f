//! Where the text stage's prompts come from: a label set with prompt templates, the
//! suite's keyword prompts, and the data's captions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clipshift_tables::{ErrorKind, ErrorLog, column, read_table};

use crate::TextError;

/// The default label set: CIFAR-100's class names.
const CIFAR100: &str = include_str!("../labels/cifar100.txt");

/// The default template, CLIP's basic prompt.
pub const DEFAULT_TEMPLATE: &str = "a photo of a {}.";

/// Class names for zero-shot labelling.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelSet {
    /// `cifar100`, or the file it was read from.
    pub source: String,
    pub names: Vec<String>,
}

impl LabelSet {
    pub fn cifar100() -> Self {
        Self { source: "cifar100".into(), names: Self::parse(CIFAR100) }
    }

    /// One class name per line; blank lines and `#` comments are skipped.
    pub fn load(path: &Path) -> Result<Self, TextError> {
        let text = std::fs::read_to_string(path).map_err(|source| TextError::Io { path: path.into(), source })?;
        let names = Self::parse(&text);
        let bad = |message: String| Err(TextError::Input { path: path.into(), message });
        if names.len() < 2 {
            return bad(format!("{} labels; zero-shot labelling needs at least 2", names.len()));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = names.iter().find(|n| !seen.insert(n.as_str())) {
            return bad(format!("label {dup:?} is listed twice"));
        }
        Ok(Self { source: path.display().to_string(), names })
    }

    /// The names of a label file's text: one per line; blank lines and `#` comments are
    /// skipped.
    pub fn parse(text: &str) -> Vec<String> {
        text.lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }

    /// The prompt of `label` in `template` (`{}` is replaced by the label).
    pub fn prompt(template: &str, label: &str) -> String {
        template.replace("{}", label)
    }
}

/// Checks templates: each must hold `{}` once.
pub(crate) fn check_templates(templates: &[String]) -> Result<(), TextError> {
    for t in templates {
        if t.matches("{}").count() != 1 {
            return Err(TextError::Config(format!("template {t:?} must contain `{{}}` exactly once")));
        }
    }
    if templates.is_empty() {
        return Err(TextError::Config("at least one template is needed".into()));
    }
    Ok(())
}

/// The captions file of a data root, if it has one: `captions.parquet` or `captions.csv`.
pub(crate) fn find_captions(data_root: &Path) -> Option<PathBuf> {
    ["captions.parquet", "captions.csv"].into_iter().map(|n| data_root.join(n)).find(|p| p.is_file())
}

/// Captions by image path (relative to the data root), from a file with columns `path`
/// and `caption`. A row without a caption, or a path given twice with different
/// captions, is an error row and is skipped; an unreadable file is an error row and
/// gives no captions.
pub(crate) fn read_captions(path: &Path, errors: &ErrorLog) -> HashMap<String, String> {
    let rows = match path.extension().and_then(|e| e.to_str()) {
        Some("parquet") => parquet_rows(path),
        _ => csv_rows(path),
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(message) => {
            errors.record(Some(&path.display().to_string()), None, None, ErrorKind::Caption, message);
            return HashMap::new();
        }
    };
    let mut captions: HashMap<String, String> = HashMap::new();
    for (line, image, caption) in rows {
        let record =
            |message: String| errors.record(Some(&path.display().to_string()), None, None, ErrorKind::Caption, message);
        let caption = caption.trim();
        if image.is_empty() || caption.is_empty() {
            record(format!("row {line}: needs a path and a non-empty caption"));
            continue;
        }
        match captions.get(&image) {
            Some(first) if first != caption => record(format!("row {line}: a second, different caption for {image}")),
            Some(_) => {}
            None => {
                captions.insert(image, caption.to_string());
            }
        }
    }
    captions
}

type CaptionRow = (usize, String, String);

fn csv_rows(path: &Path) -> Result<Vec<CaptionRow>, String> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| format!("cannot read the captions: {e}"))?;
    let headers = reader.headers().map_err(|e| format!("cannot read the header: {e}"))?.clone();
    let index = |name: &str| {
        headers.iter().position(|h| h.trim() == name).ok_or_else(|| format!("no `{name}` column (it has {headers:?})"))
    };
    let (p, c) = (index("path")?, index("caption")?);
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        // Line numbers as an editor shows them: the header is line 1.
        let record = record.map_err(|e| format!("row {}: {e}", i + 2))?;
        rows.push((i + 2, record.get(p).unwrap_or("").to_string(), record.get(c).unwrap_or("").to_string()));
    }
    Ok(rows)
}

fn parquet_rows(path: &Path) -> Result<Vec<CaptionRow>, String> {
    let batch = read_table(path).map_err(|e| e.to_string())?;
    let strings = |name: &str| {
        column::<clipshift_tables::arrow::array::StringArray>(&batch, path, name).map_err(|e| e.to_string())
    };
    let (paths, captions) = (strings("path")?, strings("caption")?);
    Ok((0..batch.num_rows()).map(|i| (i, paths.value(i).to_string(), captions.value(i).to_string())).collect())
}
