//! Tables as directories of part files: a stage commits its work as it goes, so a killed
//! stage resumes after its last commit, and the shards of one run write side by side.
//!
//! `<table>.parquet/part-<KKKK>-of-<NNNN>-<seq>.parquet` holds rows of shard K of N,
//! committed `seq`-th; `errors.parquet/<stage>-<KKKK>-of-<NNNN>-<seq>.parquet` holds the
//! failures a stage recorded with that commit. Names sort by shard, then by commit, which
//! is the order readers return rows in. A temporary file is hidden (`.<name>.partial`),
//! so pyarrow, DuckDB and polars globs never see one.
//!
//! A commit writes the stage's other tables' parts and its error part first and its
//! *primary* table's part last: a primary part is the commit record, and on resume the
//! parts of a commit without one are removed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use crate::{ErrorLog, ErrorRecord, Fnv1a, RunDir, TableError, TableWriter, errors_table};

/// The prefix of data parts; error parts carry their stage's name instead.
const DATA: &str = "part";

/// The environment variable that sets the seconds between commits (default 2).
pub const COMMIT_SECONDS_ENV: &str = "CLIPSHIFT_COMMIT_SECONDS";

/// One of N disjoint parts of a run's images, chosen by a hash of the image's path
/// relative to the data root: a shard knows its images from the folder listing alone,
/// without reading any file (an `image_id` is a hash of the file's content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// The whole run, unsharded.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` (from 0) of `count`.
    pub fn new(index: u32, count: u32) -> Result<Self, String> {
        if count == 0 || count > 9999 {
            return Err(format!("the shard count must be between 1 and 9999, not {count}"));
        }
        if index >= count {
            return Err(format!("shard {index}/{count}: shards are numbered from 0 to {}", count - 1));
        }
        Ok(Self { index, count })
    }

    pub fn index(self) -> u32 {
        self.index
    }

    pub fn count(self) -> u32 {
        self.count
    }

    pub fn is_whole(self) -> bool {
        self.count == 1
    }

    /// Whether the image at `relative_path` (from the data root, `/`-separated) is in this shard.
    pub fn contains(self, relative_path: &str) -> bool {
        Fnv1a::new().bytes(relative_path.as_bytes()).finish() % u64::from(self.count) == u64::from(self.index)
    }

    /// `KKKK-of-NNNN`, as in part and manifest file names.
    pub fn tag(self) -> String {
        format!("{:04}-of-{:04}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `K/N`, e.g. `0/3` for the first of three shards.
    fn from_str(s: &str) -> Result<Self, String> {
        let parse = |v: &str| v.trim().parse::<u32>().map_err(|_| format!("expected K/N (e.g. 0/3), found `{s}`"));
        let (k, n) = s.split_once('/').ok_or_else(|| format!("expected K/N (e.g. 0/3), found `{s}`"))?;
        Self::new(parse(k)?, parse(n)?)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A part file's name, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part {
    pub path: PathBuf,
    /// `part`, or the stage of an error part.
    pub prefix: String,
    pub shard: Shard,
    pub seq: u64,
}

fn part_name(prefix: &str, shard: Shard, seq: u64) -> String {
    format!("{prefix}-{}-{seq:06}.parquet", shard.tag())
}

fn parse_part(path: &Path) -> Option<Part> {
    let name = path.file_name()?.to_str()?.strip_suffix(".parquet")?;
    let mut fields = name.rsplitn(5, '-');
    let seq = fields.next()?.parse().ok()?;
    let count = fields.next()?.parse().ok()?;
    (fields.next()? == "of").then_some(())?;
    let index = fields.next()?.parse().ok()?;
    let prefix = fields.next()?.to_string();
    Some(Part { path: path.to_path_buf(), prefix, shard: Shard::new(index, count).ok()?, seq })
}

/// The parts in a table directory, in name order; hidden (temporary) files are skipped and
/// any other file is an error naming it. An absent directory, or a table written as one
/// file, has none.
pub(crate) fn list_parts(table: &Path) -> Result<Vec<Part>, TableError> {
    let io = |source| TableError::Io { path: table.to_path_buf(), source };
    if table.is_file() {
        return Ok(Vec::new());
    }
    let entries = match std::fs::read_dir(table) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut parts = Vec::new();
    for entry in entries {
        let path = entry.map_err(io)?.path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
            continue;
        }
        parts.push(parse_part(&path).ok_or_else(|| TableError::Column {
            path: path.clone(),
            column: "(file name)".into(),
            message: "not a part file (expected <prefix>-KKKK-of-NNNN-<seq>.parquet); move it out of the table".into(),
        })?);
    }
    parts.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(parts)
}

/// The files that hold `table`'s rows, in order: its part files, or the path itself when
/// it is a plain Parquet file (a table written whole, or one from an older run).
pub fn part_files(table: &Path) -> Result<Vec<PathBuf>, TableError> {
    if table.is_file() {
        return Ok(vec![table.to_path_buf()]);
    }
    Ok(list_parts(table)?.into_iter().map(|p| p.path).collect())
}

/// The data parts of one shard of `table`, in commit order.
pub fn shard_part_files(table: &Path, shard: Shard) -> Result<Vec<PathBuf>, TableError> {
    Ok(list_parts(table)?.into_iter().filter(|p| p.prefix == DATA && p.shard == shard).map(|p| p.path).collect())
}

/// The error parts one stage committed for one shard.
pub fn stage_error_files(run: &RunDir, stage: &str, shard: Shard) -> Result<Vec<PathBuf>, TableError> {
    Ok(list_parts(&run.errors())?
        .into_iter()
        .filter(|p| p.prefix == stage && p.shard == shard)
        .map(|p| p.path)
        .collect())
}

/// The shard counts the data parts of `table` were written with (one, in a consistent run).
pub fn shard_counts(table: &Path) -> Result<BTreeSet<u32>, TableError> {
    Ok(list_parts(table)?.into_iter().filter(|p| p.prefix == DATA).map(|p| p.shard.count).collect())
}

fn remove(path: &Path) -> Result<(), TableError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(TableError::Io { path: path.to_path_buf(), source: e })
        }
        _ => Ok(()),
    }
}

/// Removes the temporary files an interrupted commit of `prefix`/`shard` left in `table`.
fn remove_temporaries(table: &Path, prefix: &str, shard: Shard) -> Result<(), TableError> {
    let start = format!(".{prefix}-{}-", shard.tag());
    let Ok(entries) = std::fs::read_dir(table) else { return Ok(()) };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&start) {
            remove(&entry.path())?;
        }
    }
    Ok(())
}

/// Makes `table` a directory; a plain file there (a table of an older run's layout) is removed.
fn ensure_dir(table: &Path) -> Result<(), TableError> {
    if table.is_file() {
        remove(table)?;
    }
    std::fs::create_dir_all(table).map_err(|source| TableError::Io { path: table.to_path_buf(), source })
}

/// The output tables of one stage for one shard, committed in parts.
///
/// The stage writes batches with [`StageParts::write`] and calls
/// [`StageParts::commit_if_due`] wherever everything written so far is whole (after
/// complete images); that commits them, with the errors the stage recorded for them, as
/// one part per table: the first chunk at once, then at most every few seconds.
pub struct StageParts {
    stage: String,
    shard: Shard,
    errors_dir: PathBuf,
    /// The primary table first.
    tables: Vec<OutputTable>,
    seq: u64,
    last_commit: Instant,
    interval: Duration,
    /// Held while the stage runs: a second process on the same stage and shard is refused.
    _lock: std::fs::File,
}

struct OutputTable {
    dir: PathBuf,
    schema: SchemaRef,
    writer: Option<TableWriter>,
    /// Whether the shard has a committed part of this table.
    has_part: bool,
}

impl StageParts {
    /// Opens `tables` (`(table path, schema)`, the primary one first) for `stage` and
    /// `shard`. `fresh` removes every part an earlier run of the stage wrote for this
    /// shard, and for any other shard count; otherwise the stage continues after its last
    /// commit, and the parts of an interrupted commit are removed.
    pub fn open(
        run: &RunDir,
        stage: &str,
        shard: Shard,
        tables: &[(PathBuf, SchemaRef)],
        fresh: bool,
    ) -> Result<Self, TableError> {
        assert!(!tables.is_empty(), "a stage writes at least its primary table");
        let lock = lock(run, stage, shard)?;
        let errors_dir = run.errors();
        ensure_dir(&errors_dir)?;
        let stale = |p: &Part| p.shard == shard || p.shard.count != shard.count;
        let mut committed = BTreeSet::new();
        if !fresh {
            committed = list_parts(&tables[0].0)?
                .into_iter()
                .filter(|p| p.prefix == DATA && p.shard == shard)
                .map(|p| p.seq)
                .collect();
        }
        let mut outputs = Vec::new();
        for (dir, schema) in tables {
            ensure_dir(dir)?;
            remove_temporaries(dir, DATA, shard)?;
            let mut has_part = false;
            for part in list_parts(dir)?.into_iter().filter(|p| p.prefix == DATA) {
                if (fresh && stale(&part)) || (part.shard == shard && !committed.contains(&part.seq)) {
                    remove(&part.path)?;
                } else if part.shard == shard {
                    has_part = true;
                }
            }
            outputs.push(OutputTable { dir: dir.clone(), schema: schema.clone(), writer: None, has_part });
        }
        remove_temporaries(&errors_dir, stage, shard)?;
        for part in list_parts(&errors_dir)?.into_iter().filter(|p| p.prefix == stage) {
            if (fresh && stale(&part)) || (part.shard == shard && !committed.contains(&part.seq)) {
                remove(&part.path)?;
            }
        }
        let interval = std::env::var(COMMIT_SECONDS_ENV)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map_or(Duration::from_secs(2), Duration::from_secs_f64);
        Ok(Self {
            stage: stage.to_string(),
            shard,
            errors_dir,
            tables: outputs,
            seq: committed.last().map_or(0, |s| s + 1),
            // The first whole chunk is committed at once: an early kill loses little.
            last_commit: Instant::now().checked_sub(interval).unwrap_or_else(Instant::now),
            interval,
            _lock: lock,
        })
    }

    /// Whether an earlier run already committed parts of this shard (a resumed stage).
    pub fn resumed(&self) -> bool {
        self.seq > 0
    }

    /// Appends rows to table `index` (in the order given to [`StageParts::open`]). The
    /// first batch of a part fixes its schema.
    pub fn write(&mut self, index: usize, batch: &RecordBatch) -> Result<(), TableError> {
        let name = part_name(DATA, self.shard, self.seq);
        let table = &mut self.tables[index];
        let writer = match &mut table.writer {
            Some(writer) => writer,
            None => table.writer.insert(TableWriter::create(&table.dir.join(&name), batch.schema())?),
        };
        writer.write(batch)
    }

    /// Commits what was written, if the commit interval has passed and the primary table
    /// has rows. Call it only where the rows written so far are whole.
    pub fn commit_if_due(&mut self, errors: &ErrorLog) -> Result<(), TableError> {
        if self.tables[0].writer.is_some() && self.last_commit.elapsed() >= self.interval {
            self.commit(errors)?;
        }
        Ok(())
    }

    fn commit(&mut self, errors: &ErrorLog) -> Result<(), TableError> {
        let name = part_name(DATA, self.shard, self.seq);
        // Every table of the shard gets a part, even an empty one, so that it exists.
        for table in &mut self.tables {
            if table.writer.is_none() && !table.has_part {
                table.writer = Some(TableWriter::create(&table.dir.join(&name), table.schema.clone())?);
            }
        }
        for table in self.tables.iter_mut().skip(1) {
            if let Some(writer) = table.writer.take() {
                writer.finish()?;
                table.has_part = true;
            }
        }
        let records = errors.take();
        if !records.is_empty() {
            let path = self.errors_dir.join(part_name(&self.stage, self.shard, self.seq));
            errors_table::write_errors(&path, &records)?;
        }
        if let Some(writer) = self.tables[0].writer.take() {
            writer.finish()?;
            self.tables[0].has_part = true;
        }
        self.seq += 1;
        self.last_commit = Instant::now();
        Ok(())
    }

    /// Commits the rest. Returns how many error rows the stage has for this shard,
    /// counting those of earlier, resumed runs.
    pub fn finish(mut self, errors: &ErrorLog) -> Result<usize, TableError> {
        let pending = !errors.is_empty() || self.tables.iter().any(|t| t.writer.is_some() || !t.has_part);
        if pending {
            self.commit(errors)?;
        }
        let files: Vec<PathBuf> = list_parts(&self.errors_dir)?
            .into_iter()
            .filter(|p| p.prefix == self.stage && p.shard == self.shard)
            .map(|p| p.path)
            .collect();
        crate::io::count_rows(&files)
    }
}

/// Takes the run's lock of `stage` and `shard` (`.lock-<stage>-KKKK-of-NNNN`, released when
/// the process ends, even killed): two processes writing the same parts would corrupt
/// each other's commits, for example a Slurm task requeued while the first still runs.
fn lock(run: &RunDir, stage: &str, shard: Shard) -> Result<std::fs::File, TableError> {
    let path = run.root().join(format!(".lock-{stage}-{}", shard.tag()));
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| TableError::Io { path: path.clone(), source })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(TableError::Busy { path, stage: stage.into(), shard: shard.to_string() })
        }
        Err(std::fs::TryLockError::Error(source)) => Err(TableError::Io { path, source }),
    }
}

/// Replaces every error part of `stage` with one holding `records` (none when empty): for a
/// stage that runs whole, such as the report.
pub fn replace_stage_errors(run: &RunDir, stage: &str, records: &[ErrorRecord]) -> Result<(), TableError> {
    let dir = run.errors();
    ensure_dir(&dir)?;
    for part in list_parts(&dir)?.into_iter().filter(|p| p.prefix == stage) {
        remove(&part.path)?;
    }
    if records.is_empty() {
        return Ok(());
    }
    errors_table::write_errors(&dir.join(part_name(stage, Shard::WHOLE, 0)), records)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::UInt64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::{ErrorKind, read_errors, read_table};

    fn scratch(name: &str) -> RunDir {
        let root = std::env::temp_dir().join(format!("clipshift-parts-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        RunDir::new(root)
    }

    fn ids(values: &[u64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("image_id", DataType::UInt64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(UInt64Array::from(values.to_vec()))]).unwrap()
    }

    fn all_ids(table: &Path) -> Vec<u64> {
        let batch = read_table(table).unwrap();
        batch.column(0).as_any().downcast_ref::<UInt64Array>().unwrap().values().to_vec()
    }

    #[test]
    fn shards_parse_print_and_partition_paths() {
        let shard: Shard = "1/3".parse().unwrap();
        assert_eq!(
            (shard.index(), shard.count(), shard.to_string(), shard.tag()),
            (1, 3, "1/3".into(), "0001-of-0003".into())
        );
        for bad in ["3/3", "1", "a/3", "0/0", "-1/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        // Every path is in exactly one shard, and the split is roughly even.
        let paths: Vec<String> = (0..3000).map(|i| format!("dir{}/img_{i}.jpg", i % 7)).collect();
        let sizes: Vec<usize> =
            (0..3).map(|k| paths.iter().filter(|p| Shard::new(k, 3).unwrap().contains(p)).count()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 3000);
        assert!(sizes.iter().all(|&n| (900..1100).contains(&n)), "{sizes:?}");
        assert!(paths.iter().all(|p| Shard::WHOLE.contains(p)));
        // The partition is FNV-1a of the path: fixed across platforms and releases.
        let want = Fnv1a::new().bytes(b"a/b.png").finish() % 3;
        assert!(Shard::new(want as u32, 3).unwrap().contains("a/b.png"));
    }

    #[test]
    fn an_interrupted_commit_is_rolled_back_and_the_stage_continues_after_the_last() {
        let run = scratch("resume");
        let (primary, other) = (run.root().join("p.parquet"), run.root().join("o.parquet"));
        let schema = ids(&[]).schema();
        let tables = [(primary.clone(), schema.clone()), (other.clone(), schema.clone())];
        let errors = ErrorLog::new("stage");
        let mut parts = StageParts::open(&run, "stage", Shard::WHOLE, &tables, false).unwrap();
        assert!(!parts.resumed());
        parts.write(0, &ids(&[1, 2])).unwrap();
        parts.write(1, &ids(&[10])).unwrap();
        errors.record(Some("bad.png"), None, None, ErrorKind::Decode, "bad".into());
        parts.commit(&errors).unwrap();
        // A second commit whose primary part never appeared (a crash in between).
        parts.write(0, &ids(&[3])).unwrap();
        parts.write(1, &ids(&[11])).unwrap();
        errors.record(Some("worse.png"), None, None, ErrorKind::Decode, "worse".into());
        let name = part_name(DATA, Shard::WHOLE, 1);
        parts.tables[1].writer.take().unwrap().finish().unwrap();
        errors_table::write_errors(&run.errors().join(part_name("stage", Shard::WHOLE, 1)), &errors.take()).unwrap();
        drop(parts); // killed: the primary's part is never committed
        assert!(other.join(&name).exists());
        assert_eq!(all_ids(&other), vec![10, 11]);

        let mut parts = StageParts::open(&run, "stage", Shard::WHOLE, &tables, false).unwrap();
        assert!(parts.resumed());
        assert!(!other.join(&name).exists(), "the orphan part of the interrupted commit is removed");
        assert_eq!(read_errors(&run.errors()).unwrap().len(), 1);
        parts.write(0, &ids(&[3])).unwrap();
        parts.write(1, &ids(&[11])).unwrap();
        assert_eq!(parts.finish(&errors).unwrap(), 1);
        let parts = StageParts::open(&run, "stage", Shard::WHOLE, &tables, false).unwrap();
        assert_eq!((all_ids(&primary), all_ids(&other)), (vec![1, 2, 3], vec![10, 11]));
        assert_eq!(part_files(&primary).unwrap().len(), 2);

        // One process per stage and shard at a time.
        let err = StageParts::open(&run, "stage", Shard::WHOLE, &tables, false).err().unwrap().to_string();
        assert!(err.contains("another process") && err.contains("`stage`"), "{err}");
        drop(parts);
        // Fresh: everything of the stage goes, and a table without rows still gets a part.
        let parts = StageParts::open(&run, "stage", Shard::WHOLE, &tables, true).unwrap();
        parts.finish(&errors).unwrap();
        assert_eq!((all_ids(&primary), all_ids(&other)), (vec![], vec![]));
        assert!(read_errors(&run.errors()).unwrap().is_empty());
        std::fs::remove_dir_all(run.root()).unwrap();
    }

    #[test]
    fn shards_write_side_by_side_and_a_new_shard_count_replaces_the_old_parts() {
        let run = scratch("shards");
        let table = run.root().join("t.parquet");
        let tables = [(table.clone(), ids(&[]).schema())];
        let errors = ErrorLog::new("stage");
        for (k, values) in [(1u32, vec![5u64, 6]), (0, vec![7])] {
            let mut parts = StageParts::open(&run, "stage", Shard::new(k, 2).unwrap(), &tables, true).unwrap();
            parts.write(0, &ids(&values)).unwrap();
            parts.finish(&errors).unwrap();
        }
        // Name order: shard 0 first.
        assert_eq!(all_ids(&table), vec![7, 5, 6]);
        assert_eq!(shard_counts(&table).unwrap(), BTreeSet::from([2]));
        assert_eq!(shard_part_files(&table, Shard::new(1, 2).unwrap()).unwrap().len(), 1);
        let mut parts = StageParts::open(&run, "stage", Shard::WHOLE, &tables, true).unwrap();
        parts.write(0, &ids(&[9])).unwrap();
        parts.finish(&errors).unwrap();
        assert_eq!(all_ids(&table), vec![9]);
        // A stray file in a table is an error naming it.
        std::fs::write(table.join("notes.txt"), "x").unwrap();
        let err = part_files(&table).unwrap_err().to_string();
        assert!(err.contains("notes.txt") && err.contains("not a part file"), "{err}");
        std::fs::remove_dir_all(run.root()).unwrap();
    }
}
