//! The GroupLens releases we know, with their checksums, a check of an unpacked copy, and the
//! download.
//!
//! [`verify`] checks an unpacked folder against what is known about the release: every expected
//! file present, with the published size, MD5 or row count where we have one. [`fetch`]
//! downloads a release's zip over HTTPS, checks its MD5 where one is pinned, unpacks it next to
//! the destination, runs [`verify`] and only then renames the folder into place, so
//! `dest_dir/<folder>` is either absent or a verified release. [`fetch_from`] does the same
//! from another URL (a mirror, or a local server in tests).
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
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};
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
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

/// Give up connecting after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Give up when the server sends nothing for this long (headers or body); a slow but steady
/// download of a 250 MB zip is fine.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Why [`fetch`] failed. Whatever the error, the partial zip and the unpacking folder are gone
/// and `dest_dir/<folder>` was not created.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The request failed: no connection, TLS, timeout, or an HTTP error status.
    #[error("GET {url}: {source}")]
    Http {
        /// The zip's URL.
        url: String,
        /// The underlying error; `ureq::Error::StatusCode(404)` for a missing file.
        source: Box<ureq::Error>,
    },
    /// The connection failed while the body was being received.
    #[error("GET {url}: reading the body: {source}")]
    Read {
        /// The zip's URL.
        url: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The server closed the connection before sending the `Content-Length` it announced.
    #[error("GET {url}: connection closed after {received} of {expected} bytes")]
    Truncated {
        /// The zip's URL.
        url: String,
        /// Announced length.
        expected: u64,
        /// Bytes received.
        received: u64,
    },
    /// The zip's MD5 is not the one published for the release.
    #[error("GET {url}: zip md5 {actual}, expected {expected}")]
    Md5 {
        /// The zip's URL.
        url: String,
        /// Published MD5.
        expected: String,
        /// MD5 of the bytes received.
        actual: String,
    },
    /// A local file or folder could not be created, written, read or renamed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The download is not a readable zip, or an entry is corrupt (bad CRC, unsupported
    /// compression or encryption).
    #[error("{url}: bad zip: {source}")]
    Zip {
        /// The zip's URL.
        url: String,
        /// The underlying error.
        source: zip::result::ZipError,
    },
    /// An entry's name could write outside the unpacking folder (absolute, `..`, a drive or a
    /// backslash) or is a symlink; the whole archive is rejected before anything is written.
    #[error("{url}: zip entry {name:?} {reason}; archive rejected")]
    UnsafeEntry {
        /// The zip's URL.
        url: String,
        /// The entry's name as stored.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The zip does not hold the release folder (`ml-25m/...`).
    #[error("{url}: the zip has no `{folder}/` folder")]
    NoFolder {
        /// The zip's URL.
        url: String,
        /// The folder the release should unpack to.
        folder: &'static str,
    },
    /// The unpacked release fails [`verify`]. The path in the error is inside the unpacking
    /// folder, which has been removed.
    #[error("the unpacked release fails verification: {0}")]
    Verify(#[source] VerifyError),
    /// `dest_dir/<folder>` already exists but fails [`verify`]; it is left alone.
    #[error("{path} exists but fails verification ({source}); move it away to download again")]
    Exists {
        /// The existing folder.
        path: PathBuf,
        /// What [`verify`] found.
        source: VerifyError,
    },
}

/// Downloads `release` from GroupLens into `dest_dir/<folder>` and returns that path; see
/// [`fetch_from`].
///
/// # Errors
/// As [`fetch_from`].
pub fn fetch(release: &GroupLensRelease, dest_dir: &Path, progress: bool) -> Result<PathBuf, DownloadError> {
    fetch_from(release.url, release, dest_dir, progress)
}

/// Downloads the zip of `release` from `url` into `dest_dir/<folder>` and returns that path.
///
/// `dest_dir` is created if missing. If `dest_dir/<folder>` already exists and passes [`verify`]
/// nothing is downloaded. Otherwise the zip is streamed to a temporary file in `dest_dir` while
/// its MD5 is computed (with a progress bar on stderr when `progress` is set and stderr is a
/// terminal), checked against `release.zip_md5` when one is pinned, and unpacked into a
/// temporary folder in `dest_dir`. Entry names are checked before anything is written. The
/// unpacked `<folder>` must pass [`verify`] before it is renamed to `dest_dir/<folder>` (one
/// `rename`, on the same file system). The temporary zip and folder are removed in every case.
///
/// # Errors
/// [`DownloadError::Exists`] if `dest_dir/<folder>` is there but fails [`verify`];
/// [`DownloadError::Http`], [`DownloadError::Read`] or [`DownloadError::Truncated`] if the
/// download fails; [`DownloadError::Md5`] if the zip is not the published one;
/// [`DownloadError::Zip`], [`DownloadError::UnsafeEntry`] or [`DownloadError::NoFolder`] if it
/// cannot be unpacked safely; [`DownloadError::Verify`] if the files are not the release's;
/// [`DownloadError::Io`] for local file-system errors.
pub fn fetch_from(
    url: &str,
    release: &GroupLensRelease,
    dest_dir: &Path,
    progress: bool,
) -> Result<PathBuf, DownloadError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| DownloadError::Io { path, source }
    };
    std::fs::create_dir_all(dest_dir).map_err(io(dest_dir))?;
    let target = dest_dir.join(release.folder);
    if target.symlink_metadata().is_ok() {
        return match verify(&target, release) {
            Ok(()) => Ok(target),
            Err(source) => Err(DownloadError::Exists { path: target, source }),
        };
    }

    let zip_file = tempfile::Builder::new()
        .prefix(&format!(".{}.", release.name))
        .suffix(".zip.part")
        .tempfile_in(dest_dir)
        .map_err(io(dest_dir))?;
    // One display for the download bar and the spinner after it. Bars dropped unfinished (on an
    // error) clear themselves, leaving the line to the error message.
    let display =
        if progress { MultiProgress::new() } else { MultiProgress::with_draw_target(ProgressDrawTarget::hidden()) };
    let md5 = download(url, zip_file.as_file(), zip_file.path(), &display, release)?;
    if let Some(expected) = release.zip_md5
        && !md5.eq_ignore_ascii_case(expected)
    {
        return Err(DownloadError::Md5 { url: url.to_owned(), expected: expected.to_ascii_lowercase(), actual: md5 });
    }

    let staging = tempfile::Builder::new()
        .prefix(&format!(".{}.", release.name))
        .suffix(".unpack")
        .tempdir_in(dest_dir)
        .map_err(io(dest_dir))?;
    let spinner = ProgressBar::new_spinner().with_message(format!("unpacking {}", release.name));
    let spinner = display.add(spinner.with_finish(ProgressFinish::AndClear));
    if progress {
        spinner.enable_steady_tick(Duration::from_millis(120));
    }
    unpack(url, zip_file.as_file(), staging.path())?;
    drop(zip_file);
    let unpacked = staging.path().join(release.folder);
    if !unpacked.is_dir() {
        return Err(DownloadError::NoFolder { url: url.to_owned(), folder: release.folder });
    }
    spinner.set_message(format!("verifying {}", release.name));
    verify(&unpacked, release).map_err(DownloadError::Verify)?;
    spinner.finish_and_clear();
    std::fs::rename(&unpacked, &target).map_err(io(&target))?;
    Ok(target)
}

/// Streams the body of `url` into `out`, returning its MD5 as lowercase hex.
fn download(
    url: &str,
    out: &File,
    out_path: &Path,
    display: &MultiProgress,
    release: &GroupLensRelease,
) -> Result<String, DownloadError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_per_read(Some(READ_TIMEOUT))
        .user_agent(concat!("cinedata-movielens/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut response = agent
        .get(url)
        .call()
        .map_err(|source| DownloadError::Http { url: url.to_owned(), source: Box::new(source) })?;
    let expected = response.body().content_length();
    let bar = display.add(download_bar(release.name, expected.or(release.zip_bytes)));
    let mut body = response.body_mut().as_reader();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut received = 0u64;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && expected.is_some() => {
                let expected = expected.unwrap_or_default();
                return Err(DownloadError::Truncated { url: url.to_owned(), expected, received });
            }
            Err(source) => return Err(DownloadError::Read { url: url.to_owned(), source }),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|source| DownloadError::Io { path: out_path.to_owned(), source })?;
        received += n as u64;
        bar.inc(n as u64);
    }
    out.flush().map_err(|source| DownloadError::Io { path: out_path.to_owned(), source })?;
    // ureq already fails a short body; this also catches a server that sends too much.
    if let Some(expected) = expected
        && received != expected
    {
        return Err(DownloadError::Truncated { url: url.to_owned(), expected, received });
    }
    // A plain line rather than the finished bar: indicatif leaves a finished bar's line open.
    let secs = bar.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let rate = HumanBytes((received as f64 / secs.max(1e-3)) as u64);
    let _ = display.println(format!("{}: {} in {secs:.1} s ({rate}/s)", release.name, HumanBytes(received)));
    Ok(hex(&hasher.finalize()))
}

/// A byte-counting bar with throughput; a counter alone when the length is unknown.
fn download_bar(name: &'static str, len: Option<u64>) -> ProgressBar {
    let (bar, template) = match len {
        Some(len) => {
            (ProgressBar::new(len), "{msg} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} ({elapsed})")
        }
        None => (ProgressBar::no_length(), "{spinner} {msg} {bytes} {bytes_per_sec} ({elapsed})"),
    };
    let style = ProgressStyle::with_template(template).expect("valid template").progress_chars("=> ");
    bar.with_style(style).with_message(name).with_finish(ProgressFinish::AndClear)
}

/// Unpacks `zip` into `into`, which must be empty. Every entry name is checked before the
/// first file is written.
fn unpack(url: &str, zip: &File, into: &Path) -> Result<(), DownloadError> {
    let bad_zip = |source| DownloadError::Zip { url: url.to_owned(), source };
    let mut archive = zip::ZipArchive::new(zip).map_err(bad_zip)?;
    let mut paths = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(bad_zip)?;
        let name = entry.name().map_err(bad_zip)?.into_owned();
        let unsafe_entry = |reason| DownloadError::UnsafeEntry { url: url.to_owned(), name: name.clone(), reason };
        if entry.is_symlink() {
            return Err(unsafe_entry("is a symlink"));
        }
        let path = entry_path(&name).map_err(unsafe_entry)?;
        paths.push((path, entry.is_dir()));
    }
    for (i, (path, is_dir)) in paths.into_iter().enumerate() {
        let path = into.join(path);
        let io = |source| DownloadError::Io { path: path.clone(), source };
        if is_dir {
            std::fs::create_dir_all(&path).map_err(io)?;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        // `create_new`: a name listed twice is an error, not a silent overwrite.
        let file = File::options().write(true).create_new(true).open(&path).map_err(io)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut entry = archive.by_index(i).map_err(bad_zip)?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            // The entry reader checks the CRC at the end and fails on a mismatch.
            let n = entry.read(&mut buf).map_err(|e| bad_zip(e.into()))?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).map_err(io)?;
        }
        out.flush().map_err(io)?;
    }
    Ok(())
}

/// The relative path a zip entry may be unpacked to: plain components only (`.` is dropped),
/// no `..`, no root, no drive, no backslash or NUL.
fn entry_path(name: &str) -> Result<PathBuf, &'static str> {
    if name.contains('\\') || name.contains(':') || name.contains('\0') {
        return Err("has a backslash, colon or NUL in its name");
    }
    let mut path = PathBuf::new();
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("has a `..` component"),
            Component::RootDir | Component::Prefix(_) => return Err("is an absolute path"),
        }
    }
    if path.as_os_str().is_empty() {
        return Err("has an empty name");
    }
    Ok(path)
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
    fn zip_entry_names_that_could_escape_are_rejected() {
        for name in ["../evil", "ml/../../evil", "ml/../x", "/etc/passwd", "C:\\evil", "ml\\..\\x", "a\0b", "", "./"] {
            assert!(entry_path(name).is_err(), "{name:?} accepted");
        }
        assert_eq!(entry_path("ml-25m/ratings.csv").unwrap(), Path::new("ml-25m/ratings.csv"));
        assert_eq!(entry_path("./ml-25m/").unwrap(), Path::new("ml-25m"));
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
