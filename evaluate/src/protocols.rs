//! The three protocols of `EVALUATION.md`: 5-fold CV (A), prequential (B), temporal top-N (C);
//! streaming top-N (D) is [`crate::stream_topn`].

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use model::{ItemId, ModelError, Query, Rating, Ratings, Recommender, UserId};
use movielens::RatingRow;
use serde_json::{Value, json};

use crate::metrics::{Errors, Ranking, clip, mean_std, rank_user};
use crate::models::ModelName;
use crate::splits::Part;
use crate::{EvalError, Protocol, Report};

/// List length of the top-N protocol.
pub const K: usize = 10;

fn ratings<'a>(rows: impl Iterator<Item = &'a RatingRow>) -> Result<Ratings, EvalError> {
    Ok(Ratings::from_rows(rows.map(|r| (r.user_id, r.movie_id, r.rating, r.timestamp)))?)
}

/// Protocol A: for each fold `k` in `1..=max(folds)`, trains on the other folds and scores
/// clipped predictions of fold `k`. `fit_seconds`/`predict_seconds` are means per fold.
///
/// # Errors
/// A model that fails to fit.
pub fn cross_validate(rows: &[RatingRow], folds: &[u8], model: ModelName) -> Result<Report, EvalError> {
    let k = folds.iter().copied().max().unwrap_or(0);
    let mut per_fold = Vec::new();
    let (mut rmses, mut maes) = (Vec::new(), Vec::new());
    let (mut fit_total, mut predict_total) = (0.0, 0.0);
    let mut params = Value::Null;
    for fold in 1..=k {
        let train = ratings(rows.iter().zip(folds).filter(|&(_, &f)| f != fold).map(|(r, _)| r))?;
        let start = Instant::now();
        let (fitted, p) = model.fit(&train, Protocol::Cv)?;
        let fit = start.elapsed().as_secs_f64();
        drop(train);
        params = p;
        let start = Instant::now();
        let mut errors = Errors::default();
        for (r, _) in rows.iter().zip(folds).filter(|&(_, &f)| f == fold) {
            errors.add(clip(fitted.predict(r.user_id, r.movie_id)), r.rating);
        }
        let predict = start.elapsed().as_secs_f64();
        fit_total += fit;
        predict_total += predict;
        rmses.push(errors.rmse());
        maes.push(errors.mae());
        per_fold.push(json!({
            "fold": fold, "test": errors.len(), "rmse": errors.rmse(), "mae": errors.mae(),
            "fit_seconds": fit, "predict_seconds": predict,
        }));
    }
    let (rmse, rmse_std) = mean_std(&rmses);
    let (mae, mae_std) = mean_std(&maes);
    let n = f64::from(k.max(1));
    Ok(Report {
        protocol: Protocol::Cv,
        model,
        params,
        metrics: json!({"rmse": rmse, "rmse_std": rmse_std, "mae": mae, "mae_std": mae_std}),
        folds: per_fold,
        fit_seconds: fit_total / n,
        predict_seconds: predict_total / n,
    })
}

/// The prequential stream: row indices sorted by (timestamp, userId, movieId).
pub fn stream_order(rows: &[RatingRow]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&r| (rows[r].timestamp, rows[r].user_id, rows[r].movie_id, r));
    order
}

/// The release's ratings as the stream: in [`stream_order`].
pub fn stream_ratings(rows: &[RatingRow]) -> Vec<Rating> {
    stream_order(rows)
        .into_iter()
        .map(|r| Rating {
            user: rows[r].user_id,
            item: rows[r].movie_id,
            value: rows[r].rating,
            timestamp: rows[r].timestamp,
        })
        .collect()
}

/// Times each prequential run repeats (fresh model each time) so the throughput is a median:
/// one pass over ml-latest-small takes tens of milliseconds, too short to time once on a
/// shared machine. The errors are identical in every run (the models are seeded).
pub const PREQUENTIAL_RUNS: usize = 5;

/// Protocol B: predicts each rating of the stream (clipped), then learns it. The loop is
/// timed as a whole on one thread, [`PREQUENTIAL_RUNS`] times; `predict_seconds` is the
/// median run, `fit_seconds` 0.
///
/// # Errors
/// [`EvalError::NotApplicable`] for a batch-only model; a rating the model rejects.
pub fn prequential(rows: &[RatingRow], model: ModelName) -> Result<Report, EvalError> {
    let stream = stream_ratings(rows);
    let tail_start = stream.len() * 8 / 10;
    // The first 20% is where hyper-parameters are chosen (see BENCHMARKS.md): reported apart.
    let head_end = stream.len() / 5;
    let mut runs = Vec::with_capacity(PREQUENTIAL_RUNS);
    let (mut all, mut tail, mut head) = (Errors::default(), Errors::default(), Errors::default());
    let mut params = Value::Null;
    for run in 0..PREQUENTIAL_RUNS {
        let Some((mut learner, p)) = model.learner()? else {
            return Err(EvalError::NotApplicable { model, protocol: Protocol::Prequential });
        };
        params = p;
        let (mut run_all, mut run_tail, mut run_head) = (Errors::default(), Errors::default(), Errors::default());
        let start = Instant::now();
        for (k, rating) in stream.iter().enumerate() {
            let p = clip(learner.predict_then_learn(rating)?);
            run_all.add(p, rating.value);
            if k >= tail_start {
                run_tail.add(p, rating.value);
            }
            if k < head_end {
                run_head.add(p, rating.value);
            }
        }
        runs.push(start.elapsed().as_secs_f64());
        if run == 0 {
            (all, tail, head) = (run_all, run_tail, run_head);
        }
    }
    let rates: Vec<f64> = runs.iter().map(|s| stream.len() as f64 / s).collect();
    runs.sort_by(f64::total_cmp);
    let seconds = runs[runs.len() / 2];
    Ok(Report {
        protocol: Protocol::Prequential,
        model,
        params,
        metrics: json!({
            "rmse": all.rmse(), "mae": all.mae(), "rmse_last20": tail.rmse(), "mae_last20": tail.mae(),
            "rmse_first20": head.rmse(), "mae_first20": head.mae(),
            "ratings_per_second": stream.len() as f64 / seconds, "ratings_per_second_runs": rates,
            "n": stream.len(),
        }),
        folds: Vec::new(),
        fit_seconds: 0.0,
        predict_seconds: seconds,
    })
}

/// Which rows a top-N run trains and tests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Train on `train` (inner train + val), test on `test`: the reported numbers.
    Outer,
    /// Train on inner train, test on val: for tuning, never touching test.
    Inner,
}

/// Protocol C on a split: fits on the train part, recommends [`K`] movies to every user with
/// a positive (≥ 4.0) held-out rating among candidates (movies with a train rating, minus the
/// user's train movies) and scores them. Also reports RMSE/MAE of the held-out ratings.
///
/// # Errors
/// A model that fails to fit.
pub fn top_n(rows: &[RatingRow], parts: &[Part], level: Level, model: ModelName) -> Result<Report, EvalError> {
    top_n_with(rows, parts, level, model, |train| model.fit(train, Protocol::TopN))
}

/// [`top_n`] with a model fitted by `fit` (returning the model and its parameters) instead of
/// by name; `model` only labels the report. For hyper-parameter searches on the inner split.
///
/// # Errors
/// What `fit` returns.
pub fn top_n_with(
    rows: &[RatingRow],
    parts: &[Part],
    level: Level,
    model: ModelName,
    fit: impl FnOnce(&Ratings) -> Result<(Box<dyn Recommender>, Value), ModelError>,
) -> Result<Report, EvalError> {
    let is_train = |p: Part| match level {
        Level::Outer => p != Part::Test,
        Level::Inner => p == Part::Train,
    };
    let is_test = |p: Part| match level {
        Level::Outer => p == Part::Test,
        Level::Inner => p == Part::Val,
    };
    let train = ratings(rows.iter().zip(parts).filter(|&(_, &p)| is_train(p)).map(|(r, _)| r))?;
    let universe: HashSet<ItemId> = train.item_ids().ids().iter().copied().collect();
    let mut relevant: HashMap<UserId, HashSet<ItemId>> = HashMap::new();
    for (r, _) in rows.iter().zip(parts).filter(|&(_, &p)| is_test(p)) {
        if r.rating >= 4.0 {
            relevant.entry(r.user_id).or_default().insert(r.movie_id);
        }
    }
    let mut users: Vec<UserId> = relevant.keys().copied().collect();
    users.sort_unstable();

    let start = Instant::now();
    let (fitted, params) = fit(&train)?;
    let fit_seconds = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let query = Query::top(K).within(&universe);
    let mut ranking = Ranking::default();
    for user in &users {
        let list: Vec<ItemId> = fitted.recommend(*user, &query).into_iter().map(|s| s.item).collect();
        ranking.add(&list, rank_user(&list, &relevant[user], K));
    }
    let mut errors = Errors::default();
    for (r, _) in rows.iter().zip(parts).filter(|&(_, &p)| is_test(p)) {
        errors.add(clip(fitted.predict(r.user_id, r.movie_id)), r.rating);
    }
    let predict_seconds = start.elapsed().as_secs_f64();
    let m = ranking.means();
    Ok(Report {
        protocol: Protocol::TopN,
        model,
        params,
        metrics: json!({
            "precision@10": m.precision, "recall@10": m.recall, "ndcg@10": m.ndcg,
            "map@10": m.average_precision, "hit_rate@10": m.hit, "coverage": ranking.coverage(universe.len()),
            "rmse": errors.rmse(), "mae": errors.mae(), "users": ranking.users(), "candidates": universe.len(),
            "level": match level { Level::Outer => "test", Level::Inner => "inner" },
        }),
        folds: Vec::new(),
        fit_seconds,
        predict_seconds,
    })
}
