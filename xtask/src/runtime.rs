//! Provisioning ONNX Runtime from the official PyPI wheels (never ort's binary download).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The ONNX Runtime release the `ort` crate of this workspace is built against (API 31).
pub(crate) const ORT_VERSION: &str = "1.31.1";

fn cache_dir(root: &Path, gpu: bool) -> PathBuf {
    root.join(".cache/onnxruntime").join(if gpu { format!("{ORT_VERSION}-gpu") } else { ORT_VERSION.to_string() })
}

/// The runtime for the stage binaries and tests (passed to them as `ORT_DYLIB_PATH`):
/// an existing `ORT_DYLIB_PATH`, else the cache, else a fresh fetch.
pub(crate) fn ensure(root: &Path, gpu: bool) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        bail!("ORT_DYLIB_PATH={} is not a file", path.display());
    }
    match find_library(&cache_dir(root, gpu)) {
        Some(lib) => Ok(lib),
        None => fetch(root, gpu, false),
    }
}

fn find_library(dir: &Path) -> Option<PathBuf> {
    let mut libs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libonnxruntime.so.")))
        .collect();
    libs.sort();
    libs.pop()
}

pub(crate) fn require_python() -> Result<()> {
    let ok = Command::new("python3").args(["-m", "pip", "--version"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        bail!(
            "python3 with pip is needed to fetch ONNX Runtime and build Python environments: install it \
             (Debian/Ubuntu: `apt-get install python3 python3-pip python3-venv`), or set ORT_DYLIB_PATH to an \
             existing libonnxruntime.so {ORT_VERSION}"
        );
    }
    Ok(())
}

/// Downloads the wheel with pip and unpacks its shared libraries into the cache.
pub(crate) fn fetch(root: &Path, gpu: bool, force: bool) -> Result<PathBuf> {
    let dir = cache_dir(root, gpu);
    if !force && let Some(lib) = find_library(&dir) {
        return Ok(lib);
    }
    require_python()?;
    let package = if gpu { "onnxruntime-gpu" } else { "onnxruntime" };
    let wheels = root.join(".cache/wheels");
    eprintln!("fetching {package}=={ORT_VERSION} with pip (once; cached in {})", dir.display());
    let status = Command::new("python3")
        .args(["-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps", "--only-binary=:all:"])
        .arg(format!("{package}=={ORT_VERSION}"))
        .arg("-d")
        .arg(&wheels)
        .status()
        .context("running python3 -m pip download")?;
    if !status.success() {
        bail!("pip could not download {package}=={ORT_VERSION} (is PyPI reachable?)");
    }
    let prefix = format!("{}-{ORT_VERSION}-", package.replace('-', "_"));
    let wheel = std::fs::read_dir(&wheels)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl")))
        .with_context(|| format!("no {prefix}*.whl in {}", wheels.display()))?;
    std::fs::create_dir_all(&dir)?;
    // A wheel is a zip: extract the shared libraries of onnxruntime/capi/ only.
    let script = "import sys, zipfile, os\n\
                  z = zipfile.ZipFile(sys.argv[1])\n\
                  for n in z.namelist():\n\
                  \x20   b = os.path.basename(n)\n\
                  \x20   if n.startswith('onnxruntime/capi/') and '.so' in b:\n\
                  \x20       open(os.path.join(sys.argv[2], b), 'wb').write(z.read(n))\n";
    let status = Command::new("python3").args(["-c", script]).arg(&wheel).arg(&dir).status()?;
    if !status.success() {
        bail!("could not unpack {}", wheel.display());
    }
    find_library(&dir).with_context(|| format!("{} has no libonnxruntime.so.*", wheel.display()))
}
