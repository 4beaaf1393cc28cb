//! Shape, determinism and scale checks of the generator.

use std::collections::{HashMap, HashSet};

use super::random::{allocate, jan_first};
use super::*;
use crate::release::{Release, valid_rating};

/// Small enough for a debug build, big enough for shape checks.
fn tiny() -> SyntheticConfig {
    SyntheticConfig { users: 120, movies: 2_000, ratings: 20_000, tags: 800, seed: 7 }
}

fn read_all(dir: &Path) -> (Vec<MovieRow>, Vec<RatingRow>, Vec<TagRow>, Vec<LinkRow>) {
    let release = Release::new(dir);
    let movies = release.movies().unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    let ratings = release.ratings().unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    let tags = release.tags().unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    let links = release.links().unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    (movies, ratings, tags, links)
}

#[test]
fn same_seed_gives_same_rows_and_another_seed_does_not() {
    let cfg = tiny();
    let a: Vec<RatingRow> = ratings(&cfg).unwrap().collect();
    let b: Vec<RatingRow> = ratings(&cfg).unwrap().collect();
    assert_eq!(a, b);
    let c: Vec<RatingRow> = ratings(&cfg.with_seed(8)).unwrap().collect();
    assert_ne!(a, c);
    let t1: Vec<TagRow> = tags(&cfg).unwrap().collect();
    let t2: Vec<TagRow> = tags(&cfg).unwrap().collect();
    assert_eq!(t1, t2);
    assert_eq!(movies(&cfg).unwrap().collect::<Vec<_>>(), movies(&cfg).unwrap().collect::<Vec<_>>());
}

#[test]
fn same_config_writes_the_same_bytes() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_release(&tiny(), a.path()).unwrap();
    write_release(&tiny(), b.path()).unwrap();
    for name in ["movies.csv", "ratings.csv", "tags.csv", "links.csv"] {
        assert_eq!(fs::read(a.path().join(name)).unwrap(), fs::read(b.path().join(name)).unwrap(), "{name}");
    }
}

#[test]
fn small_config_round_trips_through_the_files() {
    let cfg = SyntheticConfig::small();
    let dir = tempfile::tempdir().unwrap();
    let summary = write_release(&cfg, dir.path()).unwrap();
    assert_eq!(
        (summary.movies, summary.ratings, summary.tags, summary.links),
        (u64::from(cfg.movies), cfg.ratings, cfg.tags, u64::from(cfg.movies))
    );
    let (m, r, t, l) = read_all(dir.path());
    assert_eq!(m, movies(&cfg).unwrap().collect::<Vec<_>>());
    assert_eq!(r, ratings(&cfg).unwrap().collect::<Vec<_>>());
    assert_eq!(t, tags(&cfg).unwrap().collect::<Vec<_>>());
    assert_eq!(l, links(&cfg).unwrap().collect::<Vec<_>>());
    assert_eq!(r.iter().map(|x| x.user_id).collect::<HashSet<_>>().len(), cfg.users as usize);
    // Some titles need quoting, and they came back whole.
    assert!(m.iter().any(|x| x.title.contains(", The (")));
    assert!(m.iter().any(|x| x.title.contains('"')));
    assert!(t.iter().any(|x| x.tag.contains(',')));
}

#[test]
fn files_have_movielens_headers_and_lf_line_endings() {
    let dir = tempfile::tempdir().unwrap();
    write_release(&tiny(), dir.path()).unwrap();
    for (name, header) in [
        ("movies.csv", "movieId,title,genres\n"),
        ("ratings.csv", "userId,movieId,rating,timestamp\n"),
        ("tags.csv", "userId,movieId,tag,timestamp\n"),
        ("links.csv", "movieId,imdbId,tmdbId\n"),
    ] {
        let text = fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(text.starts_with(header), "{name}");
        assert!(!text.contains('\r'), "{name}");
        assert!(text.ends_with('\n'), "{name}");
    }
    let ratings = fs::read_to_string(dir.path().join("ratings.csv")).unwrap();
    let rating = ratings.lines().nth(1).unwrap().split(',').nth(2).unwrap();
    assert!(RATING_TEXT.contains(&rating), "{rating}");
    // No temporary files left behind.
    assert!(fs::read_dir(dir.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with('.')));
}

#[test]
fn ratings_are_sorted_unique_per_user_and_in_time_order() {
    let cfg = tiny();
    let rows: Vec<RatingRow> = ratings(&cfg).unwrap().collect();
    assert_eq!(rows.len() as u64, cfg.ratings);
    let min = cfg.min_ratings_per_user();
    let mut per_user: HashMap<i64, u32> = HashMap::new();
    for pair in rows.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert!((a.user_id, a.movie_id) < (b.user_id, b.movie_id), "{a:?} then {b:?}");
        if a.user_id == b.user_id {
            assert!(a.timestamp < b.timestamp, "{a:?} then {b:?}");
        }
    }
    for r in &rows {
        assert!((1..=i64::from(cfg.users)).contains(&r.user_id));
        assert!((1..=i64::from(cfg.movies)).contains(&r.movie_id));
        assert!((FIRST_SECOND..=LAST_SECOND).contains(&r.timestamp));
        *per_user.entry(r.user_id).or_default() += 1;
    }
    assert_eq!(per_user.len(), cfg.users as usize);
    assert!(per_user.values().all(|&n| n >= min), "min {min}");
}

#[test]
fn ratings_look_like_movielens_ratings() {
    let rows: Vec<RatingRow> = ratings(&SyntheticConfig::small()).unwrap().collect();
    assert!(rows.iter().all(|r| valid_rating(r.rating)));
    let mean = rows.iter().map(|r| f64::from(r.rating)).sum::<f64>() / rows.len() as f64;
    assert!((3.35..=3.65).contains(&mean), "mean {mean}");
    let mut counts = [0usize; 10];
    for r in &rows {
        counts[(r.rating * 2.0) as usize - 1] += 1;
    }
    let mode = (0..10).max_by_key(|&i| counts[i]).unwrap();
    assert_eq!(RATING_TEXT[mode], "4.0", "{counts:?}");
    // Both whole-star-only and half-star users exist.
    assert!(counts[6] > rows.len() / 20 && counts[5] > counts[6]);
}

#[test]
fn popularity_and_activity_are_long_tailed() {
    let cfg = SyntheticConfig::small();
    let rows: Vec<RatingRow> = ratings(&cfg).unwrap().collect();
    let mut per_movie = vec![0u64; cfg.movies as usize];
    let mut per_user = vec![0u64; cfg.users as usize];
    for r in &rows {
        per_movie[r.movie_id as usize - 1] += 1;
        per_user[r.user_id as usize - 1] += 1;
    }
    per_movie.sort_unstable_by(|a, b| b.cmp(a));
    let top1: u64 = per_movie[..per_movie.len() / 100].iter().sum();
    let top10: u64 = per_movie[..per_movie.len() / 10].iter().sum();
    // ml-latest-small: 16% and 60%.
    assert!(top1 as f64 > 0.12 * rows.len() as f64, "top 1% hold {top1}");
    assert!(top10 as f64 > 0.5 * rows.len() as f64, "top 10% hold {top10}");
    let singles = per_movie.iter().filter(|&&c| c == 1).count();
    assert!(singles > per_movie.len() / 10, "{singles} movies with one rating");
    per_user.sort_unstable();
    let median = per_user[per_user.len() / 2];
    let max = *per_user.last().unwrap();
    assert!((40..=120).contains(&median) && max > 10 * median, "median {median}, max {max}");
}

#[test]
fn ratings_have_structure_a_recommender_can_learn() {
    // Hold out every fifth rating; user and movie means must beat the global mean clearly.
    let rows: Vec<RatingRow> = ratings(&SyntheticConfig::small()).unwrap().collect();
    let (train, test): (Vec<_>, Vec<_>) = rows.iter().enumerate().partition(|(i, _)| i % 5 != 0);
    let mean = train.iter().map(|(_, r)| f64::from(r.rating)).sum::<f64>() / train.len() as f64;
    let damped = |sums: &HashMap<i64, (f64, f64)>, id: i64| sums.get(&id).map_or(0.0, |&(s, n)| s / (n + 10.0));
    let mut by_movie: HashMap<i64, (f64, f64)> = HashMap::new();
    for (_, r) in &train {
        let e = by_movie.entry(r.movie_id).or_default();
        e.0 += f64::from(r.rating) - mean;
        e.1 += 1.0;
    }
    let mut by_user: HashMap<i64, (f64, f64)> = HashMap::new();
    for (_, r) in &train {
        let e = by_user.entry(r.user_id).or_default();
        e.0 += f64::from(r.rating) - mean - damped(&by_movie, r.movie_id);
        e.1 += 1.0;
    }
    let rmse = |predict: &dyn Fn(&RatingRow) -> f64| {
        (test.iter().map(|(_, r)| (predict(r) - f64::from(r.rating)).powi(2)).sum::<f64>() / test.len() as f64).sqrt()
    };
    let global = rmse(&|_| mean);
    let biased = rmse(&|r| mean + damped(&by_movie, r.movie_id) + damped(&by_user, r.user_id));
    assert!(biased < global - 0.08, "global {global:.3}, biases {biased:.3}");
}

#[test]
fn tags_sit_on_rated_movies_after_the_rating() {
    let cfg = tiny();
    let rated: HashMap<(i64, i64), i64> =
        ratings(&cfg).unwrap().map(|r| ((r.user_id, r.movie_id), r.timestamp)).collect();
    let rows: Vec<TagRow> = tags(&cfg).unwrap().collect();
    assert_eq!(rows.len() as u64, cfg.tags);
    let mut per_pair: HashMap<(i64, i64), HashSet<&str>> = HashMap::new();
    for t in &rows {
        let at = rated.get(&(t.user_id, t.movie_id)).expect("tag on a rated movie");
        assert!(t.timestamp > *at);
        assert!(per_pair.entry((t.user_id, t.movie_id)).or_default().insert(&t.tag), "repeated tag");
    }
    assert!(per_pair.values().all(|s| s.len() <= MAX_TAGS_PER_MOVIE as usize));
    assert!(rows.windows(2).all(|w| (w[0].user_id, w[0].movie_id) <= (w[1].user_id, w[1].movie_id)));
    let taggers = rows.iter().map(|t| t.user_id).collect::<HashSet<_>>().len();
    assert!(taggers < cfg.users as usize / 3, "{taggers} taggers");
}

#[test]
fn movies_have_years_and_one_to_three_movielens_genres() {
    let links: Vec<LinkRow> = links(&tiny()).unwrap().collect();
    for m in movies(&tiny()).unwrap() {
        assert!((1..=3).contains(&m.genres.len()), "{m:?}");
        assert!(m.genres.iter().all(|g| GENRES.contains(&g.as_str())));
        assert!(m.genres.windows(2).all(|w| w[0] < w[1]), "sorted, distinct: {m:?}");
        let year: u32 = m.title[m.title.len() - 5..m.title.len() - 1].parse().unwrap();
        assert!((1902..=2023).contains(&year), "{m:?}");
    }
    assert!(links.iter().all(|l| l.imdb_id.len() == 7));
    assert_eq!(links.iter().map(|l| &l.imdb_id).collect::<HashSet<_>>().len(), links.len());
    let tmdb: Vec<i64> = links.iter().filter_map(|l| l.tmdb_id).collect();
    assert_eq!(tmdb.iter().collect::<HashSet<_>>().len(), tmdb.len());
    let small: Vec<LinkRow> = super::links(&SyntheticConfig::small()).unwrap().collect();
    assert!(small.iter().any(|l| l.tmdb_id.is_none()));
}

#[test]
fn dense_and_tiny_configs_work() {
    for cfg in [
        SyntheticConfig { users: 3, movies: 5, ratings: 15, tags: 45, seed: 1 },
        SyntheticConfig { users: 1, movies: 1, ratings: 1, tags: 0, seed: 1 },
        SyntheticConfig { users: 50, movies: 40, ratings: 1_000, tags: 10, seed: 1 },
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_release(&cfg, dir.path()).unwrap();
        let (m, r, t, l) = read_all(dir.path());
        assert_eq!(
            (m.len() as u32, r.len() as u64, t.len() as u64, l.len() as u32),
            (cfg.movies, cfg.ratings, cfg.tags, cfg.movies)
        );
        assert_eq!(r.iter().map(|x| (x.user_id, x.movie_id)).collect::<HashSet<_>>().len(), r.len());
    }
}

#[test]
fn impossible_configs_are_rejected() {
    let ok = tiny();
    for bad in [
        SyntheticConfig { users: 0, ..ok },
        SyntheticConfig { movies: 0, ..ok },
        SyntheticConfig { ratings: 119, ..ok },
        SyntheticConfig { ratings: 120 * 2_000 + 1, ..ok },
        SyntheticConfig { tags: 3 * 20_000 + 1, ..ok },
    ] {
        assert!(matches!(ratings(&bad), Err(SyntheticError::Config(_))), "{bad:?}");
        assert!(write_release(&bad, Path::new("/nonexistent/never-created")).is_err());
    }
}

#[test]
fn scaled_configs_follow_movielens_sizes() {
    let near = |a: u64, b: u64| (a as f64 / b as f64 - 1.0).abs() < 0.05;
    for (scaled, real) in [
        (SyntheticConfig::scaled(100_836), SyntheticConfig::small()),
        (SyntheticConfig::scaled(25_000_095), SyntheticConfig::ml_25m()),
    ] {
        assert_eq!(scaled.ratings, real.ratings);
        assert!(near(u64::from(scaled.movies), u64::from(real.movies)), "{scaled:?}");
        assert!(near(u64::from(scaled.users), u64::from(real.users)), "{scaled:?}");
        assert!(scaled.validate().is_ok());
    }
    for n in [1, 10, 1_000, 1_000_000] {
        SyntheticConfig::scaled(n).validate().unwrap();
    }
}

#[test]
fn allocate_meets_total_minimum_and_cap() {
    let weights = [5.0, 1.0, 0.0, 100.0, 0.5];
    let out = allocate(60, &weights, &[1, 1, 0, 1, 1], &[30, 30, 30, 20, 30]);
    assert_eq!(out.iter().map(|&x| u64::from(x)).sum::<u64>(), 60);
    assert_eq!(out[2], 0);
    assert_eq!(out[3], 20);
    assert!(out.iter().zip([1, 1, 0, 1, 1]).all(|(&x, m)| x >= m));
}

#[test]
fn jan_first_matches_known_instants() {
    assert_eq!(jan_first(1970), 0);
    assert_eq!(jan_first(1996), FIRST_SECOND);
    assert_eq!(jan_first(2024) - 1, LAST_SECOND);
    assert_eq!(jan_first(2001), 978_307_200);
}
