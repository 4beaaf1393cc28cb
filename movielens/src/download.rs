//! The GroupLens releases we know, with their checksums, and a check of an unpacked copy.
//!
//! Nothing here touches the network yet (a later change adds the download). [`verify`] checks
//! a folder someone unpacked by hand against what is known about the release: every expected
//! file present, with the published size, MD5 or row count where we have one.
//!
//! Where the numbers come from:
//! - zip MD5s are the values GroupLens publishes next to each zip (`NAME.zip.md5`), as quoted
//!   by several independent public projects that pin them; zip sizes are the `Content-Length`
//!   GroupLens serves, as quoted by public download logs and manifests.
//! - ml-latest-small per-file sizes and MD5s are those of the September 2018 release kept in
//!   the shared test-data folder (see its README).
//! - row counts are the figures in each release's README.
//! - ml-32m ships its own `checksums.txt` (MD5 per file); [`verify`] checks the files it lists.
//!
//! No MD5 could be confirmed for `ml-latest-small.zip`: GroupLens calls it a development
//! dataset that may be regenerated, so its published `.md5` is not pinned here.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

/// Where GroupLens serves the MovieLens zips.
pub const BASE_URL: &str = "https://files.grouplens.org/datasets/movielens/";

/// One GroupLens MovieLens release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupLensRelease {
    /// Release name, also the zip's stem: `ml-latest-small`.
    pub name: &'static str,
    /// The zip's URL.
    pub url: &'static str,
    /// MD5 of the zip as GroupLens publishes it in `NAME.zip.md5`, lowercase hex; `None` when
    /// we could not confirm one.
    pub zip_md5: Option<&'static str>,
    /// Size of the zip in bytes, where known.
    pub zip_bytes: Option<u64>,
    /// The folder the zip unpacks to.
    pub folder: &'static str,
    /// Users, as stated in the release README.
    pub users: u64,
    /// The files in the unpacked folder.
    pub files: &'static [ReleaseFile],
    /// A checksum list shipped inside the release (`md5  name` lines), checked by [`verify`].
    pub bundled_checksums: Option<&'static str>,
}

/// One file of an unpacked release; every field but `name` is optional knowledge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseFile {
    /// File name inside the release folder.
    pub name: &'static str,
    /// Size in bytes.
    pub bytes: Option<u64>,
    /// Data rows, not counting the header.
    pub rows: Option<u64>,
    /// MD5, lowercase hex.
    pub md5: Option<&'static str>,
}

impl GroupLensRelease {
    /// The file entry called `name`.
    pub fn file(&self, name: &str) -> Option<&'static ReleaseFile> {
        self.files.iter().find(|f| f.name == name)
    }

    /// Rows in `ratings.csv`, where known.
    pub fn ratings(&self) -> Option<u64> {
        self.file("ratings.csv").and_then(|f| f.rows)
    }
}

const fn file(name: &'static str, bytes: Option<u64>, rows: Option<u64>, md5: Option<&'static str>) -> ReleaseFile {
    ReleaseFile { name, bytes, rows, md5 }
}

/// ml-latest-small, the September 2018 release: 100,836 ratings, 3,683 tags, 9,742 movies,
/// 610 users; CRLF line endings.
pub const ML_LATEST_SMALL: GroupLensRelease = GroupLensRelease {
    name: "ml-latest-small",
    url: "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip",
    zip_md5: None,
    zip_bytes: None,
    folder: "ml-latest-small",
    users: 610,
    files: &[
        file("ratings.csv", Some(2_483_723), Some(100_836), Some("325a6f09399d1c45671f187505e1a100")),
        file("movies.csv", Some(494_431), Some(9_742), Some("ed94fab72b62442ef8150d9446e000d6")),
        file("tags.csv", Some(118_660), Some(3_683), Some("1b2d21a7be1cc23d327b11155a4a6aea")),
        file("links.csv", Some(197_979), Some(9_742), Some("316913f95cdad64c745ca22f3630e230")),
        file("README.txt", Some(8_342), None, Some("9bc20a696092024abe52696ee6c5837f")),
    ],
    bundled_checksums: None,
};

/// ml-25m (November 2019): 25,000,095 ratings, 1,093,360 tags, 62,423 movies, 162,541 users,
/// plus the tag genome.
pub const ML_25M: GroupLensRelease = GroupLensRelease {
    name: "ml-25m",
    url: "https://files.grouplens.org/datasets/movielens/ml-25m.zip",
    zip_md5: Some("6b51fb2759a8657d3bfcbfc42b592ada"),
    zip_bytes: Some(261_978_986),
    folder: "ml-25m",
    users: 162_541,
    files: &[
        file("ratings.csv", None, Some(25_000_095), None),
        file("movies.csv", None, Some(62_423), None),
        file("tags.csv", None, Some(1_093_360), None),
        file("links.csv", None, Some(62_423), None),
        file("genome-scores.csv", None, Some(15_584_448), None),
        file("genome-tags.csv", None, Some(1_128), None),
        file("README.txt", None, None, None),
    ],
    bundled_checksums: None,
};

/// ml-32m (October 2023): 32,000,204 ratings, 2,000,072 tags, 87,585 movies, 200,948 users.
/// Ships `checksums.txt` with the MD5 of each file.
pub const ML_32M: GroupLensRelease = GroupLensRelease {
    name: "ml-32m",
    url: "https://files.grouplens.org/datasets/movielens/ml-32m.zip",
    zip_md5: Some("d472be332d4daa821edc399621853b57"),
    zip_bytes: Some(238_950_008),
    folder: "ml-32m",
    users: 200_948,
    files: &[
        file("ratings.csv", None, Some(32_000_204), None),
        file("movies.csv", None, Some(87_585), None),
        file("tags.csv", None, Some(2_000_072), None),
        file("links.csv", None, Some(87_585), None),
        file("checksums.txt", None, None, None),
        file("README.txt", None, None, None),
    ],
    bundled_checksums: Some("checksums.txt"),
};

/// Every release we know.
pub const RELEASES: [GroupLensRelease; 3] = [ML_LATEST_SMALL, ML_25M, ML_32M];

/// The release called `name` (`ml-latest-small`, `ml-25m`, `ml-32m`).
pub fn release(name: &str) -> Option<&'static GroupLensRelease> {
    RELEASES.iter().find(|r| r.name == name)
}

/// Why an unpacked release failed [`verify`].
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An expected file is missing.
    #[error("{path}: missing")]
    Missing {
        /// The file that should be there.
        path: PathBuf,
    },
    /// A file has the wrong size.
    #[error("{path}: {actual} bytes, expected {expected}")]
    Size {
        /// The file.
        path: PathBuf,
        /// Published size.
        expected: u64,
        /// Size on disk.
        actual: u64,
    },
    /// A file has the wrong MD5.
    #[error("{path}: md5 {actual}, expected {expected}")]
    Md5 {
        /// The file.
        path: PathBuf,
        /// Published MD5.
        expected: String,
        /// MD5 of the file on disk.
        actual: String,
    },
    /// A file has the wrong number of data rows.
    #[error("{path}: {actual} data rows, expected {expected}")]
    Rows {
        /// The file.
        path: PathBuf,
        /// Published row count.
        expected: u64,
        /// Rows on disk.
        actual: u64,
    },
    /// The bundled checksum list has a line that is not `md5  name`.
    #[error("{path}:{line}: not an `md5  name` line")]
    ChecksumList {
        /// The checksum list.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
}

/// Checks an unpacked release folder against what is known about `release`: each listed file
/// exists; its size and MD5 match where published (for ml-latest-small, all four CSVs and the
/// README); where no MD5 is known, its data rows are counted against the README's figure; and
/// files named in a bundled checksum list (ml-32m's `checksums.txt`) match their MD5.
/// Stops at the first mismatch.
///
/// # Errors
/// The first problem found: [`VerifyError::Missing`], [`VerifyError::Size`],
/// [`VerifyError::Md5`], [`VerifyError::Rows`], [`VerifyError::ChecksumList`] or
/// [`VerifyError::Io`].
pub fn verify(dir: &Path, release: &GroupLensRelease) -> Result<(), VerifyError> {
    let mut bundled = Vec::new();
    if let Some(list) = release.bundled_checksums {
        bundled = read_checksum_list(&dir.join(list))?;
    }
    for f in release.files {
        let path = dir.join(f.name);
        let meta = std::fs::metadata(&path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => VerifyError::Missing { path: path.clone() },
            _ => VerifyError::Io { path: path.clone(), source },
        })?;
        if let Some(expected) = f.bytes
            && meta.len() != expected
        {
            return Err(VerifyError::Size { path, expected, actual: meta.len() });
        }
        if let Some(expected) = f.md5 {
            check_md5(&path, expected)?;
        } else if let Some(expected) = f.rows {
            let actual = count_data_rows(&path)?;
            if actual != expected {
                return Err(VerifyError::Rows { path, expected, actual });
            }
        }
    }
    for (md5, name) in &bundled {
        check_md5(&dir.join(name), md5)?;
    }
    Ok(())
}

/// MD5 of a file as lowercase hex, read in 1 MiB blocks.
///
/// # Errors
/// [`VerifyError::Missing`] or [`VerifyError::Io`] if the file cannot be read.
pub fn md5_file(path: &Path) -> Result<String, VerifyError> {
    let mut file = open(path)?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|source| VerifyError::Io { path: path.to_owned(), source })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn check_md5(path: &Path, expected: &str) -> Result<(), VerifyError> {
    let actual = md5_file(path)?;
    if actual.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(VerifyError::Md5 { path: path.to_owned(), expected: expected.to_ascii_lowercase(), actual })
    }
}

fn open(path: &Path) -> Result<File, VerifyError> {
    File::open(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => VerifyError::Missing { path: path.to_owned() },
        _ => VerifyError::Io { path: path.to_owned(), source },
    })
}

/// Lines after the header; a last line without a line break counts. MovieLens fields hold no
/// line breaks, so this is the row count.
fn count_data_rows(path: &Path) -> Result<u64, VerifyError> {
    let mut file = open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut lines, mut last) = (0u64, b'\n');
    loop {
        let n = file.read(&mut buf).map_err(|source| VerifyError::Io { path: path.to_owned(), source })?;
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        last = buf[n - 1];
    }
    if last != b'\n' {
        lines += 1;
    }
    Ok(lines.saturating_sub(1))
}

/// `md5  name` (or `md5 *name`) lines, as written by `md5sum`; blank lines are skipped.
fn read_checksum_list(path: &Path) -> Result<Vec<(String, String)>, VerifyError> {
    let reader = BufReader::new(open(path)?);
    let mut entries = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|source| VerifyError::Io { path: path.to_owned(), source })?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = || VerifyError::ChecksumList { path: path.to_owned(), line: i + 1 };
        let (md5, name) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
        let name = name.trim_start().trim_start_matches('*');
        if md5.len() != 32 || !md5.bytes().all(|b| b.is_ascii_hexdigit()) || name.is_empty() {
            return Err(bad());
        }
        entries.push((md5.to_ascii_lowercase(), name.to_owned()));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared ml-latest-small copy; `CINEDATA_ML_SMALL` overrides the path.
    fn ml_small() -> PathBuf {
        std::env::var_os("CINEDATA_ML_SMALL")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/work/shared/data/movielens/ml-latest-small"))
    }

    fn copy_release(from: &Path, to: &Path) {
        for f in ML_LATEST_SMALL.files {
            std::fs::copy(from.join(f.name), to.join(f.name)).unwrap();
        }
    }

    #[test]
    fn shared_ml_latest_small_passes_verification() {
        verify(&ml_small(), &ML_LATEST_SMALL).unwrap();
    }

    #[test]
    fn tampered_ratings_fail_verification_with_the_files_name() {
        let dir = tempfile::tempdir().unwrap();
        copy_release(&ml_small(), dir.path());
        let path = dir.path().join("ratings.csv");
        let mut bytes = std::fs::read(&path).unwrap();
        // Same size, one rating changed: only the MD5 can catch it.
        let at = bytes.len() - 20;
        bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
        std::fs::write(&path, bytes).unwrap();
        match verify(dir.path(), &ML_LATEST_SMALL) {
            Err(VerifyError::Md5 { path: bad, .. }) => assert_eq!(bad, path),
            other => panic!("expected an md5 mismatch, got {other:?}"),
        }
    }

    #[test]
    fn missing_file_fails_verification() {
        let dir = tempfile::tempdir().unwrap();
        copy_release(&ml_small(), dir.path());
        std::fs::remove_file(dir.path().join("tags.csv")).unwrap();
        assert!(matches!(verify(dir.path(), &ML_LATEST_SMALL), Err(VerifyError::Missing { .. })));
    }

    #[test]
    fn bundled_checksum_list_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.csv"), "x\n1\n").unwrap();
        let good = md5_file(&dir.path().join("a.csv")).unwrap();
        const FILES: &[ReleaseFile] = &[file("a.csv", None, Some(1), None)];
        let release = GroupLensRelease { files: FILES, bundled_checksums: Some("checksums.txt"), ..ML_32M };
        std::fs::write(dir.path().join("checksums.txt"), format!("{good}  a.csv\n")).unwrap();
        verify(dir.path(), &release).unwrap();
        std::fs::write(dir.path().join("checksums.txt"), format!("{}  a.csv\n", "0".repeat(32))).unwrap();
        assert!(matches!(verify(dir.path(), &release), Err(VerifyError::Md5 { .. })));
        std::fs::write(dir.path().join("checksums.txt"), "not a checksum\n").unwrap();
        assert!(matches!(verify(dir.path(), &release), Err(VerifyError::ChecksumList { line: 1, .. })));
    }

    #[test]
    fn row_counts_are_checked_where_no_md5_is_known() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.csv"), "h\n1\n2").unwrap();
        const TWO: &[ReleaseFile] = &[file("a.csv", None, Some(2), None)];
        const THREE: &[ReleaseFile] = &[file("a.csv", None, Some(3), None)];
        let release = GroupLensRelease { files: TWO, ..ML_25M };
        verify(dir.path(), &release).unwrap();
        let release = GroupLensRelease { files: THREE, ..ML_25M };
        assert!(matches!(verify(dir.path(), &release), Err(VerifyError::Rows { actual: 2, expected: 3, .. })));
    }

    #[test]
    fn md5_of_empty_input_is_the_known_constant() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("empty"), "").unwrap();
        assert_eq!(md5_file(&dir.path().join("empty")).unwrap(), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn every_release_has_a_grouplens_url_named_after_it() {
        for r in RELEASES {
            assert_eq!(r.url, format!("{BASE_URL}{}.zip", r.name));
            assert_eq!(r.folder, r.name);
            assert!(r.zip_md5.is_none_or(|m| m.len() == 32));
            assert!(release(r.name).is_some());
        }
        assert_eq!(ML_25M.ratings(), Some(25_000_095));
    }
}
