//! A short-lived response cache for catalogue reads.
//!
//! Catalogue answers change only when ratings or tags arrive, and hot pages (a popular
//! movie, a genre listing) are asked for thousands of times a second. Each answer is kept for
//! a TTL (default 1 s, 0 disables) keyed by its full URI, so the database sees one query per
//! URI per TTL however many clients ask. Writers in this process call [`ResponseCache::clear`]
//! so their own changes show at once; changes from other processes show within the TTL.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;
use prometheus::{IntCounter, IntCounterVec};
use schemas::recommend::UserRecommendations;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::background::Worker;

/// Largest body kept; bigger answers are served but not cached.
const MAX_BODY: usize = 4 << 20;

#[derive(Clone)]
struct Entry {
    at: Instant,
    content_type: Option<HeaderValue>,
    body: Bytes,
    /// Set while one request recomputes this stale entry; the others keep serving it.
    refreshing: Arc<AtomicBool>,
}

enum Lookup {
    Fresh(Entry),
    /// Stale, and another request is already recomputing it.
    Stale(Entry),
    /// Missing, or stale and this request has claimed the recomputation (the claim).
    Miss(Option<Claim>),
}

/// The right to recompute a stale entry; given back when dropped, whether the recomputation
/// succeeded, failed or was cancelled with its request, so another request can take it.
pub struct Claim(Arc<AtomicBool>);

impl Drop for Claim {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The right to recompute a list in the background: its entry's claim and the background
/// worker's slot, both given back when dropped. Pass it to [`ListCache::refresh`].
pub struct Background {
    _claim: Claim,
    _slot: OwnedSemaphorePermit,
}

/// Lists being recomputed in the background or waiting for it: while one is, other users'
/// due lists keep being answered from the cache (without their rated movies) and are refreshed
/// by a later request, so bursts (a load test's ratings, many lists turning due together)
/// queue nothing.
const BACKGROUND_SLOTS: usize = 1;

/// URI → recent 200 answer.
pub struct ResponseCache {
    ttl: Duration,
    max_entries: usize,
    entries: DashMap<String, Entry>,
    lookups: IntCounterVec,
}

impl ResponseCache {
    /// A cache keeping answers for `ttl` (zero disables it), at most `max_entries` of them.
    pub fn new(ttl: Duration, max_entries: usize, lookups: IntCounterVec) -> Arc<Self> {
        Arc::new(Self { ttl, max_entries, entries: DashMap::new(), lookups })
    }

    /// Forgets every answer, e.g. after this process wrote to the store.
    pub fn clear(&self) {
        self.entries.clear();
    }

    fn get(&self, key: &str) -> Lookup {
        let Some(entry) = self.entries.get(key).map(|e| e.clone()) else {
            return Lookup::Miss(None);
        };
        if entry.at.elapsed() < self.ttl {
            return Lookup::Fresh(entry);
        }
        // Stale: the first request to see it recomputes it; the others keep serving it while
        // that recomputation runs (its claim is given back if it fails or is cancelled), so
        // under load the database still sees one query per URI, not a herd of them.
        if entry.refreshing.swap(true, Ordering::AcqRel) {
            return Lookup::Stale(entry);
        }
        Lookup::Miss(Some(Claim(entry.refreshing)))
    }

    fn put(&self, key: String, entry: Entry) {
        if self.entries.len() >= self.max_entries {
            self.entries.retain(|_, e| e.at.elapsed() < self.ttl);
            if self.entries.len() >= self.max_entries {
                self.entries.clear();
            }
        }
        self.entries.insert(key, entry);
    }
}

/// Serves GETs from the cache when fresh; otherwise runs the handler and keeps a 200 answer.
pub async fn layer(State(cache): State<Arc<ResponseCache>>, req: Request, next: Next) -> Response {
    if cache.ttl.is_zero() || req.method() != Method::GET {
        return next.run(req).await;
    }
    let key = req.uri().to_string();
    let (hit, _claim) = match cache.get(&key) {
        Lookup::Fresh(entry) => (Some(("hit", entry)), None),
        Lookup::Stale(entry) => (Some(("stale", entry)), None),
        Lookup::Miss(claim) => (None, claim),
    };
    if let Some((result, hit)) = hit {
        cache.lookups.with_label_values(&[result]).inc();
        let mut response = Body::from(hit.body).into_response();
        if let Some(ct) = hit.content_type {
            response.headers_mut().insert(header::CONTENT_TYPE, ct);
        }
        return response;
    }
    cache.lookups.with_label_values(&["miss"]).inc();
    let response = next.run(req).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    if body.size_hint().upper().is_none_or(|n| n > MAX_BODY as u64) {
        return Response::from_parts(parts, body);
    }
    match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => {
            let content_type = parts.headers.get(header::CONTENT_TYPE).cloned();
            cache.put(key, Entry { at: Instant::now(), content_type, body: bytes.clone(), refreshing: Arc::default() });
            Response::from_parts(parts, Body::from(bytes))
        }
        Err(error) => {
            crate::error::ApiError::Internal(format!("buffering an answer for the cache: {error}")).into_response()
        }
    }
}

/// What a cached list was computed from; a list is reused only for the same stamp (but see
/// [`ListLookup::RatedSince`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListStamp {
    /// The model version (each retrain's swap bumps it).
    pub version: u64,
    /// The catalogue generation (the titles in the answer, the movies it may hold).
    pub catalogue: u64,
    /// The user's own updates so far (`OnlineModel::user_steps`): their new rating changes it.
    pub steps: u64,
}

/// Recent recommendation lists, keyed by URI.
///
/// - A list from the retrain's models (the top-N model, the popularity list) depends on the
///   model version, the catalogue and the user's own history alone, so it is kept until one of
///   those changes. A list from the live factors (before the first retrain) also moves with
///   other users' ratings: it is reused for at most the TTL.
/// - A user's own new rating makes their next request recompute the list at once (someone who
///   rates a movie, then looks, sees it re-ranked), except in a burst: while their list was
///   recomputed for an own rating less than `refresh` ago, the kept list is answered without
///   the movies rated since ([`ListLookup::RatedSince`]); and when more than one rating
///   arrived since the list, that answer is given at once and the list is recomputed in the
///   background ([`ListLookup::Refresh`]). A client posting ratings for one user many times a
///   second so costs one list computation per `refresh`, off the request path, instead of one
///   per rating on it (about 1–2 ms of CPU each with the top-N model). Zero `refresh` ends a
///   burst as soon as its list is recomputed.
///
/// While one request recomputes a list, concurrent requests for it get the previous one (left
/// out the movies rated since): with many connections asking for the same user, a stampede of
/// identical recomputations would otherwise cost more CPU the more clients wait. Zero TTL
/// disables the cache.
pub struct ListCache {
    ttl: Duration,
    refresh: Duration,
    max_entries: usize,
    entries: DashMap<String, ListEntry>,
    background: Arc<Semaphore>,
    /// Where background refreshes run: a thread at low priority (see [`Worker`]).
    worker: Worker,
    /// The `hit`, `stale`, `rated_since` and `miss` children, resolved once: this sits on the
    /// hottest path.
    hits: IntCounter,
    stale: IntCounter,
    rated_since: IntCounter,
    misses: IntCounter,
}

#[derive(Clone)]
struct ListEntry {
    at: Instant,
    stamp: ListStamp,
    /// Follows the live factors: reused for at most the TTL.
    live: bool,
    /// Computed because the user's own rating had outdated the entry before it.
    after_own_rating: bool,
    body: Bytes,
    answer: Arc<UserRecommendations>,
    refreshing: Arc<AtomicBool>,
}

/// What [`ListCache::get`] found.
pub enum ListLookup {
    /// The list to answer with, as it was kept (its body and its answer).
    Hit(Bytes, Arc<UserRecommendations>),
    /// The list from before the user's latest rating(s) (its body and its answer): answer it
    /// without the movies the user has rated since, which must never be shown.
    RatedSince(Bytes, Arc<UserRecommendations>),
    /// As `RatedSince`, and recompute the list in the background, holding this until
    /// [`ListCache::put`].
    Refresh(Bytes, Arc<UserRecommendations>, Background),
    /// None usable: compute it, holding the claim (if any) until [`ListCache::put`].
    Miss(Option<Claim>),
}

impl ListCache {
    /// A cache keeping lists (live ones for `ttl`), recomputing a user's list for their own
    /// ratings at most once per `refresh` after the first, holding at most `max_entries`,
    /// counting into `lookups`.
    pub fn new(ttl: Duration, refresh: Duration, max_entries: usize, lookups: IntCounterVec) -> Arc<Self> {
        let [hits, stale, rated_since, misses] =
            ["hit", "stale", "rated_since", "miss"].map(|r| lookups.with_label_values(&[r]));
        let background = Arc::new(Semaphore::new(BACKGROUND_SLOTS));
        let entries = DashMap::new();
        let worker = Worker::start("list-refresh");
        Arc::new(Self { ttl, refresh, max_entries, entries, background, worker, hits, stale, rated_since, misses })
    }

    /// What to answer for `uri` given what the list would be computed from now (`stamp`).
    pub fn get(&self, uri: &str, stamp: ListStamp) -> ListLookup {
        if self.ttl.is_zero() {
            return ListLookup::Miss(None);
        }
        let found = self
            .entries
            .get(uri)
            .filter(|e| (e.stamp.version, e.stamp.catalogue) == (stamp.version, stamp.catalogue))
            .map(|e| e.clone());
        let Some(entry) = found else {
            self.misses.inc();
            return ListLookup::Miss(None);
        };
        if entry.stamp.steps == stamp.steps {
            if !entry.live || entry.at.elapsed() < self.ttl {
                self.hits.inc();
                return ListLookup::Hit(entry.body, entry.answer);
            }
            if entry.refreshing.swap(true, Ordering::AcqRel) {
                self.stale.inc();
                return ListLookup::Hit(entry.body, entry.answer);
            }
            self.misses.inc();
            return ListLookup::Miss(Some(Claim(entry.refreshing)));
        }
        // The user rated since. Recompute unless the list was itself recomputed for an own
        // rating less than `refresh` ago, or another request is recomputing it now: at once
        // after a single rating, in the background after several (a burst) if a background
        // slot is free.
        let due = !entry.after_own_rating || entry.at.elapsed() >= self.refresh;
        if due && stamp.steps.wrapping_sub(entry.stamp.steps) == 1 {
            if !entry.refreshing.swap(true, Ordering::AcqRel) {
                self.misses.inc();
                return ListLookup::Miss(Some(Claim(entry.refreshing)));
            }
        } else if due
            && let Ok(slot) = self.background.clone().try_acquire_owned()
            && !entry.refreshing.swap(true, Ordering::AcqRel)
        {
            self.misses.inc();
            let background = Background { _claim: Claim(entry.refreshing), _slot: slot };
            return ListLookup::Refresh(entry.body, entry.answer, background);
        }
        self.rated_since.inc();
        ListLookup::RatedSince(entry.body, entry.answer)
    }

    /// Runs `job` (which recomputes the list and [`Self::put`]s it) on the background worker,
    /// then gives `background` back.
    pub fn refresh(&self, background: Background, job: impl FnOnce() + Send + 'static) {
        self.worker.run(move || {
            job();
            drop(background);
        });
    }

    /// Keeps `answer` (encoded as `body`) for `uri`, computed from `stamp`; `live` if it
    /// follows the live factors (see [`model::Engine::follows_live_factors`]).
    pub fn put(&self, uri: String, stamp: ListStamp, live: bool, answer: Arc<UserRecommendations>, body: Bytes) {
        if self.ttl.is_zero() {
            return;
        }
        let after_own_rating = self.entries.get(&uri).is_some_and(|e| {
            (e.stamp.version, e.stamp.catalogue) == (stamp.version, stamp.catalogue) && e.stamp.steps != stamp.steps
        });
        if self.entries.len() >= self.max_entries {
            self.entries.clear();
        }
        let refreshing = Arc::default();
        let entry = ListEntry { at: Instant::now(), stamp, live, after_own_rating, body, answer, refreshing };
        self.entries.insert(uri, entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookups() -> IntCounterVec {
        IntCounterVec::new(prometheus::Opts::new("lookups", "test"), &["result"]).unwrap()
    }

    #[test]
    fn one_request_recomputes_a_stale_entry_and_gives_the_claim_back_if_it_fails() {
        let cache = ResponseCache::new(Duration::from_millis(1), 10, lookups());
        let old = Instant::now().checked_sub(Duration::from_secs(60)).unwrap();
        let entry = Entry { at: old, content_type: None, body: Bytes::from_static(b"{}"), refreshing: Arc::default() };
        cache.put("/movies/1".into(), entry);
        let Lookup::Miss(Some(claim)) = cache.get("/movies/1") else { panic!("the first request recomputes") };
        // Long past twice the TTL, the others still get the stale answer while it runs.
        assert!(matches!(cache.get("/movies/1"), Lookup::Stale(_)));
        assert!(matches!(cache.get("/movies/1"), Lookup::Stale(_)));
        drop(claim); // the recomputation failed or its request was cancelled
        assert!(matches!(cache.get("/movies/1"), Lookup::Miss(Some(_))), "the next request takes it over");
        assert!(matches!(cache.get("/nothing"), Lookup::Miss(None)));
    }

    fn answer(items: &[i64]) -> Arc<UserRecommendations> {
        let items = items
            .iter()
            .map(|&movie_id| schemas::recommend::RecommendedMovie {
                movie_id,
                title: format!("movie {movie_id}"),
                genres: String::new(),
                score: 1.0,
                because: None,
            })
            .collect();
        Arc::new(UserRecommendations {
            user_id: 1,
            strategy: schemas::recommend::Strategy::Personal,
            model_version: 3,
            items,
            experiment: None,
            variant: None,
        })
    }

    fn stamp(version: u64, steps: u64) -> ListStamp {
        ListStamp { version, catalogue: 0, steps }
    }

    fn keep(cache: &ListCache, uri: &str, stamp: ListStamp, live: bool, body: &'static str) {
        cache.put(uri.into(), stamp, live, answer(&[1, 2]), Bytes::from_static(body.as_bytes()));
    }

    #[test]
    fn one_request_recomputes_an_expired_live_list_and_a_new_model_or_catalogue_always_misses() {
        let cache = ListCache::new(Duration::from_millis(20), Duration::ZERO, 10, lookups());
        let uri = "/users/1/recommendations";
        keep(&cache, uri, stamp(3, 7), true, "old");
        assert!(matches!(cache.get(uri, stamp(3, 7)), ListLookup::Hit(b, _) if b == "old"));
        std::thread::sleep(Duration::from_millis(30));
        let ListLookup::Miss(Some(claim)) = cache.get(uri, stamp(3, 7)) else { panic!("the first request recomputes") };
        // While it does, the others get the previous list.
        assert!(matches!(cache.get(uri, stamp(3, 7)), ListLookup::Hit(b, _) if b == "old"));
        // A new model or catalogue is never answered from the old list.
        assert!(matches!(cache.get(uri, stamp(4, 7)), ListLookup::Miss(None)));
        assert!(matches!(cache.get(uri, ListStamp { catalogue: 1, ..stamp(3, 7) }), ListLookup::Miss(None)));
        drop(claim); // failed or cancelled: the next request takes it over
        assert!(matches!(cache.get(uri, stamp(3, 7)), ListLookup::Miss(Some(_))));
        keep(&cache, uri, stamp(3, 7), true, "new");
        assert!(matches!(cache.get(uri, stamp(3, 7)), ListLookup::Hit(b, _) if b == "new"));
    }

    #[test]
    fn a_list_of_the_retrains_models_outlives_the_ttl() {
        let cache = ListCache::new(Duration::from_millis(1), Duration::ZERO, 10, lookups());
        keep(&cache, "/u", stamp(3, 7), false, "kept");
        std::thread::sleep(Duration::from_millis(10));
        assert!(matches!(cache.get("/u", stamp(3, 7)), ListLookup::Hit(b, _) if b == "kept"));
        assert!(matches!(cache.get("/u", stamp(4, 7)), ListLookup::Miss(None)));
    }

    #[test]
    fn an_own_rating_recomputes_at_once_and_then_at_most_once_per_refresh() {
        let cache = ListCache::new(Duration::from_secs(60), Duration::from_millis(50), 10, lookups());
        let uri = "/users/1/recommendations";
        keep(&cache, uri, stamp(3, 7), false, "before");
        // The first own rating: recomputed at once; concurrent requests get the old list.
        let ListLookup::Miss(Some(claim)) = cache.get(uri, stamp(3, 8)) else { panic!("recomputed at once") };
        assert!(
            matches!(cache.get(uri, stamp(3, 8)), ListLookup::RatedSince(b, a) if b == "before" && a.items.len() == 2)
        );
        keep(&cache, uri, stamp(3, 8), false, "after one");
        drop(claim);
        assert!(matches!(cache.get(uri, stamp(3, 8)), ListLookup::Hit(b, _) if b == "after one"));
        // More ratings within `refresh` of that: the kept list, until `refresh` has passed.
        assert!(matches!(cache.get(uri, stamp(3, 9)), ListLookup::RatedSince(b, _) if b == "after one"));
        assert!(matches!(cache.get(uri, stamp(3, 10)), ListLookup::RatedSince(..)));
        std::thread::sleep(Duration::from_millis(60));
        // Past `refresh`, two ratings since the list: answered from it, recomputed behind.
        let ListLookup::Refresh(b, _, claim) = cache.get(uri, stamp(3, 10)) else { panic!("a background refresh") };
        assert_eq!(b, "after one");
        assert!(matches!(cache.get(uri, stamp(3, 10)), ListLookup::RatedSince(..)), "one refresh at a time");
        keep(&cache, "/users/2/recommendations", stamp(3, 1), false, "2");
        keep(&cache, "/users/2/recommendations", stamp(3, 2), false, "2 after one");
        std::thread::sleep(Duration::from_millis(60));
        assert!(
            matches!(cache.get("/users/2/recommendations", stamp(3, 5)), ListLookup::RatedSince(..)),
            "the one background slot is taken: user 2's list waits for a later request"
        );
        keep(&cache, uri, stamp(3, 10), false, "after three");
        drop(claim);
        assert!(matches!(cache.get(uri, stamp(3, 10)), ListLookup::Hit(b, _) if b == "after three"));
        std::thread::sleep(Duration::from_millis(60));
        // A single rating after a quiet spell: at once again.
        assert!(matches!(cache.get(uri, stamp(3, 11)), ListLookup::Miss(Some(_))));

        // Zero `refresh`: every own rating recomputes.
        let cache = ListCache::new(Duration::from_secs(60), Duration::ZERO, 10, lookups());
        keep(&cache, uri, stamp(3, 7), false, "a");
        keep(&cache, uri, stamp(3, 8), false, "b");
        assert!(matches!(cache.get(uri, stamp(3, 9)), ListLookup::Miss(Some(_))));
    }
}
