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

/// Recent recommendation lists, keyed by URI. A list is reused for up to the TTL only while
/// the model version and the user's own row are unchanged: a user's new rating shows in their
/// next list at once; other users' ratings (which move the movies' factors a little) within
/// about the TTL. Zero TTL disables it.
///
/// Past the TTL the first request recomputes the list while the others keep getting the
/// previous one, as [`ResponseCache`] does: with many connections asking for the same user, a
/// stampede of identical recomputations at each expiry would otherwise cost more CPU the more
/// clients wait.
pub struct ListCache {
    ttl: Duration,
    max_entries: usize,
    entries: DashMap<String, ListEntry>,
    /// The `hit`, `stale` and `miss` children, resolved once: this sits on the hottest path.
    hits: IntCounter,
    stale: IntCounter,
    misses: IntCounter,
}

#[derive(Clone)]
struct ListEntry {
    at: Instant,
    version: u64,
    steps: u64,
    body: Bytes,
    refreshing: Arc<AtomicBool>,
}

/// What [`ListCache::get`] found.
pub enum ListLookup {
    /// A list to answer with.
    Hit(Bytes),
    /// None usable: compute it, holding the claim (if any) until [`ListCache::put`].
    Miss(Option<Claim>),
}

impl ListCache {
    /// A cache keeping lists for `ttl`, at most `max_entries` of them, counting into `lookups`.
    pub fn new(ttl: Duration, max_entries: usize, lookups: IntCounterVec) -> Arc<Self> {
        let [hits, stale, misses] = ["hit", "stale", "miss"].map(|r| lookups.with_label_values(&[r]));
        Arc::new(Self { ttl, max_entries, entries: DashMap::new(), hits, stale, misses })
    }

    /// The cached body for `uri` if it was computed by the same model `version` for the same
    /// user row `steps`, and is younger than the TTL or being recomputed by another request.
    pub fn get(&self, uri: &str, version: u64, steps: u64) -> ListLookup {
        if self.ttl.is_zero() {
            return ListLookup::Miss(None);
        }
        let found = self.entries.get(uri).filter(|e| e.version == version && e.steps == steps).map(|e| e.clone());
        let Some(entry) = found else {
            self.misses.inc();
            return ListLookup::Miss(None);
        };
        if entry.at.elapsed() < self.ttl {
            self.hits.inc();
            return ListLookup::Hit(entry.body);
        }
        if entry.refreshing.swap(true, Ordering::AcqRel) {
            self.stale.inc();
            return ListLookup::Hit(entry.body);
        }
        self.misses.inc();
        ListLookup::Miss(Some(Claim(entry.refreshing)))
    }

    /// Keeps `body` for `uri`.
    pub fn put(&self, uri: String, version: u64, steps: u64, body: Bytes) {
        if self.ttl.is_zero() {
            return;
        }
        if self.entries.len() >= self.max_entries {
            self.entries.clear();
        }
        let entry = ListEntry { at: Instant::now(), version, steps, body, refreshing: Arc::default() };
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

    #[test]
    fn one_request_recomputes_an_expired_list_and_a_changed_user_always_misses() {
        let cache = ListCache::new(Duration::from_millis(20), 10, lookups());
        let uri = "/users/1/recommendations";
        cache.put(uri.into(), 3, 7, Bytes::from_static(b"old"));
        assert!(matches!(cache.get(uri, 3, 7), ListLookup::Hit(b) if b == "old"));
        std::thread::sleep(Duration::from_millis(30));
        let ListLookup::Miss(Some(claim)) = cache.get(uri, 3, 7) else { panic!("the first request recomputes") };
        // While it does, the others get the previous list.
        assert!(matches!(cache.get(uri, 3, 7), ListLookup::Hit(b) if b == "old"));
        // A new rating by the user, or a new model, is never answered from the old list.
        assert!(matches!(cache.get(uri, 3, 8), ListLookup::Miss(None)));
        assert!(matches!(cache.get(uri, 4, 7), ListLookup::Miss(None)));
        drop(claim); // failed or cancelled: the next request takes it over
        assert!(matches!(cache.get(uri, 3, 7), ListLookup::Miss(Some(_))));
        cache.put(uri.into(), 3, 7, Bytes::from_static(b"new"));
        assert!(matches!(cache.get(uri, 3, 7), ListLookup::Hit(b) if b == "new"));
    }
}
