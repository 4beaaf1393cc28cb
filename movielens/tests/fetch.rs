//! `download::fetch_from` against a one-shot HTTP server on 127.0.0.1 serving zips built here
//! from small synthetic CSVs (GroupLens itself cannot be reached from the test machines).

use std::io::{BufRead, BufReader, Cursor, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use movielens::download::{self, DownloadError, GroupLensRelease, ML_LATEST_SMALL, ReleaseFile, VerifyError};
use zip::write::SimpleFileOptions;

const MOVIES: &str = "movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n2,\"Heat, The (1995)\",Action\n";
const RATINGS: &str = "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.5,964981247\n2,1,5.0,964982224\n";
const README: &str = "Synthetic test release, not GroupLens data.\n";

/// A release shaped like ml-latest-small: two CSVs with row counts, a README with its MD5.
const FILES: &[ReleaseFile] = &[
    ReleaseFile { name: "movies.csv", bytes: None, rows: Some(2), md5: None },
    ReleaseFile { name: "ratings.csv", bytes: Some(RATINGS.len() as u64), rows: Some(3), md5: None },
    // MD5 of README above.
    ReleaseFile { name: "README.txt", bytes: None, rows: None, md5: Some("535f46cc30a4fd173ee2f191690bb6ca") },
];

fn test_release(zip_md5: Option<&'static str>) -> GroupLensRelease {
    GroupLensRelease {
        name: "ml-test",
        url: "http://127.0.0.1:9/ml-test.zip",
        zip_md5,
        zip_bytes: None,
        folder: "ml-test",
        users: 2,
        files: FILES,
        bundled_checksums: None,
    }
}

/// The release's files under `ml-test/`, as GroupLens lays out its zips, deflated.
fn good_entries() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("ml-test/", b""),
        ("ml-test/movies.csv", MOVIES.as_bytes()),
        ("ml-test/ratings.csv", RATINGS.as_bytes()),
        ("ml-test/README.txt", README.as_bytes()),
    ]
}

/// A deflated zip of `entries`; a name ending in `/` is a folder. Names are written as given,
/// unchecked.
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    zip_with(zip::CompressionMethod::Deflated, entries)
}

/// [`zip_of`] with another compression method.
fn zip_with(method: zip::CompressionMethod, entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(method);
    for (name, bytes) in entries {
        if name.ends_with('/') {
            writer.add_directory(*name, options).unwrap();
        } else {
            writer.start_file(*name, options).unwrap();
            writer.write_all(bytes).unwrap();
        }
    }
    writer.finish().unwrap().into_inner()
}

fn md5_hex(bytes: &[u8]) -> &'static str {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    std::fs::write(&path, bytes).unwrap();
    Box::leak(download::md5_file(&path).unwrap().into_boxed_str())
}

/// Serves one request on 127.0.0.1:0: `status`, a `Content-Length` of `body.len()`, then only
/// the first `send` bytes of `body` before closing. Returns the URL and the server thread.
fn serve_once(status: &'static str, body: Vec<u8>, send: usize) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/ml-test.zip", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        // Read the whole request first, so closing early sends a FIN, not a reset.
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
            line.clear();
        }
        let mut stream = reader.into_inner();
        let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
        stream.write_all(head.as_bytes()).unwrap();
        // The client may hang up first on an error status; that is fine.
        let _ = stream.write_all(&body[..send]);
    });
    (url, server)
}

fn serve_zip(zip: Vec<u8>) -> (String, JoinHandle<()>) {
    let len = zip.len();
    serve_once("200 OK", zip, len)
}

/// Fetches `release` from the server `served` (as [`serve_once`] returns it) into a fresh folder,
/// expecting a failure, and waits for the server: the error and what the folder holds after it.
fn fetch_failing(release: &GroupLensRelease, (url, server): (String, JoinHandle<()>)) -> (DownloadError, Vec<String>) {
    let dest = tempfile::tempdir().unwrap();
    let err = download::fetch_from(&url, release, dest.path(), false).unwrap_err();
    server.join().unwrap();
    (err, listing(dest.path()))
}

/// Serves the zip of `entries` and fetches it, as the test release with that zip's MD5, into
/// `data/` of a fresh temp dir (`data/` does not exist beforehand); waits for the server. The
/// result, the release and the temp dir.
fn fetch_into_new_folder(
    entries: &[(&str, &[u8])],
    progress: bool,
) -> (Result<PathBuf, DownloadError>, GroupLensRelease, tempfile::TempDir) {
    let zip = zip_of(entries);
    let release = test_release(Some(md5_hex(&zip)));
    let (url, server) = serve_zip(zip);
    let tmp = tempfile::tempdir().unwrap();
    let got = download::fetch_from(&url, &release, &tmp.path().join("data"), progress);
    server.join().unwrap();
    (got, release, tmp)
}

/// Names in `dir`, hidden temporaries included.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn readme_md5_in_the_test_release_is_right() {
    assert_eq!(md5_hex(README.as_bytes()), FILES[2].md5.unwrap());
}

#[test]
fn good_zip_is_unpacked_verified_and_renamed_into_place() {
    // `progress` on: the bar hides itself when stderr is not a terminal.
    let (got, release, tmp) = fetch_into_new_folder(&good_entries(), true);

    let dir = got.unwrap();
    let dest = tmp.path().join("data");
    assert_eq!(dir, dest.join("ml-test"));
    assert_eq!(listing(&dest), ["ml-test"], "no temporaries left");
    assert_eq!(listing(&dir), ["README.txt", "movies.csv", "ratings.csv"]);
    assert_eq!(std::fs::read_to_string(dir.join("movies.csv")).unwrap(), MOVIES);
    download::verify(&dir, &release).unwrap();
}

#[test]
fn zip_with_the_wrong_md5_is_rejected_and_leaves_nothing_behind() {
    let release = test_release(Some("00000000000000000000000000000000"));

    let (err, left) = fetch_failing(&release, serve_zip(zip_of(&good_entries())));

    assert!(matches!(&err, DownloadError::Md5 { expected, .. } if expected == &"0".repeat(32)), "{err:?}");
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn truncated_download_fails_cleanly() {
    let zip = zip_of(&good_entries());
    let half = zip.len() / 2;

    let (err, left) = fetch_failing(&test_release(None), serve_once("200 OK", zip.clone(), half));

    match err {
        DownloadError::Truncated { expected, received, .. } => {
            assert_eq!(expected, zip.len() as u64);
            assert!(received <= half as u64);
        }
        other => panic!("expected a truncated download, got {other:?}"),
    }
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn entry_climbing_out_with_dotdot_is_rejected_before_anything_is_written() {
    let mut entries = good_entries();
    entries.push(("../evil", b"owned\n"));

    let (got, _, tmp) = fetch_into_new_folder(&entries, false);

    let err = got.unwrap_err();
    let dest = tmp.path().join("data");
    assert!(matches!(&err, DownloadError::UnsafeEntry { name, .. } if name == "../evil"), "{err:?}");
    assert!(listing(&dest).is_empty(), "left behind: {:?}", listing(&dest));
    assert_eq!(listing(tmp.path()), ["data"], "nothing written beside dest");
}

#[test]
fn absolute_entry_is_rejected() {
    let mut entries = good_entries();
    entries.push(("/tmp/evil", b"owned\n"));

    let (err, left) = fetch_failing(&test_release(None), serve_zip(zip_of(&entries)));

    assert!(matches!(&err, DownloadError::UnsafeEntry { name, .. } if name == "/tmp/evil"), "{err:?}");
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn unpacked_files_failing_verification_are_not_moved_into_place() {
    // ratings.csv one row short: the zip is fine, its contents are not the release.
    let short = "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.5,964981247\n";
    let mut entries = good_entries();
    entries[2] = ("ml-test/ratings.csv", short.as_bytes());

    let (err, left) = fetch_failing(&test_release(None), serve_zip(zip_of(&entries)));

    assert!(matches!(err, DownloadError::Verify(VerifyError::Size { .. })), "{err:?}");
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn zip_without_the_release_folder_is_rejected() {
    let flat: Vec<_> = good_entries().into_iter().skip(1).map(|(n, b)| (n.trim_start_matches("ml-test/"), b)).collect();

    let (err, left) = fetch_failing(&test_release(None), serve_zip(zip_of(&flat)));

    assert!(matches!(err, DownloadError::NoFolder { folder: "ml-test", .. }), "{err:?}");
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn body_that_is_not_a_zip_is_rejected() {
    let body = b"<html>not a zip</html>".to_vec();

    let (err, left) = fetch_failing(&test_release(None), serve_zip(body));

    assert!(matches!(err, DownloadError::Zip { .. }), "{err:?}");
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn entry_with_a_bad_crc_is_rejected() {
    let mut zip = zip_with(zip::CompressionMethod::Stored, &good_entries()[1..]);
    // Stored, so the CSV is in the zip as is: change one rating.
    let at = zip.windows(RATINGS.len()).position(|w| w == RATINGS.as_bytes()).unwrap() + RATINGS.len() - 14;
    zip[at] = if zip[at] == b'5' { b'4' } else { b'5' };

    let (err, left) = fetch_failing(&test_release(None), serve_zip(zip));

    assert!(matches!(err, DownloadError::Zip { .. }), "{err:?}");
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn http_error_status_is_reported() {
    let (err, left) = fetch_failing(&test_release(None), serve_once("404 Not Found", b"gone".to_vec(), 4));

    match err {
        DownloadError::Http { source, .. } => assert!(matches!(*source, ureq::Error::StatusCode(404)), "{source:?}"),
        other => panic!("expected an HTTP error, got {other:?}"),
    }
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn verified_copy_already_in_place_is_kept_without_downloading() {
    let dest = tempfile::tempdir().unwrap();
    let dir = dest.path().join("ml-test");
    std::fs::create_dir(&dir).unwrap();
    for (name, bytes) in good_entries().into_iter().skip(1) {
        std::fs::write(dest.path().join(name), bytes).unwrap();
    }
    // Nothing listens on this port: any request would fail.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();

    let got = download::fetch_from(&format!("http://{closed}/x.zip"), &test_release(None), dest.path(), false);

    assert_eq!(got.unwrap(), dir);
}

#[test]
fn broken_copy_already_in_place_is_reported_and_left_alone() {
    let dest = tempfile::tempdir().unwrap();
    let dir = dest.path().join("ml-test");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("movies.csv"), MOVIES).unwrap();

    let err = download::fetch_from("http://127.0.0.1:9/x.zip", &test_release(None), dest.path(), false).unwrap_err();

    assert!(matches!(err, DownloadError::Exists { source: VerifyError::Missing { .. }, .. }), "{err:?}");
    assert_eq!(listing(&dir), ["movies.csv"]);
}

#[test]
fn fetch_of_a_known_release_already_in_place_needs_no_network() {
    // The GroupLens host is unreachable from here: an (emptied) ml-latest-small folder in place
    // must be accepted before any request is made.
    let dest = tempfile::tempdir().unwrap();
    let release = GroupLensRelease { files: &[], ..ML_LATEST_SMALL };
    std::fs::create_dir(dest.path().join(release.folder)).unwrap();
    assert_eq!(download::fetch(&release, dest.path(), false).unwrap(), dest.path().join("ml-latest-small"));
}
