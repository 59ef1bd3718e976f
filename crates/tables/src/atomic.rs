//! The one way a run's files are written: all or nothing.
//!
//! Bytes go to `.<name>.partial` beside the target (hidden, so that dataset readers
//! listing a table's directory skip it); [`AtomicFile::commit`] syncs the file,
//! renames it over the target and syncs the directory, so after a crash a reader finds
//! either the previous file or the complete new one, never a torn one. A file dropped
//! without a commit (an error on the way) removes its temporary file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::TableError;

/// A file that appears at its path only when committed.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    partial: PathBuf,
    // `None` once committed, so `Drop` knows whether to clean up.
    file: Option<BufWriter<File>>,
}

impl AtomicFile {
    pub fn create(target: &Path) -> Result<Self, TableError> {
        let partial = partial_path(target);
        let io = |source| TableError::Io { path: partial.clone(), source };
        // A fresh file, never one reached through a link left at the temporary name.
        match std::fs::remove_file(&partial) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
        let file = File::options().write(true).create_new(true).open(&partial).map_err(io)?;
        Ok(Self { target: target.to_path_buf(), partial, file: Some(BufWriter::new(file)) })
    }

    /// The path the file will have once committed.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes and syncs the file, renames it over the target and syncs the directory.
    pub fn commit(mut self) -> Result<(), TableError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TableError::Io { path, source }
        };
        let file = self.file.take().expect("an uncommitted file has its writer");
        let file =
            file.into_inner().map_err(|e| TableError::Io { path: self.partial.clone(), source: e.into_error() })?;
        file.sync_all().map_err(io(&self.partial))?;
        drop(file);
        if let Err(source) = std::fs::rename(&self.partial, &self.target) {
            let _ = std::fs::remove_file(&self.partial);
            return Err(TableError::Io { path: self.target.clone(), source });
        }
        sync_parent(&self.target)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.as_mut().expect("an uncommitted file has its writer").write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().expect("an uncommitted file has its writer").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TableError> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes).map_err(|source| TableError::Io { path: path.to_path_buf(), source })?;
    file.commit()
}

fn partial_path(target: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(target.file_name().unwrap_or_default());
    name.push(".partial");
    target.with_file_name(name)
}

/// Makes a rename in the directory durable (the rename itself lives in the directory's data).
fn sync_parent(target: &Path) -> Result<(), TableError> {
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all()).map_err(|source| TableError::Io { path: dir.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("clipshift-atomic-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn appears_only_on_commit() {
        let dir = scratch("commit");
        let target = dir.join("a.txt");
        std::fs::write(&target, "old").unwrap();
        let mut file = AtomicFile::create(&target).unwrap();
        file.write_all(b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old", "visible before commit");
        file.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert!(!partial_path(&target).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dropped_without_commit_leaves_the_old_file_and_no_temporary() {
        let dir = scratch("drop");
        let target = dir.join("b.txt");
        std::fs::write(&target, "old").unwrap();
        {
            let mut file = AtomicFile::create(&target).unwrap();
            file.write_all(b"half").unwrap();
            assert!(partial_path(&target).exists());
        }
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        assert!(!partial_path(&target).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_link_at_the_temporary_name_is_replaced_not_followed() {
        let dir = scratch("link");
        let victim = dir.join("victim.txt");
        std::fs::write(&victim, "keep").unwrap();
        let target = dir.join("t.txt");
        std::os::unix::fs::symlink(&victim, partial_path(&target)).unwrap();
        write_atomic(&target, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_rename_removes_the_temporary_and_names_the_target() {
        let dir = scratch("rename");
        // A non-empty directory cannot be replaced by a file.
        let target = dir.join("occupied");
        std::fs::create_dir_all(target.join("inside")).unwrap();
        let err = write_atomic(&target, b"x").unwrap_err().to_string();
        assert!(err.contains("occupied"), "{err}");
        assert!(!partial_path(&target).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
