use std::path::{Path, PathBuf};

/// The files of one run directory. Stages communicate only through these files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the directory (and parents) if needed.
    pub fn create(&self) -> Result<(), crate::TableError> {
        std::fs::create_dir_all(&self.root).map_err(|source| crate::TableError::Io { path: self.root.clone(), source })
    }

    pub fn manifest(&self) -> PathBuf {
        self.root.join("run.json")
    }
    /// The manifest a shard's stages keep (`shards/KKKK-of-NNNN.json`); `run.json` for the whole run.
    pub fn shard_manifest(&self, shard: crate::Shard) -> PathBuf {
        if shard.is_whole() { self.manifest() } else { self.shards_dir().join(format!("{}.json", shard.tag())) }
    }
    pub fn shards_dir(&self) -> PathBuf {
        self.root.join("shards")
    }
    pub fn images(&self) -> PathBuf {
        self.root.join("images.parquet")
    }
    pub fn augmentations(&self) -> PathBuf {
        self.root.join("augmentations.parquet")
    }
    pub fn embeddings(&self) -> PathBuf {
        self.root.join("embeddings.parquet")
    }
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.parquet")
    }
    pub fn pairwise(&self) -> PathBuf {
        self.root.join("pairwise.parquet")
    }
    pub fn layer_shift(&self) -> PathBuf {
        self.root.join("layer_shift.parquet")
    }
    pub fn text_embeddings(&self) -> PathBuf {
        self.root.join("text_embeddings.parquet")
    }
    pub fn zero_shot(&self) -> PathBuf {
        self.root.join("zero_shot.parquet")
    }
    pub fn keyword_alignment(&self) -> PathBuf {
        self.root.join("keyword_alignment.parquet")
    }
    pub fn caption_alignment(&self) -> PathBuf {
        self.root.join("caption_alignment.parquet")
    }
    pub fn sae_latents(&self) -> PathBuf {
        self.root.join("sae_latents.parquet")
    }
    pub fn component_attribution(&self) -> PathBuf {
        self.root.join("component_attribution.parquet")
    }
    pub fn faithfulness(&self) -> PathBuf {
        self.root.join("faithfulness.parquet")
    }
    pub fn latent_labels(&self) -> PathBuf {
        self.root.join("latent_labels.parquet")
    }
    pub fn errors(&self) -> PathBuf {
        self.root.join("errors.parquet")
    }
    pub fn summary(&self) -> PathBuf {
        self.root.join("summary.parquet")
    }
    /// The report's paired distribution tests per augmentation.
    pub fn drift(&self) -> PathBuf {
        self.root.join("drift.parquet")
    }
    /// The report's comparison of every augmentation with the noise floor.
    pub fn noise_floor(&self) -> PathBuf {
        self.root.join("noise_floor.parquet")
    }
    pub fn distance_matrix(&self) -> PathBuf {
        self.root.join("distance_matrix.parquet")
    }
    pub fn linkage(&self) -> PathBuf {
        self.root.join("linkage.parquet")
    }
    pub fn clusters(&self) -> PathBuf {
        self.root.join("clusters.parquet")
    }
    /// `index.html`, the figures, and the table behind each figure.
    pub fn report_dir(&self) -> PathBuf {
        self.root.join("report")
    }
    /// `report/wilcoxon.parquet`: the paired tests behind the report's significance marks.
    pub fn wilcoxon(&self) -> PathBuf {
        self.report_dir().join("wilcoxon.parquet")
    }
    /// Where `--save-images` puts `<image_id>/<augmentation>.png`.
    pub fn saved_images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    #[cfg(test)]
    fn scratch(name: &str) -> Self {
        let root = std::env::temp_dir().join(format!("clipshift-layout-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("report")).unwrap();
        Self::new(root)
    }

    /// Refuses a run directory with an entry (at any depth) that is a symbolic link
    /// leading outside it: every stage writes only inside its run directory.
    pub fn check_contained(&self) -> Result<(), crate::TableError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| crate::TableError::Io { path, source }
        };
        if !self.root.exists() {
            return Ok(());
        }
        let root = std::fs::canonicalize(&self.root).map_err(io(&self.root))?;
        let mut pending = vec![root.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
                let entry = entry.map_err(io(&dir))?;
                let path = entry.path();
                // The directory listing's own type (no stat per file: saved variants can be many).
                let kind = entry.file_type().map_err(io(&path))?;
                if kind.is_symlink() {
                    // A dangling link leads nowhere inside either.
                    let target =
                        std::fs::canonicalize(&path).unwrap_or_else(|_| std::fs::read_link(&path).unwrap_or_default());
                    if !target.starts_with(&root) {
                        return Err(crate::TableError::OutsideRun { path, target });
                    }
                } else if kind.is_dir() {
                    pending.push(path);
                }
            }
        }
        Ok(())
    }

    /// An error naming `path` and which stage produces it, for a missing input table.
    pub fn require(&self, path: &Path, produced_by: &str) -> Result<(), crate::TableError> {
        if crate::part_files(path).is_ok_and(|parts| !parts.is_empty()) {
            Ok(())
        } else {
            Err(crate::TableError::Missing {
                path: path.to_path_buf(),
                hint: format!("run the `{produced_by}` stage on {} first", self.root.display()),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_leading_outside_the_run_is_refused_and_one_inside_is_not() {
        let run = RunDir::scratch("links");
        let outside = std::env::temp_dir().join(format!("clipshift-layout-{}-outside", std::process::id()));
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(run.root().join("report"), run.root().join("inside")).unwrap();
        run.check_contained().unwrap();
        std::os::unix::fs::symlink(&outside, run.report_dir().join("figures")).unwrap();
        let err = run.check_contained().unwrap_err().to_string();
        assert!(err.contains("figures") && err.contains("outside the run directory"), "{err}");
        std::fs::remove_dir_all(run.root()).unwrap();
        std::fs::remove_dir_all(&outside).unwrap();
    }
}
