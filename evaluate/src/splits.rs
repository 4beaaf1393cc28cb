//! The splits of `EVALUATION.md`, computed or read from the published split files.
//!
//! Every split is a `Vec` parallel to the rating rows in `ratings.csv` order, so a computed
//! split and a split file can be compared row for row.

use std::collections::HashMap;
use std::path::Path;

use movielens::RatingRow;

use crate::EvalError;

/// Seed of the fold hash.
const FOLD_SEED: u64 = 42;

pub use schemas::splitmix::splitmix64;

/// The sort key of a rating in the fold assignment: `splitmix64(((u << 32) | i) ^ splitmix64(42))`.
pub fn fold_key(user: i64, movie: i64) -> u64 {
    let x = ((user as u64) << 32) | (movie as u64 & 0xFFFF_FFFF);
    splitmix64(x ^ splitmix64(FOLD_SEED))
}

/// Protocol A: sorts rows by [`fold_key`] and gives the row at rank `r` fold `r mod k + 1`.
/// Returns each row's fold (1-based), in row order. Equal keys (a duplicated pair) keep
/// row order.
pub fn assign_folds(rows: &[RatingRow], k: u8) -> Vec<u8> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&r| (fold_key(rows[r].user_id, rows[r].movie_id), r));
    let mut folds = vec![0u8; rows.len()];
    for (rank, &r) in order.iter().enumerate() {
        folds[r] = (rank % k as usize) as u8 + 1;
    }
    folds
}

/// Where protocol C puts one rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// Outer train and inner train (`train,train`).
    Train,
    /// Outer train, inner validation (`train,val`): the held-out part for tuning.
    Val,
    /// Outer test (`test,-`).
    Test,
}

impl Part {
    /// The `split,inner` columns of the split file.
    pub fn columns(self) -> (&'static str, &'static str) {
        match self {
            Part::Train => ("train", "train"),
            Part::Val => ("train", "val"),
            Part::Test => ("test", "-"),
        }
    }

    fn parse(split: &str, inner: &str) -> Option<Self> {
        match (split, inner) {
            ("train", "train") => Some(Part::Train),
            ("train", "val") => Some(Part::Val),
            ("test", "-") => Some(Part::Test),
            _ => None,
        }
    }
}

/// Protocol C: per user, sorts ratings by (timestamp, movieId); with `n` ratings the first
/// `floor(8n/10)` are train, the rest test; the same rule on each user's train ratings marks
/// the inner validation part. Returns each row's [`Part`], in row order.
pub fn temporal_split(rows: &[RatingRow]) -> Vec<Part> {
    let mut by_user: HashMap<i64, Vec<usize>> = HashMap::new();
    for (r, row) in rows.iter().enumerate() {
        by_user.entry(row.user_id).or_default().push(r);
    }
    let mut parts = vec![Part::Test; rows.len()];
    for mut idx in by_user.into_values() {
        idx.sort_by_key(|&r| (rows[r].timestamp, rows[r].movie_id, r));
        let train = idx.len() * 8 / 10;
        let inner = train * 8 / 10;
        for (j, &r) in idx.iter().enumerate() {
            parts[r] = if j < inner {
                Part::Train
            } else if j < train {
                Part::Val
            } else {
                Part::Test
            };
        }
    }
    parts
}

/// Reads a `userId,movieId,fold` file: one line per rating, in any order.
///
/// # Errors
/// [`EvalError::Io`] if unreadable; [`EvalError::SplitFile`] for a malformed line, a pair
/// listed twice, or pairs that are not in the ratings or ratings the file leaves out.
pub fn read_folds(path: &Path, rows: &[RatingRow]) -> Result<Vec<u8>, EvalError> {
    read_rows(path, rows, |cols| cols.first().and_then(|f| f.parse::<u8>().ok()).filter(|&f| f >= 1))
}

/// Reads a `userId,movieId,split,inner` file: one line per rating, in any order.
///
/// # Errors
/// As [`read_folds`].
pub fn read_split(path: &Path, rows: &[RatingRow]) -> Result<Vec<Part>, EvalError> {
    read_rows(path, rows, |cols| match cols {
        [split, inner, ..] => Part::parse(split, inner),
        _ => None,
    })
}

/// Pairs named in an error message at most.
const EXAMPLES: usize = 3;

/// The value of every row of `rows`, matched to the file's lines by (userId, movieId), so a
/// file in another order than `ratings.csv` (e.g. sorted by user, as ml-100k's `u1..u5`
/// folds are) reads the same. Rows sharing a pair share its value.
fn read_rows<T: Copy>(
    path: &Path,
    rows: &[RatingRow],
    value: impl Fn(&[&str]) -> Option<T>,
) -> Result<Vec<T>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io { path: path.to_owned(), source })?;
    let bad = |line: usize, reason: String| EvalError::SplitFile { path: path.to_owned(), line, reason };
    let mut found: HashMap<(i64, i64), Option<(T, usize)>> =
        rows.iter().map(|r| ((r.user_id, r.movie_id), None)).collect();
    let (mut unknown, mut unknown_examples) = (0usize, Vec::new());
    // Line 1 is the header.
    for (n, line) in text.lines().enumerate().skip(1) {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        let (Some(user), Some(movie)) = (cols.first(), cols.get(1)) else {
            return Err(bad(n + 1, "expected userId,movieId,...".into()));
        };
        let (Ok(user), Ok(movie)) = (user.parse::<i64>(), movie.parse::<i64>()) else {
            return Err(bad(n + 1, "userId and movieId must be integers".into()));
        };
        let v = value(&cols[2..]).ok_or_else(|| bad(n + 1, format!("bad split value in {line:?}")))?;
        match found.get_mut(&(user, movie)) {
            None => {
                unknown += 1;
                if unknown_examples.len() < EXAMPLES {
                    unknown_examples.push(format!("({user},{movie}) on line {}", n + 1));
                }
            }
            Some(Some((_, first))) => {
                return Err(bad(n + 1, format!("({user},{movie}) is listed again (first on line {first})")));
            }
            Some(slot) => *slot = Some((v, n + 1)),
        }
    }
    let mut missing: Vec<(i64, i64)> = found.iter().filter(|(_, v)| v.is_none()).map(|(&pair, _)| pair).collect();
    if unknown > 0 || !missing.is_empty() {
        missing.sort_unstable();
        let mut reasons = Vec::new();
        if unknown > 0 {
            reasons.push(format!("{unknown} pairs are not in the ratings (e.g. {})", unknown_examples.join(", ")));
        }
        if !missing.is_empty() {
            let examples: Vec<String> = missing.iter().take(EXAMPLES).map(|(u, m)| format!("({u},{m})")).collect();
            reasons.push(format!(
                "{} of the {} rated (userId, movieId) pairs are missing (e.g. {})",
                missing.len(),
                found.len(),
                examples.join(", ")
            ));
        }
        return Err(bad(text.lines().count(), reasons.join("; ")));
    }
    Ok(rows.iter().map(|r| found[&(r.user_id, r.movie_id)].expect("every pair was found").0).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(user_id: i64, movie_id: i64, timestamp: i64) -> RatingRow {
        RatingRow { user_id, movie_id, rating: 4.0, timestamp }
    }

    #[test]
    fn splitmix_of_the_seed_matches_the_protocol() {
        assert_eq!(splitmix64(42), 0xbdd7_3226_2feb_6e95);
    }

    #[test]
    fn folds_are_balanced_and_one_based() {
        let rows: Vec<RatingRow> = (0..23).map(|i| row(i / 5 + 1, i, 0)).collect();
        let folds = assign_folds(&rows, 5);
        let mut sizes = [0; 5];
        for f in folds {
            sizes[f as usize - 1] += 1;
        }
        assert_eq!(sizes, [5, 5, 5, 4, 4]);
    }

    #[test]
    fn temporal_split_keeps_the_earliest_eight_tenths_for_training() {
        // Ten ratings of one user, given out of time order; ties on time go to the smaller movie.
        let rows: Vec<RatingRow> = (0..10).map(|i| row(1, 100 - i, if i < 2 { 0 } else { 10 - i })).collect();
        let parts = temporal_split(&rows);
        // Sorted by (time, movie): movies 99, 100 (t = 0), then 91, 92, ..., 98 (t = 1..8).
        let by_movie: HashMap<i64, Part> = rows.iter().map(|r| r.movie_id).zip(parts).collect();
        let train = |m| by_movie[&m];
        for m in [99, 100, 91, 92, 93, 94] {
            assert_eq!(train(m), Part::Train, "movie {m}");
        }
        // 8 train ratings -> floor(64/10) = 6 inner train, 2 validation.
        assert_eq!(train(95), Part::Val);
        assert_eq!(train(96), Part::Val);
        assert_eq!(train(97), Part::Test);
        assert_eq!(train(98), Part::Test);
    }

    fn write(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
        let path = dir.path().join("folds.csv");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn fold_files_match_by_pair_in_any_order() {
        let rows = [row(196, 242, 0), row(1, 6, 0), row(22, 377, 0)];
        let dir = tempfile::tempdir().unwrap();
        // Sorted by user, as ml-100k's u1..u5 files are: not the ratings' order.
        let path = write(&dir, "userId,movieId,fold\n1,6,2\n22,377,3\n196,242,1\n");
        assert_eq!(read_folds(&path, &rows).unwrap(), [1, 2, 3]);
    }

    #[test]
    fn unknown_missing_and_repeated_pairs_are_refused_with_counts() {
        let rows = [row(196, 242, 0), row(1, 6, 0), row(22, 377, 0)];
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "userId,movieId,fold\n1,6,2\n5,5,1\n6,6,1\n");
        let error = read_folds(&path, &rows).unwrap_err().to_string();
        assert!(error.contains("2 pairs are not in the ratings (e.g. (5,5) on line 3, (6,6) on line 4)"), "{error}");
        assert!(
            error.contains("2 of the 3 rated (userId, movieId) pairs are missing (e.g. (22,377), (196,242))"),
            "{error}"
        );
        let path = write(&dir, "userId,movieId,fold\n1,6,2\n196,242,1\n1,6,3\n22,377,3\n");
        let error = read_folds(&path, &rows).unwrap_err().to_string();
        assert!(error.ends_with("folds.csv:4: (1,6) is listed again (first on line 2)"), "{error}");
    }
}
