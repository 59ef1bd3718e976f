use std::path::Path;

use serde_json::Value;

use crate::ReportError;

/// What the report needs from `run.json`; everything else is shown verbatim.
#[derive(Clone, Debug)]
pub(crate) struct RunInfo {
    pub(crate) raw: Value,
    pub(crate) suite_name: String,
    pub(crate) members: Vec<String>,
    pub(crate) random_init: bool,
    pub(crate) model_name: String,
    pub(crate) model_source: String,
    pub(crate) model_sha256: String,
    pub(crate) seed: Option<u64>,
    pub(crate) image_size: u32,
    pub(crate) tool_version: String,
}

impl RunInfo {
    pub(crate) fn load(dir: &Path) -> Result<Self, ReportError> {
        let path = dir.join("run.json");
        let text = std::fs::read_to_string(&path).map_err(|e| ReportError::io(&path, e))?;
        let raw: Value =
            serde_json::from_str(&text).map_err(|source| ReportError::Json { path: path.clone(), source })?;
        let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
        let suite = &raw["suite"];
        let members = suite["members"]
            .as_array()
            .map(|a| a.iter().filter_map(|m| m["name"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let model = &raw["model"];
        let source = s(&model["source"]);
        let random_init = model["random_init"].as_bool().unwrap_or(false) || source == "random-init";
        Ok(Self {
            suite_name: s(&suite["name"]),
            members,
            random_init,
            model_name: s(&model["name"]),
            model_source: source,
            model_sha256: s(&model["sha256"]),
            seed: raw["seed"].as_u64(),
            image_size: raw["image_size"].as_u64().unwrap_or(224) as u32,
            tool_version: s(&raw["tool_version"]),
            raw,
        })
    }
}
