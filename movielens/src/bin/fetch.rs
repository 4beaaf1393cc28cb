//! Downloads, checks and unpacks a GroupLens MovieLens release:
//! `cargo run --release -p movielens --bin fetch -- [--release ml-latest-small] [--dest data/] [--url URL] [--quiet]`.
//! Prints the folder of the verified release.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use clap::builder::PossibleValuesParser;
use movielens::download::{self, RELEASES};

/// Download a MovieLens release from GroupLens, check its MD5, unpack it and verify the files.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The release to download.
    #[arg(long, default_value = "ml-latest-small", value_parser = PossibleValuesParser::new(RELEASES.map(|r| r.name)))]
    release: String,
    /// Folder to unpack into; the release lands in DEST/<release>. A verified copy already
    /// there is kept and nothing is downloaded.
    #[arg(long, default_value = "data")]
    dest: PathBuf,
    /// Download the zip from this URL (a mirror) instead of GroupLens; the release's checksums
    /// still apply.
    #[arg(long)]
    url: Option<String>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let release = download::release(&args.release).expect("clap only accepts known releases");
    let url = args.url.as_deref().unwrap_or(release.url);
    let started = Instant::now();
    match download::fetch_from(url, release, &args.dest, !args.quiet) {
        Ok(dir) => {
            println!("{} verified in {} ({:.1} s)", release.name, dir.display(), started.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fetch: {e}");
            ExitCode::FAILURE
        }
    }
}
