//! The computed splits equal the published split files row for row (`CINEDATA_ML_SMALL`
//! overrides the ml-latest-small folder, `CINEDATA_SPLITS` the splits folder).

use std::path::PathBuf;

use evaluate::splits::{self, Part, fold_key};
use movielens::RatingRow;

fn shared(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(default))
}

fn ratings() -> Vec<RatingRow> {
    let dir = shared("CINEDATA_ML_SMALL", "/work/shared/data/movielens/ml-latest-small");
    evaluate::load_ratings(&dir).unwrap_or_else(|e| panic!("{e}; set CINEDATA_ML_SMALL"))
}

fn split_file(name: &str) -> PathBuf {
    let path = shared("CINEDATA_SPLITS", "/work/shared/data/movielens/splits").join(name);
    assert!(path.is_file(), "{} not found; set CINEDATA_SPLITS", path.display());
    path
}

#[test]
fn fold_assignment_passes_the_protocol_checks() {
    let rows = ratings();
    let folds = splits::assign_folds(&rows, 5);
    let fold_of = |u, i| {
        let r = rows.iter().position(|r| (r.user_id, r.movie_id) == (u, i)).unwrap();
        folds[r]
    };
    assert_eq!(fold_of(1, 1), 3);
    assert_eq!(fold_of(1, 3), 5);
    assert_eq!(fold_of(1, 6), 3);
    let mut sizes = [0usize; 5];
    for &f in &folds {
        sizes[f as usize - 1] += 1;
    }
    assert_eq!(sizes, [20168, 20167, 20167, 20167, 20167]);
    assert_ne!(fold_key(1, 1), fold_key(1, 3));
}

#[test]
fn computed_folds_equal_the_published_file_row_for_row() {
    let rows = ratings();
    let computed = splits::assign_folds(&rows, 5);
    // read_folds matches every line to a rating by (userId, movieId); the result follows ratings.csv.
    let published = splits::read_folds(&split_file("ml-latest-small-folds.csv"), &rows).unwrap();
    assert_eq!(computed.len(), published.len());
    let first_difference = computed.iter().zip(&published).position(|(a, b)| a != b);
    assert_eq!(first_difference, None, "row {first_difference:?} differs");
}

#[test]
fn computed_topn_split_equals_the_published_file_row_for_row() {
    let rows = ratings();
    let computed = splits::temporal_split(&rows);
    let published = splits::read_split(&split_file("ml-latest-small-topn-split.csv"), &rows).unwrap();
    assert_eq!(computed.len(), published.len());
    let first_difference = computed.iter().zip(&published).position(|(a, b)| a != b);
    assert_eq!(first_difference, None, "row {first_difference:?} differs");
    let count = |p| computed.iter().filter(|&&x| x == p).count();
    assert_eq!((count(Part::Train), count(Part::Val), count(Part::Test)), (64081, 16338, 20417));
}
