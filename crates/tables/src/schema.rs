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
    /// One of the paper's measures (its heatmaps show only these).
    pub paper: bool,
}

pub const COSINE_SIMILARITY: &str = "cosine_similarity";

/// The metric columns of `metrics.parquet`, in table order.
pub const METRICS: [MetricColumn; 9] = [
    MetricColumn { name: COSINE_SIMILARITY, label: "Cosine similarity", higher_is_similar: true, paper: true },
    MetricColumn { name: "l2_distance", label: "L2 distance", higher_is_similar: false, paper: true },
    MetricColumn { name: "attention_similarity", label: "Attention similarity", higher_is_similar: true, paper: true },
    // The same comparison after moving the original's map with the variant's geometric
    // warp (equal to attention_similarity for the augmentations that move no pixel).
    MetricColumn {
        name: "attention_similarity_aligned",
        label: "Attention similarity, aligned",
        higher_is_similar: true,
        paper: false,
    },
    MetricColumn { name: "patch_similarity", label: "Patch similarity", higher_is_similar: true, paper: true },
    MetricColumn { name: "edge_preservation", label: "Edge preservation", higher_is_similar: true, paper: true },
    MetricColumn { name: "detail_preservation", label: "Detail preservation", higher_is_similar: true, paper: true },
    MetricColumn { name: "ssim", label: "SSIM", higher_is_similar: true, paper: true },
    // Embedding shift per unit of pixel change, (1 − cos) / (1 − SSIM): "the model is
    // fragile to this" against "this augmentation changes many pixels".
    MetricColumn {
        name: "sensitivity",
        label: "Sensitivity (1\u{2212}cos)/(1\u{2212}SSIM)",
        higher_is_similar: false,
        paper: false,
    },
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
        // The sweep family and severity level of the member (null outside a sweep).
        Field::new("family", DataType::Utf8, true),
        Field::new("severity", DataType::UInt32, true),
        // Part of the noise floor (a change that should not matter).
        Field::new("floor", DataType::Boolean, false),
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

/// `layer_shift.parquet`: one row per image x augmentation x layer state (0: after the
/// pre-layernorm, then one per block), comparing the class token with the original's.
pub fn layer_shift() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(IMAGE_ID, DataType::UInt64, false),
        Field::new(AUGMENTATION, DataType::Utf8, false),
        Field::new("layer", DataType::UInt32, false),
        Field::new(COSINE_SIMILARITY, DataType::Float64, true),
        Field::new("l2_distance", DataType::Float64, false),
    ]))
}

// The text stage's tables (models with a text tower).

/// `text_embeddings.parquet`: one row per distinct prompt the text stage embedded
/// (projected, not normalised, as `embedding` in `embeddings.parquet`).
pub fn text_embeddings(dim: i32) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("prompt", DataType::Utf8, false),
        Field::new("embedding", DataType::FixedSizeList(list_item(), dim), false),
    ]))
}

/// `zero_shot.parquet`: one row per image x variant (the original included): the top-1
/// label over the label set and how the label distribution moved from the original's.
pub fn zero_shot() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(IMAGE_ID, DataType::UInt64, false),
        Field::new(AUGMENTATION, DataType::Utf8, false),
        Field::new("label", DataType::Utf8, false),
        Field::new("probability", DataType::Float64, false),
        Field::new("flipped", DataType::Boolean, false),
        Field::new("kl_to_original", DataType::Float64, false),
    ]))
}

/// `keyword_alignment.parquet`: one row per image x augmentation x keyword prompt:
/// cos(variant, prompt) - cos(original, prompt).
pub fn keyword_alignment() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(IMAGE_ID, DataType::UInt64, false),
        Field::new(AUGMENTATION, DataType::Utf8, false),
        Field::new("prompt", DataType::Utf8, false),
        Field::new("delta_cosine", DataType::Float64, false),
    ]))
}

/// `caption_alignment.parquet`: one row per captioned image x variant (the original
/// included): cosine with its own caption, its change from the original's, and the rank
/// of its own caption among the run's captions (1 = retrieved first).
pub fn caption_alignment() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(IMAGE_ID, DataType::UInt64, false),
        Field::new(AUGMENTATION, DataType::Utf8, false),
        Field::new(COSINE_SIMILARITY, DataType::Float64, false),
        Field::new("delta_cosine", DataType::Float64, false),
        Field::new("rank", DataType::UInt32, false),
    ]))
}

// The SAE stage's tables (docs/sae.md).

/// `sae_latents.parquet`: one row per image x variant (the original included) x active
/// SAE latent of its last class-token state.
pub fn sae_latents() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(IMAGE_ID, DataType::UInt64, false),
        Field::new(AUGMENTATION, DataType::Utf8, false),
        Field::new("latent", DataType::UInt32, false),
        Field::new("activation", DataType::Float32, false),
    ]))
}

/// `component_attribution.parquet`: one row per image x augmentation x latent active in
/// the original or the variant: both activations, the patch attribution
/// (z_o - z_a) ∂y/∂z and Act×Grad z_a ∂y/∂z of y = cos(variant, original).
pub fn component_attribution() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(IMAGE_ID, DataType::UInt64, false),
        Field::new(AUGMENTATION, DataType::Utf8, false),
        Field::new("latent", DataType::UInt32, false),
        Field::new("z_original", DataType::Float32, false),
        Field::new("z_augmented", DataType::Float32, false),
        Field::new("patch_attribution", DataType::Float64, false),
        Field::new("act_x_grad", DataType::Float64, false),
    ]))
}

/// `faithfulness.parquet`: one row per image x augmentation x order x n: the cosine with
/// the original after restoring the variant's top-n latents of that order.
pub fn faithfulness() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(IMAGE_ID, DataType::UInt64, false),
        Field::new(AUGMENTATION, DataType::Utf8, false),
        Field::new("order", DataType::Utf8, false),
        Field::new("n", DataType::UInt32, false),
        Field::new("cosine", DataType::Float64, false),
    ]))
}

/// `latent_labels.parquet`: one row per SAE latent: the concept whose text embedding is
/// closest to the latent's decoder direction through the head, and that cosine.
pub fn latent_labels() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("latent", DataType::UInt32, false),
        Field::new("label", DataType::Utf8, false),
        Field::new("score", DataType::Float64, false),
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

// The report stage's tables. Statistics are nullable: null where undefined
// (the std of one value, a test with no non-zero difference), never NaN.

fn text(name: &str) -> Field {
    Field::new(name, DataType::Utf8, false)
}

fn u32_field(name: &str) -> Field {
    Field::new(name, DataType::UInt32, false)
}

fn u64_field(name: &str) -> Field {
    Field::new(name, DataType::UInt64, false)
}

/// A float column; `nullable` where the value can be undefined.
fn f64_field(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Float64, nullable)
}

/// `summary.parquet`: one row per augmentation x metric.
pub fn summary() -> SchemaRef {
    let mut fields = vec![text(AUGMENTATION), text("metric"), u64_field("n")];
    fields.extend(["mean", "std", "median", "p05", "p95", "ci_low", "ci_high"].map(|c| f64_field(c, true)));
    fields.push(u32_field("rank"));
    Arc::new(Schema::new(fields))
}

/// `distance_matrix.parquet`: one row per ordered pair of variants (the full square).
pub fn distance_matrix() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text("a"),
        text("b"),
        f64_field("cosine_distance", false),
        f64_field("euclidean_distance", false),
        u64_field("n_images"),
    ]))
}

/// `linkage.parquet`: one row per merge step of each clustered set (scipy's layout).
pub fn linkage() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text("set"),
        text("method"),
        u32_field("step"),
        u32_field("left"),
        u32_field("right"),
        f64_field("distance", false),
        u32_field("size"),
    ]))
}

/// `clusters.parquet`: one row per clustered set x observation.
pub fn clusters() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text("set"),
        text("method"),
        u32_field("observation"),
        text(AUGMENTATION),
        u32_field("cluster"),
        u32_field("leaf_position"),
        f64_field("threshold", false),
    ]))
}

/// `report/wilcoxon.parquet`: one row per metric x pair of augmentations.
pub fn wilcoxon() -> SchemaRef {
    let mut fields = vec![text("metric"), text("a"), text("b"), u64_field("n_pairs"), u64_field("n_nonzero")];
    fields.extend(["mean_difference", "statistic", "p_value", "p_holm"].map(|c| f64_field(c, true)));
    fields.extend([text("method"), Field::new("significant", DataType::Boolean, false)]);
    Arc::new(Schema::new(fields))
}

/// `report/cosine_distribution.parquet`: one row per histogram bin (`kind` =
/// `histogram`, from `x_left` to `x_right`) and per KDE point (`kind` = `kde`,
/// at `x_left` = `x_right`) of each augmentation's panel.
pub fn cosine_distribution() -> SchemaRef {
    Arc::new(Schema::new(vec![
        u32_field("panel"),
        text(AUGMENTATION),
        u64_field("n"),
        f64_field("mean", false),
        f64_field("std", true),
        text("kind"),
        f64_field("x_left", false),
        f64_field("x_right", false),
        Field::new("count", DataType::UInt64, true),
        f64_field("density", true),
    ]))
}

/// `report/l2_kde.parquet`: one row per augmentation x point of its density curve.
pub fn l2_kde() -> SchemaRef {
    Arc::new(Schema::new(vec![text(AUGMENTATION), f64_field("l2_distance", false), f64_field("density", false)]))
}

/// `report/layer_profile.parquet`: one row per augmentation x layer state: the mean cosine
/// similarity to the original's class token, its bootstrap 95% interval, and the
/// augmentation's half-shift layer (the first reaching half the last layer's shift).
pub fn layer_profile() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text(AUGMENTATION),
        u32_field("layer"),
        f64_field("mean_cosine_similarity", false),
        f64_field("ci_low", false),
        f64_field("ci_high", false),
        u64_field("n"),
        Field::new("half_shift_layer", DataType::UInt32, true),
    ]))
}

/// `report/zero_shot_flips.parquet`: one row per augmentation: how often the top-1 zero-shot
/// label flips and the mean KL(original ‖ variant), with bootstrap 95% intervals.
pub fn zero_shot_summary() -> SchemaRef {
    let mut fields = vec![text(AUGMENTATION), u64_field("n")];
    fields.extend(
        ["flip_rate", "flip_ci_low", "flip_ci_high", "mean_kl", "kl_ci_low", "kl_ci_high"].map(|c| f64_field(c, false)),
    );
    Arc::new(Schema::new(fields))
}

/// `report/keyword_heatmap.parquet`: one row per augmentation x keyword prompt: the
/// mean change of cosine similarity to the prompt, and whether it is the augmentation's own.
pub fn keyword_alignment_summary() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text(AUGMENTATION),
        text("prompt"),
        Field::new("own", DataType::Boolean, false),
        u64_field("n"),
        f64_field("mean_delta_cosine", false),
        f64_field("ci_low", false),
        f64_field("ci_high", false),
    ]))
}

/// `report/keyword_shift_correlation.parquet`: one row per augmentation with keyword
/// prompts: Pearson's r over images between the embedding shift (1 − cosine similarity)
/// and the change of similarity to its own keywords (their mean), with a bootstrap interval.
pub fn keyword_shift_correlation() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text(AUGMENTATION),
        u64_field("n"),
        f64_field("pearson_r", true),
        f64_field("ci_low", true),
        f64_field("ci_high", true),
    ]))
}

/// `report/caption_retrieval.parquet`: one row per variant (the original first): the mean
/// image–caption cosine, its mean change, and caption retrieval recall@1 and @5 among the
/// run's captioned images, with bootstrap 95% intervals.
pub fn caption_alignment_summary() -> SchemaRef {
    let mut fields = vec![text(AUGMENTATION), u64_field("n"), u64_field("captions")];
    fields.extend(
        [
            "mean_cosine",
            "mean_delta_cosine",
            "delta_ci_low",
            "delta_ci_high",
            "recall_at_1",
            "recall_at_1_ci_low",
            "recall_at_1_ci_high",
            "recall_at_5",
            "recall_at_5_ci_low",
            "recall_at_5_ci_high",
        ]
        .map(|c| f64_field(c, false)),
    );
    Arc::new(Schema::new(fields))
}

/// `report/l2_bars.parquet`: one row per augmentation.
pub fn l2_bars() -> SchemaRef {
    Arc::new(Schema::new(vec![text(AUGMENTATION), f64_field("mean", false), f64_field("std", true), u64_field("n")]))
}

/// `report/dendrogram.parquet` and `report/dendrogram_variants.parquet`: one
/// row per drawn element: `link` (a U of four points, scipy's icoord and
/// dcoord), `leaf` (a labelled leaf) and `threshold` (the cut).
pub fn dendrogram() -> SchemaRef {
    let mut fields =
        vec![text("kind"), Field::new("label", DataType::Utf8, true), Field::new("cluster", DataType::UInt32, true)];
    fields.extend(["x0", "x1", "x2", "x3", "y0", "y1", "y2", "y3"].map(|c| f64_field(c, false)));
    Arc::new(Schema::new(fields))
}

/// `drift.parquet` (report): per augmentation, the paired sign-flip test of the shift
/// of unit embeddings and the MMD two-sample test of original against variant
/// embeddings, with effect sizes and permutation p-values.
pub fn drift() -> SchemaRef {
    let mut fields = vec![text(AUGMENTATION), u64_field("n")];
    fields.extend(
        ["shift_statistic", "shift_effect", "shift_p", "mmd2", "mmd_bandwidth", "mmd_effect", "mmd_p"]
            .map(|c| f64_field(c, false)),
    );
    Arc::new(Schema::new(fields))
}

/// `noise_floor.parquet` (report, runs with floor members): per augmentation, its mean
/// cosine similarity against the floor (per image, the smallest cosine any floor member
/// gives), the paired mean difference with its bootstrap 95% interval, and whether it
/// stays inside the floor (the interval reaches 0). Floor members have `floor` true and
/// null tests; the row `noise_floor` is the floor itself (mean and interval: the band
/// the figures draw).
pub fn noise_floor() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text(AUGMENTATION),
        Field::new("floor", DataType::Boolean, false),
        u64_field("n"),
        f64_field("mean_cosine", false),
        f64_field("floor_cosine", true),
        f64_field("difference", true),
        f64_field("ci_low", true),
        f64_field("ci_high", true),
        Field::new("inside", DataType::Boolean, true),
    ]))
}

/// `report/attention_alignment.parquet`: per augmentation, the mean attention similarity
/// in the paper's frame and aligned to the variant's (`attention_similarity_aligned`),
/// each with its bootstrap 95% interval (from `summary.parquet`).
pub fn attention_alignment() -> SchemaRef {
    let mut fields = vec![text(AUGMENTATION), u64_field("n")];
    fields.extend(
        ["paper_mean", "paper_ci_low", "paper_ci_high", "aligned_mean", "aligned_ci_low", "aligned_ci_high"]
            .map(|c| f64_field(c, false)),
    );
    Arc::new(Schema::new(fields))
}

/// `report/sensitivity.parquet`: per augmentation, the distribution of the per-image
/// sensitivity (1 − cos) / (1 − SSIM).
pub fn sensitivity_summary() -> SchemaRef {
    let mut fields = vec![text(AUGMENTATION), u64_field("n")];
    fields.extend(["p05", "p25", "median", "p75", "p95", "mean"].map(|c| f64_field(c, false)));
    Arc::new(Schema::new(fields))
}

/// `report/dose_response.parquet`: per sweep family, severity and quantity
/// (`cosine_similarity`, `attention_similarity`, `flip_rate`), the mean over images and
/// its bootstrap 95% interval.
pub fn dose_response() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text("family"),
        u32_field("severity"),
        text(AUGMENTATION),
        text("quantity"),
        u64_field("n"),
        f64_field("mean", false),
        f64_field("ci_low", true),
        f64_field("ci_high", true),
    ]))
}

/// `report/sae_top_latents.parquet`: per augmentation, the SAE latents it switches off
/// (mean z_augmented − z_original < 0) and on (> 0) that explain most of its cosine drop,
/// by mean patch attribution over its images (zero where a latent is inactive in both).
pub fn sae_top_latents() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text(AUGMENTATION),
        text("direction"),
        u32_field("rank"),
        u32_field("latent"),
        Field::new("label", DataType::Utf8, true),
        f64_field("mean_patch_attribution", false),
        f64_field("mean_delta_z", false),
        u64_field("images_active"),
    ]))
}

/// `report/sae_jaccard.parquet`: per augmentation, the mean Jaccard overlap of the active
/// latent sets of original and variant, with its bootstrap 95% interval.
pub fn sae_jaccard() -> SchemaRef {
    let mut fields = vec![text(AUGMENTATION), u64_field("n")];
    fields.extend(["mean_jaccard", "jaccard_ci_low", "jaccard_ci_high"].map(|c| f64_field(c, false)));
    Arc::new(Schema::new(fields))
}

/// `report/sae_faithfulness.parquet`: per order and number of restored latents, the mean
/// cosine to the original over all variants and the mean share of the cosine gap closed.
pub fn sae_faithfulness_summary() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text("order"),
        u32_field("n"),
        u64_field("pairs"),
        f64_field("mean_cosine", false),
        f64_field("mean_gap_closed", true),
    ]))
}

/// `report/radar.parquet`: one row per augmentation x radar metric.
pub fn radar() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text(AUGMENTATION),
        text("metric"),
        f64_field("mean", true),
        f64_field("best", true),
        f64_field("worst", true),
    ]))
}

/// `report/heatmap_sorted.parquet` and `report/heatmap_clustered.parquet`:
/// one row per cell (metric x augmentation) at (`row`, `column`).
pub fn metric_heatmap() -> SchemaRef {
    Arc::new(Schema::new(vec![
        text(AUGMENTATION),
        text("metric"),
        f64_field("mean", true),
        f64_field("normalised", true),
        u32_field("row"),
        u32_field("column"),
    ]))
}

/// `report/ranked_profiles.parquet`: one row per augmentation x radar metric.
pub fn ranked_profiles() -> SchemaRef {
    Arc::new(Schema::new(vec![
        u32_field("rank"),
        text(AUGMENTATION),
        f64_field("overall_score", true),
        text("metric"),
        f64_field("mean", true),
    ]))
}

/// `report/sample_heatmap.parquet`: one row per sampled image x augmentation.
pub fn sample_heatmap() -> SchemaRef {
    Arc::new(Schema::new(vec![
        u64_field(IMAGE_ID),
        text(AUGMENTATION),
        f64_field(COSINE_SIMILARITY, true),
        u32_field("row"),
    ]))
}

/// `report/gallery.parquet`: one row per thumbnail; `pixels` says where they
/// came from (`png column` or `replayed`).
pub fn gallery() -> SchemaRef {
    Arc::new(Schema::new(vec![
        u64_field(IMAGE_ID),
        text(AUGMENTATION),
        u32_field("row"),
        u32_field("column"),
        text("pixels"),
    ]))
}

/// `report/attention_overlays.parquet`: one row per variant x attention patch
/// (min-max normalised within the variant).
pub fn attention_overlays() -> SchemaRef {
    Arc::new(Schema::new(vec![
        u64_field(IMAGE_ID),
        text(AUGMENTATION),
        f64_field(COSINE_SIMILARITY, true),
        u32_field("patch_row"),
        u32_field("patch_col"),
        f64_field("attention", false),
    ]))
}

#[cfg(test)]
mod report_tests {
    use super::*;

    #[test]
    fn report_tables_have_distinct_column_names() {
        let all = [
            summary(),
            distance_matrix(),
            linkage(),
            clusters(),
            wilcoxon(),
            cosine_distribution(),
            l2_kde(),
            l2_bars(),
            layer_profile(),
            zero_shot_summary(),
            keyword_alignment_summary(),
            keyword_shift_correlation(),
            caption_alignment_summary(),
            dose_response(),
            drift(),
            noise_floor(),
            attention_alignment(),
            sensitivity_summary(),
            sae_top_latents(),
            sae_jaccard(),
            sae_faithfulness_summary(),
            dendrogram(),
            radar(),
            metric_heatmap(),
            ranked_profiles(),
            sample_heatmap(),
            gallery(),
            attention_overlays(),
        ];
        for schema in all {
            let mut names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            let n = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), n, "{schema:?}");
        }
    }
}
