//! Augmentation suites: the paper's nine and suites read from TOML.
//!
//! # TOML format
//!
//! ```toml
//! name = "my-suite"            # optional; defaults to the file stem / origin
//!
//! # One member per [[member]] table: a unique `name`, the albumentations transform
//! # in snake_case, and any hyperparameters that differ from albumentations' defaults
//! # (same names and tuple semantics as albumentations 2.0; ranges are [low, high]).
//! [[member]]
//! name = "noise"
//! transform = "gauss_noise"
//! std_range = [0.44, 0.88]
//!
//! [[member]]
//! name = "flip"
//! transform = "horizontal_flip"
//! keywords = ["a mirrored photo"]   # optional: prompts for the text stage's keyword alignment
//!
//! [[member]]
//! name = "jpeg90"
//! transform = "jpeg"
//! quality_range = [90, 90]
//! floor = true                      # optional: part of the noise floor (see below)
//!
//! # A severity sweep: one member per value of `vary`, named `<prefix>_<value>`
//! # (or by `names`). A scalar value of a range parameter means [v, v].
//! [[sweep]]
//! prefix = "noise"
//! transform = "gauss_noise"
//! vary = "std_range"
//! values = [0.05, 0.1, 0.2, 0.4, 0.9]
//! # names = ["n1", "n2", "n3", "n4", "n5"]   # optional, one per value
//!
//! # Or several parameters per level: `levels` lists the parameters of each level, and
//! # the members are `<family>_1`, `<family>_2`, ... (or `names`).
//! [[sweep]]
//! family = "color_jitter"
//! transform = "color_jitter"
//! levels = [
//!   { brightness = [0.9, 1.1], contrast = [0.9, 1.1], saturation = [0.9, 1.1], hue = [-0.1, 0.1] },
//!   { brightness = [0.8, 1.2], contrast = [0.8, 1.2], saturation = [0.8, 1.2], hue = [-0.2, 0.2] },
//! ]
//! ```
//!
//! The levels of one sweep are a **family** (`family`, default the prefix) and are
//! paired: their random draws are keyed by the family, not by the member, so for one
//! image every level gets the same draws (noise field, dropout positions, warp
//! directions, jitter order) and only the magnitude changes. Each level's `severity` is
//! its position, from 1. (A range that collapses to one value draws nothing, so keep a
//! swept parameter a range at every level, or a value at every level.)
//!
//! A **floor** member is a change that should not matter; the report measures every
//! augmentation against the largest shift the floor members cause. [`Suite::with_floor`]
//! adds the built-in floor ([`Suite::floor`]: JPEG at quality 95, a one-pixel shift, a
//! resize round trip), which is what `--floor` does.
//!
//! Transforms: `gauss_noise`, `gaussian_blur`, `color_jitter`, `shift_scale_rotate`,
//! `horizontal_flip`, `elastic_transform`, `perspective`, `random_brightness_contrast`,
//! `coarse_dropout` (albumentations' nine), and `jpeg`, `pixel_shift`,
//! `resize_round_trip` (the floor's; see [`Transform`] for each one's fields). Border modes are
//! `constant`, `replicate`, `reflect`, `reflect101`, `wrap`; dropout `fill` is a grey
//! level, `[r, g, b]`, `"random"` or `"random_uniform"`. Member names must be unique,
//! non-empty, free of whitespace and not `original` (the stage's unaugmented variant).
//! Members keep file order: `[[member]]` tables first, then sweeps in order.

use std::path::Path;

use serde::Serialize;

use crate::AugmentError;
use crate::transforms::{
    CoarseDropout, ColorJitter, DropoutFill, ElasticTransform, FillMode, GaussNoise, GaussianBlur, Jpeg, Perspective,
    PixelShift, RandomBrightnessContrast, ResizeRoundTrip, ShiftScaleRotate, Transform,
};

/// A named augmentation in a suite; the name keys the output tables, and the RNG
/// unless the member is a level of a sweep (then its family does).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SuiteMember {
    pub name: String,
    pub transform: Transform,
    /// Text prompts that describe this augmentation ('a blurry photo'), for the text
    /// stage's keyword alignment; they do not change any pixel.
    #[serde(skip)]
    pub keywords: Vec<String>,
    /// Its family and severity when it is a level of a sweep.
    #[serde(skip)]
    pub level: Option<Level>,
    /// Part of the noise floor: a change that should not matter.
    #[serde(skip)]
    pub floor: bool,
}

/// A member's place in a severity sweep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Level {
    pub family: String,
    /// 1 for the sweep's first level, and so on.
    pub severity: u32,
}

impl SuiteMember {
    /// What keys the member's random draws: its family for a sweep level (so the levels
    /// of a family are paired), else its name.
    pub fn rng_key(&self) -> &str {
        self.level.as_ref().map_or(&self.name, |l| &l.family)
    }
}

/// An ordered set of uniquely named augmentations.
#[derive(Clone, Debug, PartialEq)]
pub struct Suite {
    name: String,
    members: Vec<SuiteMember>,
}

impl Suite {
    /// The study's nine augmentations with its hyperparameters, each at p = 1.
    pub fn paper() -> Suite {
        let m = |name: &str, transform: Transform| SuiteMember {
            name: name.to_string(),
            keywords: vec![paper_keyword(name).to_string()],
            transform,
            level: None,
            floor: false,
        };
        Suite {
            name: "paper".to_string(),
            members: vec![
                m("noise", Transform::GaussNoise(GaussNoise { std_range: [0.44, 0.88], ..GaussNoise::default() })),
                m("blur", Transform::GaussianBlur(GaussianBlur { blur_limit: [3, 7], ..GaussianBlur::default() })),
                m(
                    "color_jitter",
                    Transform::ColorJitter(ColorJitter {
                        brightness: [0.8, 1.2],
                        contrast: [0.8, 1.2],
                        saturation: [0.8, 1.2],
                        hue: [-0.2, 0.2],
                    }),
                ),
                m(
                    "shift_scale_rotate",
                    Transform::ShiftScaleRotate(ShiftScaleRotate {
                        shift_limit_x: [-0.0625, 0.0625],
                        shift_limit_y: [-0.0625, 0.0625],
                        scale_limit: [-0.1, 0.1],
                        rotate_limit: [-15.0, 15.0],
                        ..ShiftScaleRotate::default()
                    }),
                ),
                m("horizontal_flip", Transform::HorizontalFlip),
                m(
                    "elastic",
                    Transform::ElasticTransform(ElasticTransform {
                        alpha: 30.0,
                        sigma: 60.0,
                        ..ElasticTransform::default()
                    }),
                ),
                m("perspective", Transform::Perspective(Perspective { scale: [0.05, 0.1], ..Perspective::default() })),
                m(
                    "brightness_contrast",
                    Transform::RandomBrightnessContrast(RandomBrightnessContrast {
                        brightness_limit: [-0.2, 0.2],
                        contrast_limit: [-0.2, 0.2],
                        brightness_by_max: true,
                    }),
                ),
                m(
                    "coarse_dropout",
                    Transform::CoarseDropout(CoarseDropout {
                        num_holes_range: [6, 8],
                        hole_height_range: [16.0, 16.0],
                        hole_width_range: [16.0, 16.0],
                        fill: DropoutFill::Mode(FillMode::Random),
                    }),
                ),
            ],
        }
    }

    /// The noise floor: changes that should not matter. JPEG re-encoding at quality 95
    /// (`floor_jpeg95`), a shift by one pixel (`floor_shift1`) and a bilinear resize to
    /// 3/4 of the side and back (`floor_resize75`).
    pub fn floor() -> Suite {
        let m = |name: &str, transform: Transform| SuiteMember {
            name: name.to_string(),
            transform,
            keywords: Vec::new(),
            level: None,
            floor: true,
        };
        Suite {
            name: "floor".to_string(),
            members: vec![
                m("floor_jpeg95", Transform::Jpeg(Jpeg { quality_range: [95, 95] })),
                m("floor_shift1", Transform::PixelShift(PixelShift::default())),
                m("floor_resize75", Transform::ResizeRoundTrip(ResizeRoundTrip { scale: 0.75 })),
            ],
        }
    }

    /// This suite with the built-in floor ([`Suite::floor`]) appended; an error when a
    /// member already has one of the floor's names.
    pub fn with_floor(self) -> Result<Suite, AugmentError> {
        let mut members = self.members;
        members.extend(Suite::floor().members);
        Suite::new(&self.name, members)
    }

    /// Build a suite from members, enforcing the naming rules.
    pub fn new(name: &str, members: Vec<SuiteMember>) -> Result<Suite, AugmentError> {
        let err = |message: String| AugmentError::Suite { origin: name.to_string(), message };
        if members.is_empty() {
            return Err(err("a suite needs at least one member".into()));
        }
        let mut seen = std::collections::HashSet::new();
        for m in &members {
            if m.name.is_empty() || m.name.chars().any(char::is_whitespace) {
                return Err(err(format!("member name {:?} must be non-empty and contain no whitespace", m.name)));
            }
            if m.name == "original" {
                return Err(err("member name \"original\" is reserved for the unaugmented image".into()));
            }
            if !seen.insert(m.name.as_str()) {
                return Err(err(format!("member name {:?} is used more than once", m.name)));
            }
            m.transform.validate().map_err(|e| err(format!("member {:?}: {e}", m.name)))?;
        }
        Ok(Suite { name: name.to_string(), members })
    }

    /// Parse a suite TOML (format in the module docs); `origin` names it in errors and
    /// is the default suite name.
    pub fn from_toml_str(origin: &str, text: &str) -> Result<Suite, AugmentError> {
        let err = |message: String| AugmentError::Suite { origin: origin.to_string(), message };
        let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| err(e.to_string()))?;
        let mut name = origin.to_string();
        let mut members = Vec::new();
        let mut sweeps = Vec::new();
        for (key, value) in doc {
            match (key.as_str(), value) {
                ("name", toml::Value::String(s)) => name = s,
                ("member", toml::Value::Array(items)) => members = items,
                ("sweep", toml::Value::Array(items)) => sweeps = items,
                (other, _) => {
                    return Err(err(format!(
                        "unexpected top-level key {other:?} (expected `name`, `[[member]]` or `[[sweep]]`)"
                    )));
                }
            }
        }
        let mut out = Vec::new();
        for (i, item) in members.into_iter().enumerate() {
            out.push(parse_member(i, item).map_err(err)?);
        }
        let mut families = std::collections::HashSet::new();
        for (i, item) in sweeps.into_iter().enumerate() {
            let what = format!("sweep #{}", i + 1);
            let (family, sweep) = parse_sweep(&what, item).map_err(err)?;
            if !families.insert(family.clone()) {
                return Err(err(format!("{what}: family {family:?} is used by another sweep")));
            }
            out.extend(sweep);
        }
        Suite::new(&name, out).map_err(|e| match e {
            AugmentError::Suite { message, .. } => err(message),
            other => other,
        })
    }

    /// Read a suite TOML file; the file stem is the default suite name.
    pub fn load(path: &Path) -> Result<Suite, AugmentError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| AugmentError::Io { path: path.to_path_buf(), source })?;
        let origin = path.display().to_string();
        let mut suite = Suite::from_toml_str(&origin, &text)?;
        if suite.name == origin
            && let Some(stem) = path.file_stem()
        {
            suite.name = stem.to_string_lossy().into_owned();
        }
        Ok(suite)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn members(&self) -> &[SuiteMember] {
        &self.members
    }

    /// The member called `name`, if any.
    pub fn member(&self, name: &str) -> Option<&SuiteMember> {
        self.members.iter().find(|m| m.name == name)
    }

    /// Each member's keyword prompts (members without any left out).
    pub fn keywords(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        self.members.iter().filter(|m| !m.keywords.is_empty()).map(|m| (m.name.clone(), m.keywords.clone())).collect()
    }

    /// `{"name": ..., "members": [{"name": ..., "transform": "gauss_noise", ...}, ...]}`
    /// with every hyperparameter resolved (for `run.json`).
    pub fn to_json(&self) -> serde_json::Value {
        let members = self
            .members
            .iter()
            .map(|m| {
                let mut v = serde_json::to_value(&m.transform).expect("transform serialises");
                if let serde_json::Value::Object(map) = &mut v {
                    map.insert("name".into(), serde_json::Value::String(m.name.clone()));
                    if let Some(level) = &m.level {
                        map.insert("family".into(), level.family.clone().into());
                        map.insert("severity".into(), level.severity.into());
                    }
                    if m.floor {
                        map.insert("floor".into(), true.into());
                    }
                }
                v
            })
            .collect();
        serde_json::json!({ "name": self.name, "members": serde_json::Value::Array(members) })
    }
}

/// The paper suite's keyword prompt for each of its members.
fn paper_keyword(member: &str) -> &'static str {
    match member {
        "noise" => "a noisy photo",
        "blur" => "a blurry photo",
        "color_jitter" => "a photo with shifted colours",
        "shift_scale_rotate" => "a rotated and shifted photo",
        "horizontal_flip" => "a mirrored photo",
        "elastic" => "a warped photo",
        "perspective" => "a photo seen in perspective",
        "brightness_contrast" => "a brighter photo",
        "coarse_dropout" => "a photo with black squares",
        other => unreachable!("no keyword for paper member {other}"),
    }
}

/// One `[[member]]` table (the `i`-th, from 0).
fn parse_member(i: usize, item: toml::Value) -> Result<SuiteMember, String> {
    let toml::Value::Table(mut table) = item else {
        return Err(format!("member #{} is not a table", i + 1));
    };
    let name = match table.remove("name") {
        Some(toml::Value::String(s)) => s,
        _ => return Err(format!("member #{} needs a string `name`", i + 1)),
    };
    let keywords = take_keywords(&mut table).map_err(|e| format!("member {name:?}: {e}"))?;
    let floor = match table.remove("floor") {
        None => false,
        Some(toml::Value::Boolean(b)) => b,
        Some(_) => return Err(format!("member {name:?}: `floor` must be true or false")),
    };
    let transform = parse_transform(table).map_err(|e| format!("member {name:?}: {e}"))?;
    Ok(SuiteMember { name, transform, keywords, level: None, floor })
}

/// One `[[sweep]]` table (`what` names it in errors): its family and its members, one
/// per level, in severity order.
fn parse_sweep(what: &str, item: toml::Value) -> Result<(String, Vec<SuiteMember>), String> {
    let toml::Value::Table(mut table) = item else {
        return Err(format!("{what} is not a table"));
    };
    let prefix = match table.remove("prefix") {
        Some(toml::Value::String(s)) => Some(s),
        None => None,
        _ => return Err(format!("{what}: `prefix` must be a string")),
    };
    let family = match table.remove("family") {
        Some(toml::Value::String(s)) if !s.is_empty() => Some(s),
        None => None,
        _ => return Err(format!("{what}: `family` must be a non-empty string")),
    };
    let levels = sweep_levels(&mut table).map_err(|e| format!("{what}: {e}"))?;
    let names = match table.remove("names") {
        Some(toml::Value::Array(v)) => {
            let names: Option<Vec<String>> = v.into_iter().map(|n| n.as_str().map(str::to_string)).collect();
            let names = names.ok_or_else(|| format!("{what}: `names` must be strings"))?;
            if names.len() != levels.len() {
                return Err(format!("{what}: `names` needs one entry per level"));
            }
            Some(names)
        }
        None => None,
        _ => return Err(format!("{what}: `names` must be an array of strings")),
    };
    let keywords = take_keywords(&mut table).map_err(|e| format!("{what}: {e}"))?;
    let first_name = names.as_ref().map(|n| n[0].clone());
    let family = family
        .or_else(|| prefix.clone())
        .or(first_name)
        .ok_or_else(|| format!("{what}: needs `family`, `prefix` or `names`"))?;
    let mut members = Vec::with_capacity(levels.len());
    for (j, (label, described, params)) in levels.into_iter().enumerate() {
        if let Some(key) = params.keys().find(|k| table.contains_key(*k)) {
            return Err(format!("{what}: {key:?} is swept, so it must not also be set"));
        }
        let name = match &names {
            Some(n) => n[j].clone(),
            None => format!("{}_{label}", prefix.as_deref().unwrap_or(&family)),
        };
        let mut t = table.clone();
        t.extend(params.clone());
        let transform = match parse_transform(t) {
            Ok(tr) => tr,
            Err(first) => {
                // A scalar for a range parameter means [v, v].
                let mut t = table.clone();
                t.extend(params.iter().map(|(k, v)| match v {
                    toml::Value::Float(_) | toml::Value::Integer(_) => {
                        (k.clone(), toml::Value::Array(vec![v.clone(), v.clone()]))
                    }
                    _ => (k.clone(), v.clone()),
                }));
                parse_transform(t).map_err(|_| format!("{what}, {described}: {first}"))?
            }
        };
        let level = Level { family: family.clone(), severity: j as u32 + 1 };
        members.push(SuiteMember { name, transform, keywords: keywords.clone(), level: Some(level), floor: false });
    }
    Ok((family, members))
}

/// A sweep's levels, from `levels` (tables of parameters) or `vary` + `values`: per level
/// its label in member names, how errors name it, and its parameters.
fn sweep_levels(table: &mut toml::Table) -> Result<Vec<(String, String, toml::Table)>, String> {
    match (table.remove("levels"), table.remove("vary")) {
        (Some(_), Some(_)) => Err("give `levels` or `vary` and `values`, not both".into()),
        (Some(toml::Value::Array(levels)), None) if !levels.is_empty() => levels
            .into_iter()
            .enumerate()
            .map(|(j, level)| match level {
                toml::Value::Table(t) => Ok(((j + 1).to_string(), format!("level {}", j + 1), t)),
                _ => Err(format!("level {} is not a table of parameters", j + 1)),
            })
            .collect(),
        (Some(_), None) => Err("`levels` must be a non-empty array of tables".into()),
        (None, Some(toml::Value::String(vary))) => {
            let values = match table.remove("values") {
                Some(toml::Value::Array(v)) if !v.is_empty() => v,
                _ => return Err("needs a non-empty `values` array".into()),
            };
            let level = |v: toml::Value| {
                let label = value_label(&v);
                (label.clone(), format!("{vary} = {label}"), toml::Table::from_iter([(vary.clone(), v)]))
            };
            Ok(values.into_iter().map(level).collect())
        }
        (None, Some(_)) => Err("`vary` must be a string naming the parameter to sweep".into()),
        (None, None) => Err("needs `levels`, or `vary` naming the parameter to sweep".into()),
    }
}

/// Removes `keywords` (an array of non-empty strings) from a member or sweep table.
fn take_keywords(table: &mut toml::Table) -> Result<Vec<String>, String> {
    match table.remove("keywords") {
        None => Ok(Vec::new()),
        Some(toml::Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                toml::Value::String(s) if !s.trim().is_empty() => Ok(s),
                other => Err(format!("`keywords` must be non-empty strings, found {other}")),
            })
            .collect(),
        Some(other) => Err(format!("`keywords` must be an array of strings, found {other}")),
    }
}

fn parse_transform(table: toml::Table) -> Result<Transform, String> {
    if !table.contains_key("transform") {
        return Err("needs `transform` (e.g. \"gauss_noise\")".into());
    }
    let t: Transform = toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| e.message().to_string())?;
    t.validate()?;
    Ok(t)
}

fn value_label(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Array(a) => a.iter().map(value_label).collect::<Vec<_>>().join("-"),
        other => other.to_string(),
    }
}
