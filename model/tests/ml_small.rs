//! Quality smoke tests on ml-latest-small (`CINEDATA_ML_SMALL` overrides the folder).

use std::path::PathBuf;

use model::{BiasedMf, Query, Ratings, Recommender, Recompute, TruncatedSvd};
use movielens::release::{RatingRow, Release};

fn ml_small() -> Vec<RatingRow> {
    let dir = std::env::var_os("CINEDATA_ML_SMALL").map(PathBuf::from).unwrap_or_else(|| {
        let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/movielens/ml-latest-small");
        if local.join("ratings.csv").is_file() {
            local
        } else {
            PathBuf::from("/work/shared/data/movielens/ml-latest-small")
        }
    });
    let release = Release::new(&dir);
    assert!(release.exists(), "ml-latest-small not found at {}; set CINEDATA_ML_SMALL", dir.display());
    release.ratings().expect("open ratings.csv").map(|r| r.expect("valid row")).collect()
}

/// A fixed 80/20 split by a hash of (user, movie), independent of file order.
fn held_out(r: &RatingRow) -> bool {
    let mut z = ((r.user_id as u64) << 32 | r.movie_id as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)).is_multiple_of(5)
}

fn ratings(rows: &[RatingRow], keep: impl Fn(&RatingRow) -> bool) -> Ratings {
    Ratings::from_rows(rows.iter().filter(|r| keep(r)).map(|r| (r.user_id, r.movie_id, r.rating, r.timestamp))).unwrap()
}

fn rmse(test: &[&RatingRow], predict: impl Fn(i64, i64) -> f32) -> f64 {
    let sse: f64 = test.iter().map(|r| f64::from(predict(r.user_id, r.movie_id) - r.rating).powi(2)).sum();
    (sse / test.len() as f64).sqrt()
}

#[test]
fn batch_mf_beats_the_global_mean_by_a_clear_margin_on_ml_latest_small() {
    let rows = ml_small();
    let train = ratings(&rows, |r| !held_out(r));
    let test: Vec<&RatingRow> = rows.iter().filter(|r| held_out(r)).collect();
    // Fewer factors and epochs than the defaults keep this fast in debug builds.
    let mf = BiasedMf::builder().factors(16).epochs(20).build().unwrap().fit(&train).unwrap();
    let mu = train.global_mean();
    let baseline = rmse(&test, |_, _| mu);
    let got = rmse(&test, |u, i| mf.predict(u, i));
    assert!(baseline > 1.0, "global mean RMSE {baseline:.4}");
    assert!(got < 0.90, "batch MF RMSE {got:.4} vs global mean {baseline:.4}");
}

#[test]
fn the_full_recompute_on_ml_latest_small_gives_sensible_lists() {
    let rows = ml_small();
    let all = ratings(&rows, |_| true);
    let batch = Recompute::builder()
        .mf(BiasedMf::builder().factors(32).epochs(20).build().unwrap())
        .svd(TruncatedSvd::builder().rank(16).build().unwrap())
        .build()
        .unwrap()
        .fit(&all)
        .unwrap();
    // Forrest Gump, Shawshank and Pulp Fiction lead any popularity list of this data set.
    let popular: Vec<i64> = batch.popularity.popular(&Query::top(10)).iter().map(|s| s.item).collect();
    assert!([356, 318, 296].iter().all(|m| popular.contains(m)), "{popular:?}");
    // Toy Story 2 is among the movies most similar to Toy Story.
    let similar: Vec<i64> = batch.similarity.similar(1, &Query::top(10)).iter().map(|s| s.item).collect();
    assert!(similar.contains(&3114), "{similar:?}");
    // PureSVD lists for a heavy user exclude everything they rated.
    let user = 414;
    let seen: std::collections::HashSet<i64> = rows.iter().filter(|r| r.user_id == user).map(|r| r.movie_id).collect();
    let list = batch.svd.recommend(user, &Query::top(50));
    assert_eq!(list.len(), 50);
    assert!(list.iter().all(|s| !seen.contains(&s.item)));
}
