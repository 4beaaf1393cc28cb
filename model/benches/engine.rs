//! Engine benchmarks: medians over repeated runs, each next to a simple baseline measured in
//! the same run (so the ratio survives a slower or busier machine).
//!
//! ```text
//! cargo bench -p model --bench engine                      # SGD, online, top-N, recompute
//! cargo bench -p model --bench engine -- topn online       # a subset of sections
//! cargo bench -p model --bench engine -- personal          # served personal lists (pipeline + engine)
//! cargo bench -p model --bench engine -- candidates        # the same at 100, 70 and 50 re-ranked candidates
//! cargo bench -p model --bench engine -- synthetic-25m     # 25 M-rating pipeline, personal lists, RSS
//! ```
//! ml-latest-small is read from `CINEDATA_ML_SMALL` or `/work/shared/data/movielens/ml-latest-small`.

use std::collections::HashSet;
use std::hint::black_box;
use std::time::Instant;

use model::{
    BiasedMf, ItemId, MfModel, OnlineModel, PureSvd, Query, Ratings, Recommender, Recompute, SgdParams, Update,
    sgd_step,
};
use movielens::synthetic::SyntheticConfig;
use ndarray::{Array1, Array2};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Peak resident set size of this process, from `/proc/self/status`.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    kb / 1024.0
}

fn ml_small() -> Ratings {
    let dir =
        std::env::var("CINEDATA_ML_SMALL").unwrap_or_else(|_| "/work/shared/data/movielens/ml-latest-small".into());
    let rows = movielens::release::Release::new(dir).ratings().expect("ml-latest-small ratings.csv");
    Ratings::from_rows(rows.map(|r| {
        let r = r.expect("valid row");
        (r.user_id, r.movie_id, r.rating, r.timestamp)
    }))
    .expect("ratings")
}

/// The textbook Funk step, no clipping or overshoot guard, sequential dot product: the
/// baseline of the SGD figure.
#[allow(clippy::too_many_arguments)]
fn textbook_step(mu: f32, bu: &mut f32, bi: &mut f32, p: &mut [f32], q: &mut [f32], r: f32, lr: f32, reg: f32) {
    let e = r - (mu + *bu + *bi + p.iter().zip(q.iter()).map(|(a, b)| a * b).sum::<f32>());
    *bu += lr * (e - reg * *bu);
    *bi += lr * (e - reg * *bi);
    for (pf, qf) in p.iter_mut().zip(q.iter_mut()) {
        let p0 = *pf;
        *pf += lr * (e * *qf - reg * p0);
        *qf += lr * (e * p0 - reg * *qf);
    }
}

fn bench_sgd() {
    let (n_users, n_items, k, events) = (610usize, 9_724usize, 64usize, 2_000_000usize);
    let mut rng = SmallRng::seed_from_u64(1);
    let ev: Vec<(usize, usize, f32)> = (0..events)
        .map(|_| (rng.random_range(0..n_users), rng.random_range(0..n_items), rng.random_range(1..=10) as f32 * 0.5))
        .collect();
    let params = SgdParams::default();
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let mut p = Array2::<f32>::from_elem((n_users, k), 0.05);
        let mut q = Array2::<f32>::from_elem((n_items, k), 0.05);
        let (mut bu, mut bi) = (vec![0f32; n_users], vec![0f32; n_items]);
        let t = Instant::now();
        for &(u, i, r) in &ev {
            black_box(sgd_step(3.5, &mut bu[u], &mut bi[i], p.row_mut(u), q.row_mut(i), r, &params));
        }
        ours.push(events as f64 / t.elapsed().as_secs_f64());
        black_box((&p, &q));
        let mut p = vec![0.05f32; n_users * k];
        let mut q = vec![0.05f32; n_items * k];
        let (mut bu, mut bi) = (vec![0f32; n_users], vec![0f32; n_items]);
        let t = Instant::now();
        for &(u, i, r) in &ev {
            let (pu, qi) = (&mut p[u * k..(u + 1) * k], &mut q[i * k..(i + 1) * k]);
            textbook_step(3.5, &mut bu[u], &mut bi[i], pu, qi, r, 0.01, 0.05);
        }
        base.push(events as f64 / t.elapsed().as_secs_f64());
        black_box((&p, &q));
    }
    let (o, b) = (median(ours), median(base));
    println!(
        "sgd_step k=64 (610 x 9724 tables, random events): median {:.2} M updates/s over 7 runs of {events}; textbook step {:.2} M/s; ratio {:.2}",
        o / 1e6,
        b / 1e6,
        o / b
    );
}

fn bench_online(ratings: &Ratings, mf: &MfModel) {
    let rows: Vec<_> = ratings.iter().collect();
    let k = mf.factors();
    let params = OnlineModel::builder().build().unwrap();
    let (mut rates, mut bare) = (Vec::new(), Vec::new());
    let mut applied = 0usize;
    for round in 1..=7i64 {
        let online = OnlineModel::from_batch(params.clone(), mf, ratings).unwrap();
        let t = Instant::now();
        for r in &rows {
            // A newer timestamp: every event is a re-rating that takes a step.
            if let Ok(Update::Applied { .. }) =
                online.update(r.user, r.item, r.value, r.timestamp + round * 1_000_000_000)
            {
                applied += 1;
            }
        }
        rates.push(rows.len() as f64 / t.elapsed().as_secs_f64());
        // The same events as bare `sgd_step`s on contiguous tables, right after (same load).
        let (mut p, mut q) = (mf.user_factors().to_owned(), mf.item_factors().to_owned());
        let (mut bu, mut bi) = (mf.user_bias().to_vec(), mf.item_bias().to_vec());
        let (users, items) = (ratings.users(), ratings.items());
        let sgd = params.sgd();
        let t = Instant::now();
        for j in 0..rows.len() {
            let (u, i) = (users[j] as usize, items[j] as usize);
            black_box(sgd_step(3.5, &mut bu[u], &mut bi[i], p.row_mut(u), q.row_mut(i), rows[j].value, &sgd));
        }
        bare.push(rows.len() as f64 / t.elapsed().as_secs_f64());
        black_box((&p, &q));
    }
    assert_eq!(applied, rows.len() * 7);
    let (o, b) = (median(rates), median(bare));
    println!(
        "OnlineModel::update k={k} (ml-latest-small replayed as re-ratings: dashmap user + block lock + dedupe + running mean): median {:.2} M updates/s over 7 runs of {}; bare sgd_step on the same events {:.2} M/s; ratio {:.2}",
        o / 1e6,
        rows.len(),
        b / 1e6,
        o / b
    );
}

/// The straightforward top-N: row-major matrix-vector product, drop seen, sort everything.
fn naive_top_n(mf: &MfModel, user: u32, seen: &[u32], n: usize) -> Vec<(ItemId, f32)> {
    let p = mf.user_factors().row(user as usize).to_owned();
    let scores: Array1<f32> = mf.item_factors().dot(&p) + mf.item_bias();
    let mut all: Vec<(ItemId, f32)> = scores
        .iter()
        .enumerate()
        .filter(|(i, _)| seen.binary_search(&(*i as u32)).is_err())
        .map(|(i, &s)| (mf.item_ids().id(i as u32), s))
        .collect();
    all.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
    all.truncate(n);
    all
}

fn time_calls(users: &[i64], rounds: usize, mut f: impl FnMut(i64)) -> (f64, f64) {
    let mut t_us = Vec::with_capacity(users.len() * rounds);
    for _ in 0..rounds {
        for &u in users {
            let t = Instant::now();
            f(u);
            t_us.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    (median(t_us.clone()), percentile(t_us, 0.99))
}

/// Times `model`'s top-10 lists (`rounds` times for each of `users`) and prints them beside the
/// naive baseline's median, `base` µs.
fn print_top_n_vs_naive(label: &str, name: &str, model: &impl Recommender, users: &[i64], rounds: usize, base: f64) {
    let q = Query::top(10);
    let (m, p99) = time_calls(users, rounds, |u| {
        black_box(model.recommend(u, &q));
    });
    println!("top-10 {label}, {name}: median {m:.1} µs, p99 {p99:.1} µs; ratio to naive {:.2}", m / base);
}

fn bench_top_n(label: &str, ratings: &Ratings, mf: &MfModel, svd: Option<&PureSvd>, users: &[i64], rounds: usize) {
    let q = Query::top(10);
    let seen: Vec<Vec<u32>> = (0..ratings.n_users() as u32).map(|u| ratings.user_row(u).0.to_vec()).collect();
    let (base, _) = time_calls(users, rounds, |u| {
        let ui = ratings.user_ids().index(u).unwrap();
        black_box(naive_top_n(mf, ui, &seen[ui as usize], 10));
    });
    // Same answers as the naive path (up to ties).
    for &u in users.iter().take(50) {
        let ui = ratings.user_ids().index(u).unwrap();
        let fast: Vec<ItemId> = mf.recommend(u, &q).iter().map(|s| s.item).collect();
        let slow: Vec<ItemId> = naive_top_n(mf, ui, &seen[ui as usize], 10).iter().map(|s| s.0).collect();
        assert_eq!(fast.iter().collect::<HashSet<_>>().len(), 10);
        assert!(fast.iter().filter(|i| slow.contains(i)).count() >= 9, "{fast:?} vs {slow:?}");
    }
    let (m, p99) = time_calls(users, rounds, |u| {
        black_box(mf.recommend(u, &q));
    });
    println!(
        "top-10 {label}, MfModel k={} ({} movies, seen excluded): median {m:.1} µs, p99 {p99:.1} µs over {} calls; naive sort-all baseline {base:.1} µs; ratio {:.2}",
        mf.factors(),
        ratings.n_items(),
        users.len() * rounds,
        m / base
    );
    let online = OnlineModel::from_batch(OnlineModel::builder().build().unwrap(), mf, ratings).unwrap();
    let name = format!("OnlineModel (live, k={})", online.factors());
    print_top_n_vs_naive(label, &name, &online, users, rounds, base);
    if let Some(svd) = svd {
        print_top_n_vs_naive(label, &format!("PureSvd rank {}", svd.rank()), svd, users, rounds, base);
    }
}

/// Serving while the consumer writes: one thread replays ml-latest-small as re-ratings into
/// the online model while this one asks for top-10 lists.
fn bench_concurrent(ratings: &Ratings, mf: &MfModel) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let online = OnlineModel::from_batch(OnlineModel::builder().build().unwrap(), mf, ratings).unwrap();
    let rows: Vec<_> = ratings.iter().collect();
    let users: Vec<i64> = ratings.user_ids().ids().to_vec();
    let stop = AtomicBool::new(false);
    let written = AtomicUsize::new(0);
    let q = Query::top(10);
    let (mut m, mut p99, mut secs) = (0.0, 0.0, 0.0);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut round = 1i64;
            'outer: loop {
                for chunk in rows.chunks(4096) {
                    if stop.load(Ordering::Relaxed) {
                        break 'outer;
                    }
                    for r in chunk {
                        black_box(online.update(r.user, r.item, r.value, r.timestamp + round * 1_000_000_000).ok());
                    }
                    written.fetch_add(chunk.len(), Ordering::Relaxed);
                }
                round += 1;
            }
        });
        let t = Instant::now();
        (m, p99) = time_calls(&users, 10, |u| {
            black_box(online.recommend(u, &q));
        });
        secs = t.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
    });
    println!(
        "top-10 ml-latest-small, OnlineModel while a writer thread applies updates: median {m:.1} µs, p99 {p99:.1} µs over {} calls; writer {:.2} M updates/s meanwhile",
        users.len() * 10,
        written.load(Ordering::Relaxed) as f64 / secs / 1e6
    );
}

/// A BaselineOnly-style fit (biases only, 20 SGD epochs): the baseline of the recompute figure.
fn biases_only(ratings: &Ratings) -> f32 {
    let mu = ratings.global_mean();
    let (mut bu, mut bi) = (vec![0f32; ratings.n_users()], vec![0f32; ratings.n_items()]);
    for _ in 0..20 {
        for ((&u, &i), &r) in ratings.users().iter().zip(ratings.items()).zip(ratings.values()) {
            let e = r - (mu + bu[u as usize] + bi[i as usize]);
            bu[u as usize] += 0.005 * (e - 0.02 * bu[u as usize]);
            bi[i as usize] += 0.005 * (e - 0.02 * bi[i as usize]);
        }
    }
    bu.iter().sum::<f32>() + bi.iter().sum::<f32>()
}

fn bench_recompute_small(ratings: &Ratings) {
    let recompute = Recompute::builder().build().unwrap();
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let t = Instant::now();
        black_box(recompute.fit(ratings).unwrap());
        ours.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        black_box(biases_only(ratings));
        base.push(t.elapsed().as_secs_f64());
    }
    let (o, b) = (median(ours), median(base));
    println!(
        "full recompute ml-latest-small (MF k=64 x 40 epochs + SVD rank 32 || EASE + re-ranking trees + popularity + similarity): median {o:.3} s over 5 runs; biases-only 20-epoch baseline {b:.3} s; ratio {:.1}",
        o / b
    );
}

/// The published pipeline's engine on `ratings` (fit, holdout check, online model), timed.
fn published_engine(ratings: &Ratings) -> (model::Engine, f64, Option<model::HoldoutReport>) {
    published_engine_with(ratings, model::Rerank::default())
}

fn published_engine_with(
    ratings: &Ratings,
    top_n: model::Rerank,
) -> (model::Engine, f64, Option<model::HoldoutReport>) {
    let t = Instant::now();
    let published = Recompute::builder().top_n(top_n).build().unwrap().run(ratings.iter().collect()).unwrap();
    let holdout = published.holdout;
    let engine = published
        .engine(OnlineModel::builder().build().unwrap(), std::sync::Arc::new(model::ContentIndex::default()))
        .unwrap();
    (engine, t.elapsed().as_secs_f64(), holdout)
}

/// What `GET /users/{id}/recommendations` computes when its cache misses: `Engine::recommend`
/// (the top-N model over the live history), against the live MF's list in the same run, and
/// the share of it that is EASE's candidate list alone (the rest is features and trees).
fn bench_personal(label: &str, engine: &model::Engine, users: &[i64], rounds: usize) {
    let q = Query::top(10);
    let (base, base_p99) = time_calls(users, rounds, |u| {
        black_box(engine.online().recommend(u, &q));
    });
    let (m, p99) = time_calls(users, rounds, |u| {
        black_box(engine.recommend(u, &q));
    });
    let candidates = engine.top_n().map(|t| {
        let pool = Query::top(t.candidates());
        time_calls(users, rounds, |u| {
            let rated: Vec<(i64, f32)> = engine.history(u).iter().map(|h| (h.0, h.1)).collect();
            black_box(t.ease().recommend_for_ratings(&rated, &pool));
        })
    });
    println!(
        "personal top-10 {label}, Engine::recommend (EASE + re-ranking trees over the live history, uncached): \
         median {:.2} ms, p99 {:.2} ms over {} calls; live MF list (the old path) median {:.2} ms, p99 {:.2} ms; ratio {:.1}",
        m / 1e3,
        p99 / 1e3,
        users.len() * rounds,
        base / 1e3,
        base_p99 / 1e3,
        m / base
    );
    if let Some((c, c99)) = candidates {
        println!(
            "  of which EASE's candidate list alone (history read + one score row + selection): median {:.3} ms, p99 {:.3} ms ({:.0}% of the median)",
            c / 1e3,
            c99 / 1e3,
            100.0 * c / m
        );
    }
}

fn catalogue_62k() -> Ratings {
    // 20k users x 2 M ratings from the synthetic generator, plus one rating per movie by an
    // extra user so all 62,423 movies are in the catalogue.
    let cfg = SyntheticConfig { users: 20_000, movies: 62_423, ratings: 2_000_000, tags: 0, seed: 7 };
    let rows = movielens::synthetic::ratings(&cfg)
        .expect("synthetic config")
        .map(|r| (r.user_id, r.movie_id, r.rating, r.timestamp));
    let extra = (1..=i64::from(cfg.movies)).map(|m| (1_000_000i64, m, 3.0f32, 0i64));
    Ratings::from_rows(rows.chain(extra)).expect("ratings")
}

fn sample_users(ratings: &Ratings, n: usize, seed: u64) -> Vec<i64> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let ids = ratings.user_ids().ids();
    (0..n).map(|_| ids[rng.random_range(0..ids.len())]).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    println!("model engine bench: {} threads available", std::thread::available_parallelism().map_or(1, |n| n.get()));
    if args.iter().any(|a| a == "synthetic-25m") {
        synthetic_25m();
        return;
    }
    // Optional section names select a subset: sgd online topn concurrent recompute 62k.
    let run = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    if run("sgd") {
        bench_sgd();
    }
    let t = Instant::now();
    let small = ml_small();
    println!("Ratings::from_rows ml-latest-small: {:.3} s (CSV read included)", t.elapsed().as_secs_f64());
    let batch = Recompute::builder().build().unwrap().fit(&small).unwrap();
    if run("online") {
        bench_online(&small, &batch.mf);
    }
    if run("topn") {
        let users: Vec<i64> = small.user_ids().ids().to_vec();
        bench_top_n("ml-latest-small", &small, &batch.mf, Some(&batch.svd), &users, 20);
    }
    if run("concurrent") {
        bench_concurrent(&small, &batch.mf);
    }
    if run("recompute") {
        bench_recompute_small(&small);
    }
    if run("personal") {
        let (engine, secs, holdout) = published_engine(&small);
        println!("pipeline run ml-latest-small (fit + holdout check + online model): {secs:.1} s; holdout {holdout:?}");
        let users: Vec<i64> = small.user_ids().ids().to_vec();
        bench_personal("ml-latest-small", &engine, &users, 5);
    }
    // Only when named: what fewer re-ranked candidates save, each setting twice, alternated.
    if args.iter().any(|a| a == "candidates") {
        let users: Vec<i64> = small.user_ids().ids().to_vec();
        for candidates in [100, 70, 50, 100, 70, 50] {
            let (engine, _, _) = published_engine_with(&small, model::Rerank { candidates, ..Default::default() });
            bench_personal(&format!("ml-latest-small, {candidates} candidates"), &engine, &users, 5);
        }
    }
    if run("62k") {
        let big = catalogue_62k();
        let mf = BiasedMf::builder().epochs(3).build().unwrap().fit(&big).unwrap();
        bench_top_n("62k synthetic catalogue", &big, &mf, None, &sample_users(&big, 1000, 3), 3);
    }
    println!("peak RSS {:.0} MiB", peak_rss_mib());
}

fn synthetic_25m() {
    let cfg = SyntheticConfig::ml_25m();
    let t = Instant::now();
    let rows = movielens::synthetic::ratings(&cfg).expect("synthetic config");
    let ratings = Ratings::from_rows(rows.map(|r| (r.user_id, r.movie_id, r.rating, r.timestamp))).expect("ratings");
    println!(
        "synthetic ml-25m-sized: {} ratings, {} users, {} movies; generated + Ratings::from_rows in {:.1} s; peak RSS so far {:.0} MiB",
        ratings.len(),
        ratings.n_users(),
        ratings.n_items(),
        t.elapsed().as_secs_f64(),
        peak_rss_mib()
    );
    let t = Instant::now();
    let base = biases_only(&ratings);
    let b = t.elapsed().as_secs_f64();
    black_box(base);
    // What a retrain computes: hold out, fit every model (top-N, MF, SVD, popularity,
    // similarity), check, then the online model over all ratings.
    let t = Instant::now();
    let published = Recompute::builder().build().unwrap().run(ratings.iter().collect()).unwrap();
    let fit = t.elapsed().as_secs_f64();
    let users = sample_users(&ratings, 1000, 5);
    drop(ratings);
    let holdout = published.holdout;
    bench_top_n(
        "25M synthetic (62k catalogue)",
        &published.ratings,
        &published.models.mf,
        Some(&published.models.svd),
        &users,
        3,
    );
    let t = Instant::now();
    let engine = published
        .engine(OnlineModel::builder().build().unwrap(), std::sync::Arc::new(model::ContentIndex::default()))
        .unwrap();
    let o = fit + t.elapsed().as_secs_f64();
    println!(
        "pipeline run 25 M synthetic (a full retrain: fit every model + holdout check + online model): {o:.1} s \
         (single run); biases-only 20-epoch baseline {b:.1} s; ratio {:.1}; holdout {holdout:?}; peak RSS {:.0} MiB",
        o / b,
        peak_rss_mib()
    );
    bench_personal("25M synthetic (62k catalogue)", &engine, &users, 3);
    println!("peak RSS at exit (incl. online model) {:.0} MiB", peak_rss_mib());
}
