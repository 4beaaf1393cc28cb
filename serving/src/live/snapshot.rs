//! Model snapshots: the online model, its lineage and the Kafka offsets it includes, in one
//! file per save (`model-<unix ms>-v<version>.snap`, postcard-encoded, written to a temporary
//! file and renamed so a crash never leaves a torn snapshot under the real name). The top-N
//! model changes only at a retrain, so it has a file per model version (`top-n-v<version>.snap`)
//! written once, not at every save. On start serving restores the newest readable snapshot
//! with its version's top-N model and resumes the stream from its offsets.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use model::{OnlineState, PopularityState, RerankState};
use serde::{Deserialize, Serialize};

use super::Lineage;

/// Snapshots kept in the directory; older ones are deleted after each save.
pub const KEEP: usize = 3;

/// First bytes of every snapshot file: the format and its version.
const MAGIC: &[u8; 16] = b"CINEDATA-MODEL-1";

/// First bytes of every top-N model file (02: the cosine feature's rater sample as bitsets;
/// an older file is not read, and the service retrains as if it were missing).
const TOP_N_MAGIC: &[u8; 16] = b"CINEDATA-TOPN-02";

fn top_n_path(dir: &Path, version: u64) -> PathBuf {
    dir.join(format!("top-n-v{version}.snap"))
}

/// Whether the top-N model of `version` is saved in `dir`.
pub fn has_top_n(dir: &Path, version: u64) -> bool {
    top_n_path(dir, version).is_file()
}

/// Writes `version`'s top-N model into `dir` (temporary file, then rename). Blocking.
///
/// # Errors
/// The directory or file cannot be written.
pub fn save_top_n(dir: &Path, version: u64, state: &RerankState) -> anyhow::Result<PathBuf> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = top_n_path(dir, version);
    let tmp = dir.join(format!(".top-n-v{version}.snap.tmp"));
    put(&tmp, &path, TOP_N_MAGIC, state)?;
    Ok(path)
}

/// Reads `version`'s top-N model from `dir`; `None` if it was never saved there.
///
/// # Errors
/// The file exists but cannot be read or decoded.
pub fn read_top_n(dir: &Path, version: u64) -> anyhow::Result<Option<RerankState>> {
    let path = top_n_path(dir, version);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let body = bytes
        .strip_prefix(TOP_N_MAGIC.as_slice())
        .with_context(|| format!("{} is not a top-N model", path.display()))?;
    Ok(Some(postcard::from_bytes(body).with_context(|| format!("decoding {}", path.display()))?))
}

/// What a snapshot holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// What the model was trained on.
    pub lineage: Lineage,
    /// Next offset to read per partition: every event before it is in `model`.
    pub offsets: BTreeMap<i32, i64>,
    /// The online model.
    pub model: OnlineState,
    /// The cold-start lists of the last retrain (refitted from `model` when absent).
    pub popularity: Option<PopularityState>,
}

#[derive(Serialize, Deserialize)]
struct File {
    /// The topic the offsets belong to.
    topic: String,
    snapshot: Snapshot,
}

/// Saves `snapshot` (of the stream on `topic`) into `dir`, then deletes all but the newest
/// [`KEEP`] snapshots. Blocking: call from a blocking thread.
///
/// # Errors
/// The directory or file cannot be written.
pub fn save(dir: &Path, topic: &str, snapshot: Snapshot) -> anyhow::Result<PathBuf> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let millis =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
    let name = format!("model-{millis:013}-v{}.snap", snapshot.lineage.version);
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    put(&tmp, &path, MAGIC, &File { topic: topic.to_owned(), snapshot })?;
    for old in list(dir)?.into_iter().rev().skip(KEEP) {
        let _ = fs::remove_file(old);
    }
    // Top-N models of versions no kept snapshot refers to.
    let kept: Vec<String> = list(dir)?
        .iter()
        .filter_map(|p| p.file_name()?.to_str()?.rsplit_once("-v").map(|(_, v)| v.trim_end_matches(".snap").to_owned()))
        .collect();
    for entry in fs::read_dir(dir).into_iter().flatten().filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(v) = name.strip_prefix("top-n-v").and_then(|n| n.strip_suffix(".snap"))
            && !kept.iter().any(|k| k == v)
        {
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(path)
}

/// Writes `magic` and `value` to `tmp`, then renames it to `path`; on failure `tmp` is removed, so a
/// full disk does not also fill up with half-written temp files, one per attempt.
fn put(tmp: &Path, path: &Path, magic: &[u8], value: &impl Serialize) -> anyhow::Result<()> {
    let written = write_file(tmp, magic, value)
        .and_then(|()| fs::rename(tmp, path))
        .with_context(|| format!("writing snapshot {}", path.display()));
    if written.is_err() {
        let _ = fs::remove_file(tmp);
    }
    written
}

/// Writes and syncs one snapshot file, reporting the real I/O error (postcard's own error for
/// a failed write is only "the serialize buffer is full").
fn write_file(path: &Path, magic: &[u8], value: &impl Serialize) -> std::io::Result<()> {
    /// Keeps the first I/O error the encoder hit.
    struct Recording<W> {
        inner: W,
        error: Option<std::io::Error>,
    }
    impl<W: Write> Write for Recording<W> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let written = self.inner.write(buf);
            self.record(written)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            let flushed = self.inner.flush();
            self.record(flushed)
        }
    }
    impl<W> Recording<W> {
        fn record<T>(&mut self, result: std::io::Result<T>) -> std::io::Result<T> {
            result.inspect_err(|e| {
                let kept = e
                    .raw_os_error()
                    .map_or_else(|| std::io::Error::new(e.kind(), e.to_string()), std::io::Error::from_raw_os_error);
                self.error.get_or_insert(kept);
            })
        }
    }
    let mut out = Recording { inner: BufWriter::new(fs::File::create(path)?), error: None };
    out.write_all(magic)?;
    if let Err(error) = postcard::to_io(value, &mut out) {
        return Err(out.error.take().unwrap_or_else(|| std::io::Error::other(error)));
    }
    out.inner.into_inner().map_err(|e| e.into_error())?.sync_all()
}

/// Snapshot files in `dir`, oldest first.
fn list(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("model-") && n.ends_with(".snap"))
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    files.sort();
    Ok(files)
}

/// Deletes the temp files (`.*.tmp`) of unfinished saves in `dir`.
fn remove_unfinished(dir: &Path) {
    for entry in fs::read_dir(dir).into_iter().flatten().filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".tmp") {
            match fs::remove_file(entry.path()) {
                Ok(()) => tracing::info!(file = name, "removed an unfinished snapshot"),
                Err(error) => tracing::warn!(file = name, %error, "could not remove an unfinished snapshot"),
            }
        }
    }
}

/// Reads one snapshot file: the topic its offsets belong to, and the snapshot.
///
/// # Errors
/// The file cannot be read, is not a snapshot, or is truncated.
pub fn read(path: &Path) -> anyhow::Result<(String, Snapshot)> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let body = bytes.strip_prefix(MAGIC.as_slice()).with_context(|| format!("{} is not a snapshot", path.display()))?;
    let file: File = postcard::from_bytes(body).with_context(|| format!("decoding {}", path.display()))?;
    Ok((file.topic, file.snapshot))
}

/// The newest snapshot in `dir` that reads back whole; unreadable ones are logged and skipped.
/// Called at start, it also deletes the temp files of saves a killed process never finished
/// (a top-N model's can be hundreds of MB).
///
/// # Errors
/// The directory exists but cannot be listed.
pub fn latest(dir: &Path) -> anyhow::Result<Option<(PathBuf, String, Snapshot)>> {
    remove_unfinished(dir);
    for path in list(dir)?.into_iter().rev() {
        match read(&path) {
            Ok((topic, snapshot)) => return Ok(Some((path, topic, snapshot))),
            Err(error) => tracing::warn!(path = %path.display(), error = format!("{error:#}"), "skipping snapshot"),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::OnlineModel;

    fn snapshot(version: u64) -> Snapshot {
        let m = OnlineModel::new(OnlineModel::builder().factors(4).build().unwrap());
        m.update(1, 10, 4.0, 100).unwrap();
        m.update(2, 10, 3.0, 101).unwrap();
        Snapshot {
            lineage: Lineage { version, trained_at: Some(5), training_ratings: 2, holdout: None },
            offsets: BTreeMap::from([(0, 7), (3, 2)]),
            model: m.export(),
            popularity: None,
        }
    }

    #[test]
    fn the_newest_whole_snapshot_is_restored_and_old_ones_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        assert!(latest(dir.path()).unwrap().is_none());
        for v in 1..=5 {
            save(dir.path(), "ratings", snapshot(v)).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert_eq!(list(dir.path()).unwrap().len(), KEEP);
        let (_, topic, got) = latest(dir.path()).unwrap().unwrap();
        assert_eq!((topic.as_str(), got.clone()), ("ratings", snapshot(5)));
        // A torn newest file is skipped in favour of the previous one.
        let newest = list(dir.path()).unwrap().pop().unwrap();
        let bytes = fs::read(&newest).unwrap();
        fs::write(&newest, &bytes[..bytes.len() / 2]).unwrap();
        let (path, _, got) = latest(dir.path()).unwrap().unwrap();
        assert_ne!(path, newest);
        assert_eq!(got.lineage.version, 4);
        fs::write(dir.path().join("model-9999999999999-v9.snap"), b"not a snapshot").unwrap();
        assert_eq!(latest(dir.path()).unwrap().unwrap().2.lineage.version, 4);
    }

    #[test]
    fn a_killed_save_s_temp_files_are_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), "ratings", snapshot(1)).unwrap();
        // What kill -9 in the middle of two saves leaves behind.
        fs::write(dir.path().join(".model-9999999999999-v2.snap.tmp"), b"CINEDATA-MODEL-1 half").unwrap();
        fs::write(dir.path().join(".top-n-v2.snap.tmp"), b"CINEDATA-TOPN-02 half").unwrap();
        let (_, _, got) = latest(dir.path()).unwrap().unwrap();
        assert_eq!(got.lineage.version, 1);
        let mut names: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.retain(|n| n.ends_with(".tmp"));
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn top_n_models_are_kept_for_the_kept_snapshots_only() {
        let dir = tempfile::tempdir().unwrap();
        let ratings = model::Ratings::from_rows((1..=30i64).flat_map(|u| {
            (1..=8i64).map(move |m| (u, m + u % 3, if (u + m) % 4 == 0 { 2.0 } else { 4.5 }, u * 100 + m))
        }))
        .unwrap();
        let top_n = model::Rerank { trees: 5, ensembles: 1, ..model::Rerank::default() }.fit(&ratings).unwrap();
        assert!(read_top_n(dir.path(), 1).unwrap().is_none(), "never saved");
        for v in 1..=5 {
            save_top_n(dir.path(), v, &top_n.export().unwrap()).unwrap();
            save(dir.path(), "ratings", snapshot(v)).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        // KEEP snapshots (versions 3–5) and their top-N models remain.
        for v in 1..=5 {
            assert_eq!(has_top_n(dir.path(), v), v >= 3, "version {v}");
        }
        let restored = model::RerankModel::restore(read_top_n(dir.path(), 5).unwrap().unwrap()).unwrap();
        let history = [(2, 4.5, 10), (3, 5.0, 11)];
        let q = model::Query::top(3);
        assert_eq!(restored.recommend_for_history(&history, &q), top_n.recommend_for_history(&history, &q));
        fs::write(top_n_path(dir.path(), 5), b"CINEDATA-TOPN-02garbage").unwrap();
        assert!(read_top_n(dir.path(), 5).is_err(), "a torn file is an error, not a model");
    }

    #[test]
    fn a_failed_save_says_why_and_leaves_no_temp_file() {
        // /dev/full fails every write with "No space left on device", like a full disk.
        let full = Path::new("/dev/full");
        if !full.exists() {
            eprintln!("SKIPPED: no /dev/full on this system");
            return;
        }
        let file = File { topic: "ratings".into(), snapshot: snapshot(1) };
        let error = write_file(full, MAGIC, &file).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(28), "ENOSPC, not postcard's buffer error: {error}");
        // A temp file written but not renamed into place (the target cannot exist) is removed.
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join(".model-1-v1.snap.tmp");
        let error = put(&tmp, &full.join("model-1-v1.snap"), MAGIC, &file).unwrap_err();
        assert!(format!("{error:#}").contains("writing snapshot"), "{error:#}");
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().filter_map(Result::ok).collect();
        assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    }
}
