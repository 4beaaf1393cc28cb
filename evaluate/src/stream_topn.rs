//! Protocol D, streaming top-N (`--protocol stream-topn`): the offline twin of an A/B test.
//!
//! The release is replayed as one stream in [`stream_order`](crate::protocols::stream_order)
//! (timestamp, userId, movieId).
//! Before each rating is learned, the model is asked for that user's top-[`K`] as serving would
//! answer at that moment; if the rating is a like (≥ [`LIKED`]) of a movie the user had not
//! rated yet, the list is scored: a hit if the movie is in it, reciprocal rank 1/rank (0
//! outside the list). Then the rating is learned. `evaluate/STREAM-TOPN.md` states the
//! protocol with its figures on ml-latest-small; in short:
//!
//! - **Refits.** Batch models are refitted on every rating streamed so far each time
//!   [`StreamSettings::refit_every`] more have streamed (default 25,000, the demo's
//!   `--retrain-every`): a list at stream position `k` comes from the latest refit and the
//!   user's live history, i.e. all their ratings before `k`, including those since the refit.
//!   `served` refits with serving's retrain pipeline ([`Recompute::run`]) and its gate; the
//!   online models learn every rating and never refit.
//! - **Cold start, as serving's [`Engine`].** A user the model cannot rank for (no history,
//!   or nothing the model knows in it) gets the trending list of the latest refit without
//!   their rated movies; before the first refit, the movies most rated so far (what serving's
//!   engine answers before its first retrain, when it has no popularity model). The online
//!   models have no refit, so they keep that list for cold users; `served` answers with the
//!   live factors before its first retrain, as serving does. `popularity` and `trending` give
//!   everyone their list.
//! - **Re-ratings** are learned (the newer rating replaces the older one, as in the store and
//!   the live model) but never scored: the movie is in the user's history, which every list
//!   excludes, so scoring it would count a certain miss.
//! - **Windows.** The scored events, in stream order, are cut into
//!   [`StreamSettings::windows`] consecutive windows of equal size (default 10), each
//!   reported with the dates of its first and last event; ml-latest-small's ratings are too
//!   uneven over 1996–2018 for calendar years (278 scored events in 1998, 4,978 in 2000).
//!
//! Between two refits a batch model is fixed and a user's list depends only on their own
//! ratings, so those lists are computed ahead of the sequential replay on every core, while
//! the next refit (a function of the stream alone) is fitted on its own thread; lists that
//! follow the live factors (the online models, `served` before its first retrain) are
//! computed in the sequential test-then-learn loop.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use model::{
    ContentIndex, EaseModel, Engine, ItemId, ModelError, OnlineConfig, OnlineModel, Popularity, PopularityModel,
    Published, PureSvd, Query, Rating, Ratings, Recompute, Rerank, RerankModel, Source, UserId, Verdict,
};
use movielens::RatingRow;
use serde_json::{Value, json};

use crate::models::{self, ModelName};
use crate::protocols::{K, stream_ratings};
use crate::record::utc;
use crate::{EvalError, Protocol, Report};

/// Ratings from this many stars are likes: only a liked next movie is scored (protocol C's
/// positive threshold).
pub const LIKED: f32 = 4.0;

/// Default [`StreamSettings::refit_every`]: the demo's `--retrain-every`, so the replay refits
/// where the demo replaying the same release retrains.
pub const REFIT_EVERY: usize = 25_000;

/// Default [`StreamSettings::windows`].
pub const WINDOWS: usize = 10;

/// The half-life of the trending list's likes, in days: serving's (the retrain pipeline's
/// default [`Popularity`]; a unit test keeps the two equal).
const TRENDING_HALF_LIFE_DAYS: f64 = 60.0;

/// Stream events a worker takes at a time when lists are computed ahead: small enough to
/// spread one heavy user's session over both cores, large enough that rebuilding the user's
/// history up to the chunk costs nothing next to the lists.
const CHUNK: usize = 32;

/// How a stream-topn run refits and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSettings {
    /// Ratings streamed between two refits of the batch models (≥ 1).
    pub refit_every: usize,
    /// Consecutive windows of equal numbers of scored events reported (≥ 1).
    pub windows: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self { refit_every: REFIT_EVERY, windows: WINDOWS }
    }
}

/// The list one scored event was shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    /// Position of the scored rating in the stream.
    pub at: usize,
    /// The top-[`K`], best first.
    pub list: Vec<ItemId>,
    /// Whether the model's own ranking produced it (not the cold-start list).
    pub personal: bool,
}

/// What a replay showed, and what it cost.
#[derive(Debug, Clone)]
pub struct Replay {
    /// One entry per scored event, in stream order.
    pub shown: Vec<Shown>,
    /// The model's parameters (of its last refit) and the protocol's settings.
    pub params: Value,
    /// One object per refit: stream position, seconds, and for `served` the gate's verdict.
    pub refits: Vec<Value>,
    /// Seconds the refits took, summed (on their own thread, beside the replay).
    pub fit_seconds: f64,
    /// Seconds of the whole replay: lists, learning and any wait for a refit.
    pub wall_seconds: f64,
}

/// Protocol D on a release: replays its ratings in stream order and scores `model`'s list
/// before each liked first rating of a movie. `fit_seconds` sums the refits, which run on
/// their own thread beside the replay; `predict_seconds` is the whole replay's wall time.
///
/// # Errors
/// [`EvalError::NotApplicable`] for a model the protocol does not take; a model that fails
/// to fit or rejects a rating; [`ModelError::InvalidParameter`] for a zero setting.
pub fn stream_topn(rows: &[RatingRow], model: ModelName, settings: &StreamSettings) -> Result<Report, EvalError> {
    stream_topn_on(&stream_ratings(rows), model, settings)
}

/// [`stream_topn`] on a stream already in order.
///
/// # Errors
/// As [`stream_topn`].
pub fn stream_topn_on(stream: &[Rating], model: ModelName, settings: &StreamSettings) -> Result<Report, EvalError> {
    let replay = replay(stream, model, settings)?;
    let (mut metrics, windows) = score(stream, &replay.shown, settings.windows);
    if let Some(m) = metrics.as_object_mut() {
        m.insert("ratings".into(), json!(stream.len()));
        m.insert("refits".into(), json!(replay.refits.len()));
        m.insert("refit_log".into(), Value::Array(replay.refits));
    }
    Ok(Report {
        protocol: Protocol::StreamTopN,
        model,
        params: replay.params,
        metrics,
        folds: windows,
        fit_seconds: replay.fit_seconds,
        predict_seconds: replay.wall_seconds,
    })
}

/// Which events of `stream` are scored: likes of a movie the user has not rated before.
pub fn scored_events(stream: &[Rating]) -> Vec<bool> {
    let mut rated: HashSet<(UserId, ItemId)> = HashSet::with_capacity(stream.len());
    stream.iter().map(|r| rated.insert((r.user, r.item)) && r.value >= LIKED).collect()
}

/// Replays `stream` through `model` and returns the list of every scored event.
///
/// # Errors
/// As [`stream_topn`].
pub fn replay(stream: &[Rating], model: ModelName, settings: &StreamSettings) -> Result<Replay, EvalError> {
    if !model.applies_to(Protocol::StreamTopN) {
        return Err(EvalError::NotApplicable { model, protocol: Protocol::StreamTopN });
    }
    for (name, value) in [("refit_every", settings.refit_every), ("windows", settings.windows)] {
        if value == 0 {
            return Err(ModelError::InvalidParameter { name, reason: "must be at least 1".into() }.into());
        }
    }
    let scored = scored_events(stream);
    let (mut lister, mut params) = Lister::new(model)?;
    let mut seen = Seen::default();
    let empty = History::default();
    let mut shown = Vec::with_capacity(scored.iter().filter(|&&s| s).count());
    let (mut refits, mut fit_seconds) = (Vec::new(), 0.0);
    let started = Instant::now();
    std::thread::scope(|scope| -> Result<(), EvalError> {
        // Each refit depends on the stream alone, so the next one is fitted on its own thread
        // while the lists of the current refit are computed (at most one finished fit waits).
        let (fits, fitted) = std::sync::mpsc::sync_channel(1);
        let refitting = !matches!(lister, Lister::Live { retrain: None, .. });
        if refitting {
            let refit_every = settings.refit_every;
            scope.spawn(move || {
                for at in (refit_every..stream.len()).step_by(refit_every) {
                    let t = Instant::now();
                    let fit = fit(model, &stream[..at]).map(|(fit, params)| (fit, params, t.elapsed().as_secs_f64()));
                    let failed = fit.is_err();
                    if fits.send(fit).is_err() || failed {
                        break;
                    }
                }
            });
        } else {
            drop(fits);
        }
        for start in (0..stream.len()).step_by(settings.refit_every) {
            if start > 0 && refitting {
                // Nothing to receive only if the fitting thread panicked: the scope re-raises it.
                let Ok(next) = fitted.recv() else { break };
                let (fit, latest, seconds) = next?;
                let mut log = lister.install(fit)?;
                fit_seconds += seconds;
                log.insert("at".into(), json!(start));
                log.insert("seconds".into(), json!(seconds));
                refits.push(Value::Object(log));
                params = latest;
            }
            let window = start..(start + settings.refit_every).min(stream.len());
            let ahead = lister.frozen();
            if ahead {
                shown.extend(lists_ahead(&lister, &seen, stream, window.clone(), &scored));
            }
            for k in window {
                let r = &stream[k];
                if scored[k] && !ahead {
                    let history = seen.histories.get(&r.user).unwrap_or(&empty);
                    let (list, personal) = lister.list(r.user, history, &seen);
                    shown.push(Shown { at: k, list, personal });
                }
                lister.learn(r)?;
                seen.learn(r);
            }
        }
        Ok(())
    })?;
    shown.sort_unstable_by_key(|s| s.at);
    if !params.is_object() {
        params = json!({});
    }
    if let Some(p) = params.as_object_mut() {
        p.insert("refit_every".into(), json!(settings.refit_every));
        p.insert("windows".into(), json!(settings.windows));
        p.insert("k".into(), json!(K));
        p.insert("liked".into(), json!(LIKED));
    }
    Ok(Replay { shown, params, refits, fit_seconds, wall_seconds: started.elapsed().as_secs_f64() })
}

/// Hit rate@[`K`] and MRR@[`K`] over every scored event and over each of `windows`
/// consecutive windows of equal size (as JSON: the report's metrics and its per-window
/// objects).
pub fn score(stream: &[Rating], shown: &[Shown], windows: usize) -> (Value, Vec<Value>) {
    let tally = |events: &[Shown]| {
        let (mut hits, mut rr, mut personal) = (0usize, 0.0f64, 0usize);
        for s in events {
            if let Some(rank) = s.list.iter().take(K).position(|&m| m == stream[s.at].item) {
                hits += 1;
                rr += 1.0 / (rank + 1) as f64;
            }
            personal += usize::from(s.personal);
        }
        let n = events.len() as f64;
        json!({
            "events": events.len(), "hit_rate@10": hits as f64 / n, "mrr@10": rr / n,
            "personal_share": personal as f64 / n,
        })
    };
    let overall = tally(shown);
    let metrics = json!({
        "hit_rate@10": overall["hit_rate@10"], "mrr@10": overall["mrr@10"], "scored": shown.len(),
        "personal_share": overall["personal_share"],
    });
    let w = windows.min(shown.len());
    let per_window = (0..w)
        .map(|j| {
            let part = &shown[j * shown.len() / w..(j + 1) * shown.len() / w];
            let day = |s: &Shown| utc(stream[s.at].timestamp)[..10].to_owned();
            let mut v = tally(part);
            if let (Some(m), Some(first), Some(last)) = (v.as_object_mut(), part.first(), part.last()) {
                m.insert("window".into(), json!(j + 1));
                m.insert("from".into(), json!(day(first)));
                m.insert("to".into(), json!(day(last)));
            }
            v
        })
        .collect();
    (metrics, per_window)
}

/// A user's live history: their latest rating of each movie with its time, in (time, movie)
/// order, as [`OnlineModel::history`] keeps it.
#[derive(Debug, Clone, Default)]
struct History {
    rated: Vec<(ItemId, f32, i64)>,
    ids: HashSet<ItemId>,
}

impl History {
    /// Learns `r` as the live model does: a re-rating at the same time or later replaces the
    /// older one, an earlier one is ignored. Returns whether the movie is new to the user.
    fn apply(&mut self, r: &Rating) -> bool {
        let new = self.ids.insert(r.item);
        if !new {
            let Some(p) = self.rated.iter().position(|h| h.0 == r.item) else { return false };
            if r.timestamp < self.rated[p].2 {
                return false;
            }
            self.rated.remove(p);
        }
        let at = self.rated.partition_point(|h| (h.2, h.0) <= (r.timestamp, r.item));
        self.rated.insert(at, (r.item, r.value, r.timestamp));
        new
    }

    fn is_empty(&self) -> bool {
        self.rated.is_empty()
    }

    /// A top-[`K`] query that leaves out every rated movie.
    fn query(&self) -> Query<'static> {
        Query::top(K).exclude(self.ids.iter().copied())
    }

    fn pairs(&self) -> Vec<(ItemId, f32)> {
        self.rated.iter().map(|h| (h.0, h.1)).collect()
    }
}

/// What the replay has learned so far, whatever the model: every user's history and how many
/// users rated each movie.
#[derive(Debug, Default)]
struct Seen {
    histories: HashMap<UserId, History>,
    raters: HashMap<ItemId, u32>,
}

impl Seen {
    fn learn(&mut self, r: &Rating) {
        if self.histories.entry(r.user).or_default().apply(r) {
            *self.raters.entry(r.item).or_default() += 1;
        }
    }

    /// The movies most rated so far (by distinct users; ties to the smaller id) that the user
    /// has not rated: the list [`OnlineModel::most_rated`] gives serving's engine for a cold
    /// user before its first retrain.
    fn most_rated(&self, history: &History) -> Vec<ItemId> {
        let mut candidates: Vec<(u32, ItemId)> =
            self.raters.iter().filter(|(m, _)| !history.ids.contains(m)).map(|(&m, &n)| (n, m)).collect();
        let order = |a: &(u32, ItemId), b: &(u32, ItemId)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
        if candidates.len() > K {
            candidates.select_nth_unstable_by(K - 1, order);
            candidates.truncate(K);
        }
        candidates.sort_unstable_by(order);
        candidates.into_iter().map(|c| c.1).collect()
    }
}

/// A batch model's ranking of the latest refit.
enum Ranker {
    /// Most-liked movies.
    Popular,
    /// Most recently liked movies.
    Trending,
    Svd(PureSvd),
    Ease(EaseModel),
    Rerank(Box<RerankModel>),
}

/// The latest refit of a batch model: its ranking and the popularity model behind the
/// cold-start (trending) list.
struct Fitted {
    ranker: Ranker,
    popularity: PopularityModel,
}

/// A model under the protocol.
enum Lister {
    /// A batch model (`popularity`, `trending`, `pure-svd`, `ease`, `ease-plain`,
    /// `ease-rerank`): nothing before the first refit.
    Batch { fitted: Option<Box<Fitted>> },
    /// Serving's engine: `served` (with its retrain pipeline) or an online model alone.
    Live { engine: Engine, retrain: Option<Retrain> },
}

/// How `served` swaps in a retrain: the online settings the new engine starts with, and
/// whether a model has been swapped in yet (the gate treats the first one apart).
struct Retrain {
    online: OnlineConfig,
    swapped_in: bool,
}

/// How a refit's log names the gate's decision.
fn gate_name(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Accept => "accepted",
        Verdict::ListsLose(_) => "accepted without personal lists",
        Verdict::KeepOut(_) => "kept out",
    }
}

/// A refit, computed from the ratings streamed so far alone (so ahead of the replay).
enum Fit {
    /// A batch model's.
    Batch(Box<Fitted>),
    /// Serving's retrain pipeline's candidate, before its gate.
    Served(Box<Published>),
}

/// Fits `model` on `seen` (every rating streamed so far), as serving's next retrain would;
/// returns the fit and the model's parameters.
fn fit(model: ModelName, seen: &[Rating]) -> Result<(Fit, Value), ModelError> {
    if model == ModelName::Served {
        let pipeline = Recompute::builder().build()?;
        let published = pipeline.run(seen.to_vec())?;
        let params = models::served_params(&pipeline, published.holdout.as_ref());
        return Ok((Fit::Served(Box::new(published)), params));
    }
    let ratings = Ratings::from_rows(seen.iter().copied())?;
    let popularity = trending_popularity()?.fit(&ratings)?;
    let (ranker, params) = match model {
        ModelName::Popularity => (Ranker::Popular, models::popularity()?.1),
        ModelName::Trending => {
            (Ranker::Trending, json!({"positive": LIKED, "half_life_days": TRENDING_HALF_LIFE_DAYS}))
        }
        ModelName::PureSvd => {
            let (svd, params) = models::pure_svd(Protocol::StreamTopN)?;
            (Ranker::Svd(svd.fit(&ratings)?), params)
        }
        ModelName::Ease | ModelName::EasePlain => {
            let (ease, params) = model.ease();
            (Ranker::Ease(ease.fit(&ratings)?), params)
        }
        ModelName::EaseRerank => {
            // Chosen on the inner split of protocol C (see `model::rerank`).
            let r = Rerank::default();
            let m = r.fit(&ratings)?;
            let params = models::rerank_params(&r, &m);
            (Ranker::Rerank(Box::new(m)), params)
        }
        _ => return Err(ModelError::InvalidParameter { name: "model", reason: format!("{model} does not refit") }),
    };
    Ok((Fit::Batch(Box::new(Fitted { ranker, popularity })), params))
}

/// The popularity settings behind trending lists: serving's.
fn trending_popularity() -> Result<Popularity, ModelError> {
    Popularity::builder().positive_threshold(LIKED).half_life_days(TRENDING_HALF_LIFE_DAYS).build()
}

impl Lister {
    fn new(model: ModelName) -> Result<(Self, Value), ModelError> {
        let content = || Arc::new(ContentIndex::default());
        Ok(match model {
            ModelName::Served => {
                let online = OnlineModel::builder().build()?;
                // Serving's engine before its first retrain (`LiveModel::empty_engine`).
                let engine = Engine::from_parts(OnlineModel::new(online.clone()), None, None, content());
                let params = models::served_params(&Recompute::builder().build()?, None);
                (Lister::Live { engine, retrain: Some(Retrain { online, swapped_in: false }) }, params)
            }
            ModelName::Online | ModelName::OnlineServing => {
                let config = model.online_config()?;
                let params = models::online_params(&config);
                (
                    Lister::Live {
                        engine: Engine::from_parts(OnlineModel::new(config), None, None, content()),
                        retrain: None,
                    },
                    params,
                )
            }
            _ => (Lister::Batch { fitted: None }, Value::Null),
        })
    }

    /// Swaps in a refit, as serving swaps in a retrained model (for `served`, if its gate
    /// lets it); returns the refit's log entry.
    fn install(&mut self, fit: Fit) -> Result<serde_json::Map<String, Value>, ModelError> {
        let mut log = serde_json::Map::new();
        match (self, fit) {
            (Lister::Batch { fitted, .. }, Fit::Batch(f)) => *fitted = Some(f),
            (Lister::Live { engine, retrain: Some(retrain) }, Fit::Served(published)) => {
                let holdout = published.holdout;
                // Serving's gate (`HoldoutReport::verdict`); nothing held out, nothing to judge by.
                let gate = holdout.map_or(Verdict::Accept, |h| h.verdict(!retrain.swapped_in));
                let content = Arc::new(ContentIndex::default());
                match gate {
                    Verdict::Accept => *engine = published.engine(retrain.online.clone(), content)?,
                    Verdict::ListsLose(_) => {
                        *engine = published.engine(retrain.online.clone(), content)?.without_personal_lists();
                    }
                    Verdict::KeepOut(_) => {}
                }
                retrain.swapped_in |= !matches!(gate, Verdict::KeepOut(_));
                log.insert("gate".into(), json!(gate_name(&gate)));
                if let Some(h) = holdout {
                    log.insert("holdout_rmse".into(), json!(h.rmse));
                    log.insert("holdout_mean_rmse".into(), json!(h.mean_rmse));
                    log.insert("holdout_ndcg@10".into(), json!(h.ndcg_at_10));
                    log.insert("holdout_popularity_ndcg@10".into(), json!(h.popularity_ndcg_at_10));
                }
            }
            _ => unreachable!("each model gets its own kind of refit"),
        }
        Ok(log)
    }

    /// Whether, until the next refit, a user's list depends only on the refit and the user's
    /// own history, so lists can be computed ahead of the sequential replay.
    fn frozen(&self) -> bool {
        match self {
            Lister::Batch { fitted, .. } => fitted.is_some(),
            Lister::Live { engine, .. } => engine.top_n().is_some() && engine.popularity().is_some(),
        }
    }

    /// The top-[`K`] for `user` with `history` (every rating of theirs before this moment),
    /// and whether the model's own ranking gave it rather than the cold-start list.
    fn list(&self, user: UserId, history: &History, seen: &Seen) -> (Vec<ItemId>, bool) {
        let ids = |items: Vec<model::Scored>| items.into_iter().map(|s| s.item).collect::<Vec<_>>();
        match self {
            Lister::Batch { fitted: None, .. } => (seen.most_rated(history), false),
            Lister::Batch { fitted: Some(f), .. } => {
                let personal = match &f.ranker {
                    Ranker::Popular => return (ids(f.popularity.popular(&history.query())), false),
                    Ranker::Trending => return (ids(f.popularity.trending(&history.query())), false),
                    _ if history.is_empty() => Vec::new(),
                    // A history of movies the SVD does not know folds in to nothing: no ranking.
                    Ranker::Svd(svd) if !history.rated.iter().any(|h| svd.item_ids().index(h.0).is_some()) => {
                        Vec::new()
                    }
                    Ranker::Svd(svd) => svd.recommend_for_ratings(&history.pairs(), &Query::top(K)),
                    Ranker::Ease(ease) => ease.recommend_for_ratings(&history.pairs(), &Query::top(K)),
                    Ranker::Rerank(rerank) => rerank.recommend_for_history(&history.rated, &Query::top(K)),
                };
                if personal.is_empty() {
                    (ids(f.popularity.trending(&history.query())), false)
                } else {
                    (ids(personal), true)
                }
            }
            Lister::Live { engine, .. } => match (engine.top_n(), engine.popularity()) {
                // `Engine::recommend`'s routing with `history` for the live one (they are the
                // same ratings; a unit test checks the lists agree), so it can run ahead.
                (Some(top_n), Some(popularity)) => {
                    if !history.is_empty() {
                        let items = top_n.recommend_for_history(&history.rated, &Query::top(K));
                        if !items.is_empty() {
                            return (ids(items), true);
                        }
                    }
                    (ids(popularity.trending(&history.query())), false)
                }
                _ => {
                    let got = engine.recommend(user, &Query::top(K));
                    (ids(got.items), got.source == Source::Personal)
                }
            },
        }
    }

    /// Learns one rating after its list was scored: the live model's SGD step (batch models
    /// learn at their next refit).
    fn learn(&self, r: &Rating) -> Result<(), ModelError> {
        if let Lister::Live { engine, .. } = self {
            engine.online().update(r.user, r.item, r.value, r.timestamp)?;
        }
        Ok(())
    }
}

/// The lists of the scored events in `window` for a model that is [`Lister::frozen`] over it,
/// computed on every core: each worker takes [`CHUNK`] events of one user at a time, rebuilds
/// the user's history up to them from `seen` (the state at the window's start) and walks them.
fn lists_ahead(lister: &Lister, seen: &Seen, stream: &[Rating], window: Range<usize>, scored: &[bool]) -> Vec<Shown> {
    let mut by_user: HashMap<UserId, Vec<usize>> = HashMap::new();
    for k in window {
        by_user.entry(stream[k].user).or_default().push(k);
    }
    let mut work: Vec<(&[usize], usize)> = by_user
        .values()
        .flat_map(|events| {
            (0..events.len())
                .step_by(CHUNK)
                .filter(|&from| events[from..(from + CHUNK).min(events.len())].iter().any(|&k| scored[k]))
                .map(move |from| (events.as_slice(), from))
        })
        .collect();
    work.sort_unstable_by_key(|&(events, from)| (events[0], from));
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, NonZeroUsize::get).min(work.len());
    let worker = || {
        let mut out = Vec::new();
        while let Some(&(events, from)) = work.get(next.fetch_add(1, Ordering::Relaxed)) {
            let user = stream[events[0]].user;
            let mut history = seen.histories.get(&user).cloned().unwrap_or_default();
            for &k in &events[..from] {
                history.apply(&stream[k]);
            }
            for &k in &events[from..(from + CHUNK).min(events.len())] {
                if scored[k] {
                    let (list, personal) = lister.list(user, &history, seen);
                    out.push(Shown { at: k, list, personal });
                }
                history.apply(&stream[k]);
            }
        }
        out
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
        workers.into_iter().flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rating(user: UserId, item: ItemId, value: f32, timestamp: i64) -> Rating {
        Rating { user, item, value, timestamp }
    }

    /// Eight ratings, refits after the third and the sixth: small enough to score by hand.
    fn hand_stream() -> Vec<Rating> {
        vec![
            rating(1, 10, 5.0, 1),
            rating(2, 10, 4.0, 2),
            rating(3, 20, 5.0, 3),
            // Refit 1 (ratings 0–2): likes 10 ×2, 20 ×1.
            rating(4, 10, 4.5, 4),
            rating(4, 30, 4.0, 5),
            rating(1, 10, 4.0, 6), // a liked re-rating: learned, not scored
            // Refit 2 (ratings 0–5): likes 10 ×3, then 20 and 30 with one each.
            rating(3, 30, 5.0, 7),
            rating(2, 20, 3.0, 8), // not a like: not scored
        ]
    }

    const HAND: StreamSettings = StreamSettings { refit_every: 3, windows: 2 };

    fn lists(replay: &Replay) -> Vec<(usize, Vec<ItemId>)> {
        replay.shown.iter().map(|s| (s.at, s.list.clone())).collect()
    }

    fn metric(v: &Value, key: &str) -> f64 {
        v[key].as_f64().unwrap_or_else(|| panic!("{key} missing in {v}"))
    }

    #[test]
    fn popularity_hits_and_misses_are_scored_per_window_as_by_hand() {
        let stream = hand_stream();
        let replay = replay(&stream, ModelName::Popularity, &HAND).unwrap();
        // Before the first refit: the most rated movies so far; then the most liked of the
        // last refit, without the user's movies.
        let expected: Vec<(usize, Vec<ItemId>)> = vec![
            (0, vec![]),       // nothing seen yet: miss
            (1, vec![10]),     // hit at rank 1
            (2, vec![10]),     // 20 is not in it: miss
            (3, vec![10, 20]), // hit at rank 1
            (4, vec![20]),     // 30 unknown to refit 1, 10 already rated: miss
            (6, vec![10, 30]), // 20 rated by user 3; 30 at rank 2: reciprocal rank 1/2
        ];
        assert_eq!(lists(&replay), expected);
        assert_eq!(replay.refits.len(), 2);
        let (overall, windows) = score(&stream, &replay.shown, HAND.windows);
        assert_eq!(overall["scored"], 6);
        assert!((metric(&overall, "hit_rate@10") - 3.0 / 6.0).abs() < 1e-12, "{overall}");
        assert!((metric(&overall, "mrr@10") - 2.5 / 6.0).abs() < 1e-12, "{overall}");
        assert_eq!(windows.len(), 2);
        assert_eq!((windows[0]["events"].as_u64(), windows[1]["events"].as_u64()), (Some(3), Some(3)));
        assert!((metric(&windows[0], "hit_rate@10") - 1.0 / 3.0).abs() < 1e-12);
        assert!((metric(&windows[0], "mrr@10") - 1.0 / 3.0).abs() < 1e-12);
        assert!((metric(&windows[1], "hit_rate@10") - 2.0 / 3.0).abs() < 1e-12);
        assert!((metric(&windows[1], "mrr@10") - 0.5).abs() < 1e-12);
        assert_eq!((windows[0]["from"].as_str(), windows[1]["to"].as_str()), (Some("1970-01-01"), Some("1970-01-01")));
    }

    #[test]
    fn a_cold_user_gets_the_most_rated_movies_before_the_first_refit_and_trending_after() {
        let stream = hand_stream();
        // The online model has no refit: a user without history gets the movies most rated so
        // far, as serving's engine answers before its first retrain.
        let online = replay(&stream, ModelName::OnlineServing, &HAND).unwrap();
        let cold: Vec<&Shown> = online.shown.iter().filter(|s| s.at <= 3).collect();
        let got: Vec<(usize, Vec<ItemId>, bool)> = cold.iter().map(|s| (s.at, s.list.clone(), s.personal)).collect();
        assert_eq!(got, [(0, vec![], false), (1, vec![10], false), (2, vec![10], false), (3, vec![10, 20], false)]);
        // After a refit a batch model's cold user gets the trending list (10's likes are
        // older than 20's, but there are two of them).
        let ease = replay(&stream, ModelName::Ease, &HAND).unwrap();
        let user_4 = ease.shown.iter().find(|s| s.at == 3).unwrap();
        assert_eq!((&user_4.list, user_4.personal), (&vec![10, 20], false));
        // Before any refit every batch model gives the same cold-start lists.
        for model in [ModelName::PureSvd, ModelName::EaseRerank, ModelName::Trending] {
            let r = replay(&stream, model, &HAND).unwrap();
            assert_eq!(lists(&r)[..3], lists(&ease)[..3], "{model}");
        }
    }

    #[test]
    fn a_re_rating_is_learned_but_never_scored() {
        let stream = hand_stream();
        assert_eq!(scored_events(&stream), [true, true, true, true, true, false, true, false]);
        for model in ModelName::defaults(Protocol::StreamTopN) {
            let r = replay(&stream, model, &HAND).unwrap();
            assert!(r.shown.iter().all(|s| s.at != 5 && s.at != 7), "{model}");
        }
        // The newer rating replaces the older one, as in the store and the live model.
        let mut history = History::default();
        assert!(history.apply(&stream[0]));
        assert!(!history.apply(&stream[5]));
        assert!(!history.apply(&rating(1, 10, 1.0, 0)), "an older rating changes nothing");
        assert_eq!(history.rated, [(10, 4.0, 6)]);
    }

    /// 1,500 ratings of 30 users on 60 movies over a few months, users liking movies of their
    /// parity, with repeated pairs (re-ratings) and ties in time.
    fn synthetic_stream() -> Vec<Rating> {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut t = 1_000_000_000i64;
        (0..1_500)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let (user, item) = ((x >> 33) as i64 % 30 + 1, (x >> 45) as i64 % 60 + 1);
                let liked = (user + item) % 2 == 0;
                let value = if liked { 4.0 + ((x >> 20) % 3) as f32 * 0.5 } else { 1.0 + ((x >> 20) % 5) as f32 * 0.5 };
                t += ((x >> 12) % 3) as i64 * 3_600;
                rating(user, item, value, t)
            })
            .collect()
    }

    #[test]
    fn lists_never_hold_a_movie_the_user_rated_before() {
        let stream = synthetic_stream();
        let settings = StreamSettings { refit_every: 400, windows: 4 };
        for model in ModelName::defaults(Protocol::StreamTopN) {
            let r = replay(&stream, model, &settings).unwrap();
            assert_eq!(r.shown.len(), scored_events(&stream).iter().filter(|&&s| s).count(), "{model}");
            assert_eq!(
                r.refits.len(),
                if matches!(model, ModelName::Online | ModelName::OnlineServing) { 0 } else { 3 }
            );
            let mut personal = 0;
            for s in &r.shown {
                let user = stream[s.at].user;
                let rated: HashSet<ItemId> = stream[..s.at].iter().filter(|r| r.user == user).map(|r| r.item).collect();
                assert!(
                    s.list.iter().all(|m| !rated.contains(m)),
                    "{model} at {}: {:?} has one of {rated:?}",
                    s.at,
                    s.list
                );
                let distinct: HashSet<ItemId> = s.list.iter().copied().collect();
                assert!(s.list.len() <= K && distinct.len() == s.list.len(), "{model} at {}: {:?}", s.at, s.list);
                personal += usize::from(s.personal);
            }
            let non_personal = matches!(model, ModelName::Popularity | ModelName::Trending);
            assert_eq!(personal == 0, non_personal, "{model}: {personal} personal lists");
        }
    }

    #[test]
    fn lists_computed_ahead_are_the_ones_serving_s_engine_gives() {
        let stream = synthetic_stream();
        let (Fit::Served(published), _) = fit(ModelName::Served, &stream).unwrap() else { unreachable!() };
        let engine =
            published.engine(OnlineModel::builder().build().unwrap(), Arc::new(ContentIndex::default())).unwrap();
        // A user who disliked the three trending movies: no like to rank from, so trending
        // without those three.
        let trending = engine.popularity().unwrap().trending(&Query::top(3));
        for (t, s) in trending.iter().enumerate() {
            engine.online().update(500, s.item, 1.0, 2_000_000_000 + t as i64).unwrap();
        }
        let lister = Lister::Live { engine: engine.clone(), retrain: None };
        assert!(lister.frozen());
        let seen = Seen::default();
        let mut personal = 0;
        for user in (1..=30).chain([500, 999]) {
            let mut history = History::default();
            for (item, value, timestamp) in engine.history(user) {
                history.apply(&rating(user, item, value, timestamp));
            }
            let expected = engine.recommend(user, &Query::top(K));
            let (list, is_personal) = lister.list(user, &history, &seen);
            assert_eq!(list, expected.items.iter().map(|s| s.item).collect::<Vec<_>>(), "user {user}");
            assert_eq!(is_personal, expected.source == Source::Personal, "user {user}");
            personal += usize::from(is_personal);
        }
        assert!(personal >= 25, "{personal} of 30 known users got personal lists");
    }

    #[test]
    fn trending_lists_use_serving_s_popularity_settings() {
        assert_eq!(&trending_popularity().unwrap(), Recompute::builder().build().unwrap().popularity());
    }

    #[test]
    fn windows_cut_the_scored_events_into_equal_runs() {
        let stream: Vec<Rating> = (0..7).map(|i| rating(i, 1, 5.0, i * 86_400)).collect();
        let shown: Vec<Shown> = (0..7).map(|at| Shown { at, list: vec![1], personal: false }).collect();
        let (_, windows) = score(&stream, &shown, 3);
        let sizes: Vec<u64> = windows.iter().map(|w| w["events"].as_u64().unwrap()).collect();
        assert_eq!(sizes, [2, 2, 3]);
        assert_eq!((windows[2]["from"].as_str(), windows[2]["to"].as_str()), (Some("1970-01-05"), Some("1970-01-07")));
        // More windows than events: one event each.
        assert_eq!(score(&stream, &shown[..2], 10).1.len(), 2);
        let (overall, none) = score(&stream, &[], 10);
        assert!(none.is_empty() && overall["hit_rate@10"].is_null(), "{overall}");
    }
}
