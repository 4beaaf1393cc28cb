//! Writes a synthetic MovieLens-shaped release:
//! `cargo run --release -p movielens --bin synth -- --out DIR --ratings N [--users U --movies M --tags T --seed S]`.
//! Sizes not given follow `SyntheticConfig::scaled(N)`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use movielens::synthetic::{self, SyntheticConfig};

/// Generate a synthetic MovieLens-shaped release (movies.csv, ratings.csv, tags.csv, links.csv).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Folder to write; created if missing, files in it replaced.
    #[arg(long)]
    out: PathBuf,
    /// Number of ratings (exact). 100836 is ml-latest-small's size, 25000095 ml-25m's.
    #[arg(long)]
    ratings: u64,
    /// Number of users [default: ratings / 160].
    #[arg(long)]
    users: Option<u32>,
    /// Number of movies [default: grows like ratings^0.34, 9742 at 100836 ratings].
    #[arg(long)]
    movies: Option<u32>,
    /// Number of tags [default: 4% of ratings].
    #[arg(long)]
    tags: Option<u64>,
    /// Random seed; the same arguments give the same files.
    #[arg(long, default_value_t = synthetic::DEFAULT_SEED)]
    seed: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let base = SyntheticConfig::scaled(args.ratings);
    let cfg = SyntheticConfig {
        users: args.users.unwrap_or(base.users),
        movies: args.movies.unwrap_or(base.movies),
        ratings: args.ratings,
        tags: args.tags.unwrap_or(base.tags),
        seed: args.seed,
    };
    let started = Instant::now();
    match synthetic::write_release(&cfg, &args.out) {
        Ok(summary) => {
            println!(
                "wrote {}: {} ratings, {} tags, {} movies, {} users, {} links ({:.1} MB) in {:.1} s",
                summary.dir.display(),
                summary.ratings,
                summary.tags,
                summary.movies,
                cfg.users,
                summary.links,
                summary.bytes as f64 / 1e6,
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("synth: {e}");
            ExitCode::FAILURE
        }
    }
}
