//! Shared by the `evaluate` end-to-end tests: a small release folder and the binary with a
//! clean environment.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// 40 users × 30 movies, a planted taste (users like movies of their parity), some cells
/// missing, timestamps increasing. `shift` changes every rating's timestamp, giving another
/// data set of the same shape.
pub fn write_release_shifted(dir: &Path, shift: i64) {
    let mut movies = String::from("movieId,title,genres\n");
    for m in 1..=30 {
        let _ = writeln!(movies, "{m},Movie {m} (2000),Drama");
    }
    std::fs::write(dir.join("movies.csv"), movies).unwrap();
    let mut ratings = String::from("userId,movieId,rating,timestamp\n");
    let mut t = 1_000_000 + shift;
    for u in 1..=40 {
        for m in 1..=30 {
            if (u * 7 + m * 3) % 5 == 0 {
                continue;
            }
            let r = if (u + m) % 2 == 0 { 4.5 } else { 2.0 } - if m > 20 { 0.5 } else { 0.0 };
            t += 17;
            let _ = writeln!(ratings, "{u},{m},{r:.1},{t}");
        }
    }
    std::fs::write(dir.join("ratings.csv"), ratings).unwrap();
}

/// [`write_release_shifted`] with no shift.
pub fn write_release(dir: &Path) {
    write_release_shifted(dir, 0);
}

/// Ratings [`write_release`] writes.
#[allow(dead_code)]
pub const RATINGS: u64 = 960;

/// The `evaluate` binary, without the variables that would make it record or log somewhere
/// the test did not choose.
pub fn evaluate_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_evaluate"));
    for var in ["CINEDATA_DATABASE_URL", "MLFLOW_TRACKING_URI", "CINEDATA_MLFLOW_EXPERIMENT"] {
        command.env_remove(var);
    }
    command
}
