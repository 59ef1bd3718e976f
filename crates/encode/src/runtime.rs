//! Locating and loading the ONNX Runtime shared library (never downloaded here).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::EncodeError;

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// CUDA when this build has the `cuda` feature and the runtime offers it, else CPU.
    #[default]
    Auto,
    Cpu,
    /// CUDA, falling back to CPU with a message saying why.
    Cuda,
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda),
            other => Err(format!("unknown device `{other}` (expected auto, cpu or cuda)")),
        }
    }
}

/// The cache folder `cargo xtask fetch-runtime` fills, relative to the workspace root.
const CACHE_DIR: &str = ".cache/onnxruntime";

/// The ONNX Runtime library to load: `ORT_DYLIB_PATH`, else the newest
/// `.cache/onnxruntime/*/libonnxruntime.so*` above the current directory or the executable.
pub fn find_runtime_library() -> Result<PathBuf, EncodeError> {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(EncodeError::RuntimeMissing { searched: format!("ORT_DYLIB_PATH={} is not a file", path.display()) })
        };
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    let mut searched = Vec::new();
    for root in roots {
        let cache = root.join(CACHE_DIR);
        if let Some(lib) = newest_library_in(&cache) {
            return Ok(lib);
        }
        searched.push(cache.display().to_string());
    }
    Err(EncodeError::RuntimeMissing { searched: format!("ORT_DYLIB_PATH unset; searched {}", searched.join(", ")) })
}

fn newest_library_in(cache: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(cache)
        .ok()?
        .filter_map(Result::ok)
        .flat_map(|version| std::fs::read_dir(version.path()).into_iter().flatten().filter_map(Result::ok))
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("libonnxruntime.so") || n == "libonnxruntime.dylib" || n == "onnxruntime.dll"
            })
        })
        .collect();
    found.sort();
    found.pop()
}

static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// The process-wide ONNX Runtime environment (ONNX Runtime allows one per process).
pub(crate) fn environment() -> Result<&'static ort::environment::Environment, EncodeError> {
    let env = ENVIRONMENT.get_or_init(|| {
        let lib = find_runtime_library().map_err(|e| e.to_string())?;
        tracing::debug!(library = %lib.display(), "loading ONNX Runtime");
        ort::init_from(&lib)
            .map_err(|e| format!("cannot load {}: {e}", lib.display()))?
            .with_name("clipshift")
            .with_telemetry(false)
            .build()
            .map_err(|e| format!("cannot create the environment from {}: {e}", lib.display()))
    });
    env.as_ref().map_err(|message| EncodeError::Runtime { context: "initialisation".into(), message: message.clone() })
}
