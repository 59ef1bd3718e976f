//! The encode stage's command-line options, shared by `clipshift-encode` and
//! `clipshift-fused` (encode and metrics in one process).

use std::path::PathBuf;

use clipshift_console::ResumeArgs;

use crate::stage::EncodeConfig;
use crate::{Device, ResizePolicy, SessionConfig};

/// The model and how to run it.
#[derive(clap::Args, Debug, Clone)]
pub struct EncodeArgs {
    /// Model directory (model.onnx + model.json) or a sidecar such as DIR/model.int8.json;
    /// `tiny` names the committed test model.
    #[arg(long, default_value = "tiny")]
    pub model: String,
    /// auto, cpu or cuda (cuda falls back to CPU with a message saying why).
    #[arg(long, default_value = "auto")]
    pub device: Device,
    /// Images per inference call.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Override the sidecar's preprocessing: paper or clip.
    #[arg(long, value_parser = parse_policy)]
    pub policy: Option<ResizePolicy>,
    /// ONNX Runtime intra-op threads (default, or 0: one per CPU this process may use).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Graph optimisation level, 0 (none) to 3 (all).
    #[arg(long)]
    pub optimization: Option<u8>,
    /// Write every model input tensor as DIR/<image_id>/<augmentation>.npy.
    #[arg(long)]
    pub dump_pixels: Option<PathBuf>,
}

impl EncodeArgs {
    pub fn config(&self, run_dir: PathBuf, resume: &ResumeArgs) -> EncodeConfig {
        EncodeConfig {
            run_dir,
            model_dir: resolve_model(&self.model),
            policy: self.policy,
            session: SessionConfig {
                device: self.device,
                intra_threads: self.threads,
                optimization_level: self.optimization,
            },
            batch: self.batch,
            dump_pixels: self.dump_pixels.clone(),
            shard: resume.shard,
            fresh: resume.fresh,
        }
    }
}

fn parse_policy(s: &str) -> Result<ResizePolicy, String> {
    match s {
        "paper" => Ok(ResizePolicy::Paper),
        "clip" => Ok(ResizePolicy::Clip),
        other => Err(format!("unknown policy `{other}` (expected paper or clip)")),
    }
}

/// `tiny` means the committed test model, found from the current directory upwards.
fn resolve_model(name: &str) -> PathBuf {
    if name != "tiny" {
        return PathBuf::from(name);
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    cwd.ancestors()
        .map(|dir| dir.join("models/tiny-clip"))
        .find(|dir| dir.join("model.json").exists())
        .unwrap_or_else(|| PathBuf::from("models/tiny-clip"))
}
