use clipshift_tables::{AugmentManifest, ModelManifest, RunDir, RunManifest, SaeManifest, TableError, TextManifest};
use serde_json::Value;

use crate::ReportError;

/// What the report needs from `run.json`: the augment stage's section, the
/// model of the encode stage, and the file itself, shown verbatim on the page.
#[derive(Clone, Debug)]
pub(crate) struct RunInfo {
    pub(crate) augment: AugmentManifest,
    pub(crate) model: ModelManifest,
    /// The text stage's section, when it ran on the current embeddings.
    pub(crate) text: Option<TextManifest>,
    /// The SAE stage's section, when it ran on the current embeddings.
    pub(crate) sae: Option<SaeManifest>,
    pub(crate) raw: Value,
}

impl RunInfo {
    pub(crate) fn load(run: &RunDir) -> Result<Self, ReportError> {
        let manifest = RunManifest::load(run)?;
        // The report reads metrics, embeddings and augmentations together: all finished and current.
        manifest.require_complete(run, "metrics", "metrics.parquet")?;
        manifest.check_metrics_current(run)?;
        let augment = manifest.require_augment(run)?.clone();
        // Text tables of other embeddings are refused, naming what changed.
        let text_section = if manifest.check_text_current(run)? { manifest.text.clone() } else { None };
        let sae = if manifest.check_sae_current(run)? { manifest.sae.clone() } else { None };
        let model = manifest.model.ok_or_else(|| TableError::Missing {
            path: run.manifest(),
            hint: "run.json has no model section; run the `encode` stage first".into(),
        })?;
        let path = run.manifest();
        let text = std::fs::read_to_string(&path).map_err(|e| ReportError::io(&path, e))?;
        let raw = serde_json::from_str(&text).map_err(|source| ReportError::Json { path, source })?;
        Ok(Self { augment, model, text: text_section, sae, raw })
    }

    /// The suite's augmentations, in suite order.
    pub(crate) fn members(&self) -> Vec<String> {
        self.augment.suite.members.iter().map(|m| m.name.clone()).collect()
    }

    /// The suite's noise-floor members (`"floor": true` in run.json), in suite order.
    pub(crate) fn floor_members(&self) -> Vec<String> {
        let floor = |m: &&clipshift_tables::MemberManifest| m.transform.get("floor") == Some(&Value::Bool(true));
        self.augment.suite.members.iter().filter(floor).map(|m| m.name.clone()).collect()
    }
}
