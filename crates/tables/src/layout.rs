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
    pub fn errors(&self) -> PathBuf {
        self.root.join("errors.parquet")
    }
    pub fn summary(&self) -> PathBuf {
        self.root.join("summary.parquet")
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

    /// An error naming `path` and which stage produces it, for a missing input table.
    pub fn require(&self, path: &Path, produced_by: &str) -> Result<(), crate::TableError> {
        if path.exists() {
            Ok(())
        } else {
            Err(crate::TableError::Missing {
                path: path.to_path_buf(),
                hint: format!("run the `{produced_by}` stage on {} first", self.root.display()),
            })
        }
    }
}
