//! Column names and Arrow schemas of every table in a run directory.
//!
//! `image_id` is a stable u64 derived from the source file's content; `augmentation`
//! is `original` or a suite member's name. Metric columns are nullable f64: null
//! where a metric is undefined, never NaN.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

pub const IMAGE_ID: &str = "image_id";
pub const AUGMENTATION: &str = "augmentation";
/// The name of the unaugmented variant in every table.
pub const ORIGINAL: &str = "original";

/// A per-image metric column of `metrics.parquet` (definitions in `docs/tables.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricColumn {
    pub name: &'static str,
    /// How figures and tables label it.
    pub label: &'static str,
    /// True when larger values mean the variant stayed closer to the original.
    pub higher_is_similar: bool,
}

pub const COSINE_SIMILARITY: &str = "cosine_similarity";

/// The metric columns of `metrics.parquet`, in table order.
pub const METRICS: [MetricColumn; 7] = [
    MetricColumn { name: COSINE_SIMILARITY, label: "Cosine similarity", higher_is_similar: true },
    MetricColumn { name: "l2_distance", label: "L2 distance", higher_is_similar: false },
    MetricColumn { name: "attention_similarity", label: "Attention similarity", higher_is_similar: true },
    MetricColumn { name: "patch_similarity", label: "Patch similarity", higher_is_similar: true },
    MetricColumn { name: "edge_preservation", label: "Edge preservation", higher_is_similar: true },
    MetricColumn { name: "detail_preservation", label: "Detail preservation", higher_is_similar: true },
    MetricColumn { name: "ssim", label: "SSIM", higher_is_similar: true },
];

/// The names of [`METRICS`], in table order.
pub const METRIC_COLUMNS: [&str; METRICS.len()] = {
    let mut names = [""; METRICS.len()];
    let mut i = 0;
    while i < METRICS.len() {
        names[i] = METRICS[i].name;
        i += 1;
    }
    names
};

/// `images.parquet`: one row per source image.
pub fn images() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(IMAGE_ID, DataType::UInt64, false),
        Field::new("path", DataType::Utf8, false),
        Field::new("width", DataType::UInt32, false),
        Field::new("height", DataType::UInt32, false),
        Field::new("format", DataType::Utf8, false),
    ]))
}

/// `augmentations.parquet`: one row per image x variant.
pub fn augmentations() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(IMAGE_ID, DataType::UInt64, false),
        Field::new(AUGMENTATION, DataType::Utf8, false),
        Field::new("seed", DataType::UInt64, false),
        Field::new("params", DataType::Utf8, false),
        Field::new("png", DataType::Binary, true),
    ]))
}

/// The item field of every fixed-size list column.
pub fn list_item() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Float32, false))
}

/// `embeddings.parquet`: one row per image x variant. `patches` is `None` for
/// models without an attention output; `layers` is the number of per-layer
/// class-token states, `None` when the model does not provide them.
pub fn embeddings(dim: i32, patches: Option<i32>, layers: Option<(i32, i32)>) -> SchemaRef {
    let mut fields = vec![
        Field::new(IMAGE_ID, DataType::UInt64, false),
        Field::new(AUGMENTATION, DataType::Utf8, false),
        Field::new("embedding", DataType::FixedSizeList(list_item(), dim), false),
        Field::new("cls_attention", DataType::FixedSizeList(list_item(), patches.unwrap_or(1)), true),
    ];
    if let Some((count, hidden)) = layers {
        fields.push(Field::new("layer_cls_states", DataType::FixedSizeList(list_item(), count * hidden), true));
    }
    Arc::new(Schema::new(fields))
}

/// `metrics.parquet`: one row per image x augmentation (the original excluded).
pub fn metrics() -> SchemaRef {
    let mut fields =
        vec![Field::new(IMAGE_ID, DataType::UInt64, false), Field::new(AUGMENTATION, DataType::Utf8, false)];
    fields.extend(METRIC_COLUMNS.iter().map(|c| Field::new(*c, DataType::Float64, true)));
    Arc::new(Schema::new(fields))
}

/// `pairwise.parquet`: one row per image x unordered pair of variants (scipy pdist order).
pub fn pairwise() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(IMAGE_ID, DataType::UInt64, false),
        Field::new("a", DataType::Utf8, false),
        Field::new("b", DataType::Utf8, false),
        Field::new("cosine_distance", DataType::Float64, true),
        Field::new("euclidean_distance", DataType::Float64, false),
    ]))
}

/// `errors.parquet`: one row per failure, from any stage.
pub fn errors() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("stage", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, true),
        Field::new(IMAGE_ID, DataType::UInt64, true),
        Field::new(AUGMENTATION, DataType::Utf8, true),
        Field::new("kind", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, false),
    ]))
}
