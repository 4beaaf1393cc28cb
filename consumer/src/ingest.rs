//! One batch of raw event payloads → decoded, validated, persisted. No Kafka types here.

use std::collections::HashSet;

use movielens::{RatingRow, TagRow};
use schemas::events::{BadList, Event, EventError, ListShown, RatingSubmitted, TagAdded, decode_at, decode_lists_at};
use store::{Store, StoreError};

/// Which event a payload should hold (from the topic it came from).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A [`RatingSubmitted`].
    Rating,
    /// A [`TagAdded`].
    Tag,
    /// A batch of [`ListShown`]s (impressions; see [`schemas::events::ListsShownWriter`]).
    Impression,
}

/// One message of a batch: its kind and its payload (empty for a message without one).
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// What it should decode as.
    pub kind: Kind,
    /// The raw bytes.
    pub payload: &'a [u8],
}

/// What [`handle`] did with a batch.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Rating events written.
    pub ratings: usize,
    /// Tag events written.
    pub tags: usize,
    /// Impressions written (an impression already stored counts too: it is safe).
    pub impressions: usize,
    /// The poison messages, by index in the batch, with the reason.
    pub rejected: Vec<(usize, EventError)>,
    /// The bad lists of otherwise valid impression batches, by index of their message: each
    /// is dead-lettered alone, the batch's other lists are persisted.
    pub rejected_lists: Vec<(usize, BadList)>,
    /// The ratings written, in batch order (for followers such as an online model).
    pub persisted_ratings: Vec<RatingSubmitted>,
}

/// The catalogue's movie ids, cached: reloaded when an event names a movie not in the cache
/// (it may have been added since) and after a failed write.
#[derive(Debug)]
pub struct Catalogue {
    known: HashSet<i64>,
    stale: bool,
}

impl Catalogue {
    /// An empty cache, loaded on first use.
    pub fn new() -> Self {
        Self { known: HashSet::new(), stale: true }
    }

    async fn refresh(&mut self, store: &Store) -> Result<(), StoreError> {
        self.known = store.movie_ids().await?;
        self.stale = false;
        Ok(())
    }

    /// Splits events into those whose movie is known and [`EventError::UnknownMovie`]s.
    async fn check<'e, E: Event>(
        &mut self,
        store: &Store,
        events: &'e [(usize, E)],
        rejected: &mut Vec<(usize, EventError)>,
    ) -> Result<Vec<&'e (usize, E)>, StoreError> {
        if self.stale || events.iter().any(|(_, e)| !self.known.contains(&e.movie_id())) {
            self.refresh(store).await?;
        }
        let mut known = Vec::with_capacity(events.len());
        for event in events {
            if self.known.contains(&event.1.movie_id()) {
                known.push(event);
            } else {
                rejected.push((event.0, EventError::UnknownMovie { movie_id: event.1.movie_id() }));
            }
        }
        Ok(known)
    }
}

impl Default for Catalogue {
    fn default() -> Self {
        Self::new()
    }
}

/// A decoded batch: the valid events and the undecodable or invalid ones, by index in the
/// batch. Decoding is the CPU-heavy half of [`handle`]; [`persist`] is the database half.
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    ratings: Vec<(usize, RatingSubmitted)>,
    tags: Vec<(usize, TagAdded)>,
    impressions: Vec<(usize, ListShown)>,
    rejected: Vec<(usize, EventError)>,
    rejected_lists: Vec<(usize, BadList)>,
}

/// Decodes and validates every message of a batch (no I/O). `now` (Unix seconds) bounds
/// timestamps.
pub fn decode(batch: &[Incoming<'_>], now: i64) -> Decoded {
    let mut decoded = Decoded { ratings: Vec::with_capacity(batch.len()), ..Decoded::default() };
    for (i, message) in batch.iter().enumerate() {
        match message.kind {
            Kind::Rating => match decode_at::<RatingSubmitted>(message.payload, now) {
                Ok(e) => decoded.ratings.push((i, e)),
                Err(e) => decoded.rejected.push((i, e)),
            },
            Kind::Tag => match decode_at::<TagAdded>(message.payload, now) {
                Ok(e) => decoded.tags.push((i, e)),
                Err(e) => decoded.rejected.push((i, e)),
            },
            Kind::Impression => match decode_lists_at(message.payload, now) {
                Ok(lists) => {
                    for list in lists {
                        match list {
                            Ok(e) => decoded.impressions.push((i, e)),
                            Err(bad) => decoded.rejected_lists.push((i, bad)),
                        }
                    }
                }
                Err(e) => decoded.rejected.push((i, e)),
            },
        }
    }
    decoded
}

/// Rejects the decoded events whose movie is not in the catalogue and upserts the others (a
/// re-rating replaces the older one: newer timestamp wins). Impressions are stored as they
/// are (serving showed movies of its catalogue), once per event id.
///
/// Idempotent: persisting the same batch again leaves the store as it is, so it can be retried
/// after any error.
///
/// # Errors
/// A database error: nothing is known to be persisted then, and the batch must be retried.
pub async fn persist(store: &Store, catalogue: &mut Catalogue, decoded: &Decoded) -> Result<Outcome, StoreError> {
    let mut rejected = decoded.rejected.clone();
    let ratings = catalogue.check(store, &decoded.ratings, &mut rejected).await?;
    let tags = catalogue.check(store, &decoded.tags, &mut rejected).await?;

    let rating_rows: Vec<RatingRow> = ratings
        .iter()
        .map(|(_, e)| RatingRow {
            user_id: e.user_id,
            movie_id: e.movie_id,
            rating: e.rating as f32,
            timestamp: e.timestamp,
        })
        .collect();
    let tag_rows: Vec<TagRow> = tags
        .iter()
        .map(|(_, e)| TagRow { user_id: e.user_id, movie_id: e.movie_id, tag: e.tag.clone(), timestamp: e.timestamp })
        .collect();
    let impressions: Vec<ListShown> = decoded.impressions.iter().map(|(_, e)| e.clone()).collect();
    let written = async {
        store.upsert_ratings(&rating_rows).await?;
        store.upsert_tags(&tag_rows).await?;
        store.insert_impressions(&impressions).await
    };
    if let Err(e) = written.await {
        // The catalogue may have changed under us (a foreign-key failure): look again next time.
        catalogue.stale = true;
        return Err(e);
    }
    rejected.sort_by_key(|(i, _)| *i);
    Ok(Outcome {
        ratings: ratings.len(),
        tags: tags.len(),
        impressions: impressions.len(),
        rejected,
        rejected_lists: decoded.rejected_lists.clone(),
        persisted_ratings: ratings.into_iter().map(|(_, e)| *e).collect(),
    })
}

/// [`decode`] then [`persist`]: one batch of raw payloads in, rows in the store and the poison
/// (undecodable, invalid, unknown movie, oversized) out, by index.
///
/// # Errors
/// A database error: nothing is known to be persisted then, and the batch must be retried.
pub async fn handle(
    store: &Store,
    catalogue: &mut Catalogue,
    batch: &[Incoming<'_>],
    now: i64,
) -> Result<Outcome, StoreError> {
    persist(store, catalogue, &decode(batch, now)).await
}

#[cfg(test)]
mod tests {
    use movielens::MovieRow;
    use schemas::events::{EventId, encode_at};
    use store::{Page, RatingQuery, TagQuery};

    use super::*;

    const NOW: i64 = 1_700_000_000;

    async fn store_with_movies(ids: &[i64]) -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::connect(&url).await.unwrap();
        let movies: Vec<MovieRow> =
            ids.iter().map(|&id| MovieRow { movie_id: id, title: format!("Movie {id}"), genres: vec![] }).collect();
        store.upsert_movies(&movies).await.unwrap();
        (store, dir)
    }

    fn rating(user: i64, movie: i64, rating: f64, ts: i64) -> Vec<u8> {
        encode_at(&RatingSubmitted::new(user, movie, rating, ts), NOW).unwrap()
    }

    fn rating_msg(payload: &[u8]) -> Incoming<'_> {
        Incoming { kind: Kind::Rating, payload }
    }

    async fn all_ratings(store: &Store) -> Vec<(i64, i64, f64, i64)> {
        let page = Page { skip: 0, limit: i64::MAX };
        let rows = store.ratings(&RatingQuery::default(), page).await.unwrap();
        rows.into_iter().map(|r| (r.user_id, r.movie_id, r.rating, r.timestamp)).collect()
    }

    #[tokio::test]
    async fn valid_ratings_are_persisted() {
        let (store, _dir) = store_with_movies(&[1, 2]).await;
        let a = rating(1, 1, 4.0, 1_000_000_000);
        let b = rating(2, 2, 0.5, 1_000_000_001);
        let outcome = handle(&store, &mut Catalogue::new(), &[rating_msg(&a), rating_msg(&b)], NOW).await.unwrap();
        assert_eq!(outcome.ratings, 2);
        assert!(outcome.rejected.is_empty());
        assert_eq!(all_ratings(&store).await, vec![(1, 1, 4.0, 1_000_000_000), (2, 2, 0.5, 1_000_000_001)]);
    }

    #[tokio::test]
    async fn poison_is_rejected_with_its_index_and_the_rest_persisted() {
        let (store, _dir) = store_with_movies(&[1]).await;
        let good = rating(1, 1, 3.0, 1_000_000_000);
        let unknown = rating(1, 999, 3.0, 1_000_000_000);
        let mut off_scale = RatingSubmitted::new(1, 1, 3.0, 1_000_000_000);
        off_scale.rating = 7.0;
        let off_scale = serde_json::to_vec(&off_scale).unwrap();
        let big = vec![b'{'; 5000];
        let batch = [
            rating_msg(b"not json"),
            rating_msg(&good),
            rating_msg(&unknown),
            rating_msg(&off_scale),
            rating_msg(br#"{"schemaVersion":1,"userId":"one"}"#),
            rating_msg(&big),
            rating_msg(b""),
        ];
        let outcome = handle(&store, &mut Catalogue::new(), &batch, NOW).await.unwrap();
        let kinds: Vec<(usize, &str)> = outcome.rejected.iter().map(|(i, e)| (*i, e.kind())).collect();
        assert_eq!(
            kinds,
            vec![
                (0, "malformed"),
                (2, "unknown-movie"),
                (3, "invalid"),
                (4, "malformed"),
                (5, "too-large"),
                (6, "malformed")
            ]
        );
        assert_eq!(outcome.ratings, 1);
        assert_eq!(all_ratings(&store).await, vec![(1, 1, 3.0, 1_000_000_000)]);
    }

    #[tokio::test]
    async fn a_newer_rating_wins_and_a_replayed_older_one_changes_nothing() {
        let (store, _dir) = store_with_movies(&[1]).await;
        let old = rating(1, 1, 2.0, 1_000_000_000);
        let new = rating(1, 1, 5.0, 1_000_000_100);
        let mut catalogue = Catalogue::new();
        handle(&store, &mut catalogue, &[rating_msg(&old), rating_msg(&new)], NOW).await.unwrap();
        handle(&store, &mut catalogue, &[rating_msg(&old)], NOW).await.unwrap();
        handle(&store, &mut catalogue, &[rating_msg(&new), rating_msg(&old)], NOW).await.unwrap();
        assert_eq!(all_ratings(&store).await, vec![(1, 1, 5.0, 1_000_000_100)]);
    }

    #[tokio::test]
    async fn a_movie_added_after_the_cache_was_filled_is_found() {
        let (store, _dir) = store_with_movies(&[1]).await;
        let mut catalogue = Catalogue::new();
        let first = rating(1, 1, 3.0, 1_000_000_000);
        handle(&store, &mut catalogue, &[rating_msg(&first)], NOW).await.unwrap();
        store.upsert_movies(&[MovieRow { movie_id: 2, title: "New".into(), genres: vec![] }]).await.unwrap();
        let second = rating(1, 2, 3.0, 1_000_000_000);
        let outcome = handle(&store, &mut catalogue, &[rating_msg(&second)], NOW).await.unwrap();
        assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
    }

    #[tokio::test]
    async fn tags_are_persisted_and_a_rating_on_the_tag_topic_is_poison() {
        let (store, _dir) = store_with_movies(&[1]).await;
        let tag = encode_at(&TagAdded::new(3, 1, "funny", 1_000_000_000), NOW).unwrap();
        let wrong = rating(3, 1, 4.0, 1_000_000_000);
        let batch = [Incoming { kind: Kind::Tag, payload: &tag }, Incoming { kind: Kind::Tag, payload: &wrong }];
        let outcome = handle(&store, &mut Catalogue::new(), &batch, NOW).await.unwrap();
        assert_eq!(outcome.tags, 1);
        assert_eq!(outcome.rejected.len(), 1);
        assert_eq!(outcome.rejected[0].0, 1);
        let page = Page { skip: 0, limit: 10 };
        let tags = store.tags(&TagQuery::default(), page).await.unwrap();
        assert_eq!(tags.len(), 1);
        assert_eq!(tags[0].tag, "funny");
    }

    #[tokio::test]
    async fn an_impression_batch_persists_its_good_lists_and_rejects_its_bad_ones_alone() {
        use schemas::events::{ListsShownWriter, SCHEMA_VERSION};
        let (store, _dir) = store_with_movies(&[1]).await;
        let list = |id: u128| ListShown {
            schema_version: SCHEMA_VERSION,
            event_id: EventId::from_u128(id),
            user_id: 5,
            movie_ids: vec![1, 2],
            strategy: "personal".into(),
            model_version: 1,
            experiment: None,
            variant: None,
            stream_time: 1_000_000_000,
            timestamp: NOW,
        };
        let mut writer = ListsShownWriter::new();
        writer.push(&list(1), NOW).unwrap();
        writer.push(&list(2), NOW).unwrap();
        let batch = writer.take();
        let good = String::from_utf8(encode_at(&list(3), NOW).unwrap()).unwrap();
        let mixed = format!(r#"{{"schemaVersion":1,"lists":[{good},{{"strategy":1}}]}}"#);
        let messages = [
            Incoming { kind: Kind::Impression, payload: &batch },
            Incoming { kind: Kind::Impression, payload: b"{}" },
            Incoming { kind: Kind::Impression, payload: mixed.as_bytes() },
        ];
        let mut catalogue = Catalogue::new();
        let outcome = handle(&store, &mut catalogue, &messages, NOW).await.unwrap();
        assert_eq!(outcome.impressions, 3);
        let whole: Vec<(usize, &str)> = outcome.rejected.iter().map(|(i, e)| (*i, e.kind())).collect();
        assert_eq!(whole, vec![(1, "malformed")]);
        let lists: Vec<(usize, usize, &[u8])> =
            outcome.rejected_lists.iter().map(|(i, bad)| (*i, bad.index, &bad.payload[..])).collect();
        assert_eq!(lists, vec![(2, 1, &br#"{"strategy":1}"#[..])]);
        let mut stored = store.impression_ids().await.unwrap();
        stored.sort_unstable();
        let expected: Vec<String> = (1..=3).map(|i| EventId::from_u128(i).to_string()).collect();
        assert_eq!(stored, expected);
        // Delivered again, nothing is stored twice.
        handle(&store, &mut catalogue, &messages, NOW).await.unwrap();
        assert_eq!(store.impression_ids().await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_closed_database_is_an_error_not_a_rejection() {
        let (store, _dir) = store_with_movies(&[1]).await;
        store.close().await;
        let good = rating(1, 1, 3.0, 1_000_000_000);
        assert!(handle(&store, &mut Catalogue::new(), &[rating_msg(&good)], NOW).await.is_err());
    }

    #[test]
    fn event_ids_survive_decoding() {
        let id = EventId::random();
        let mut e = RatingSubmitted::new(1, 1, 1.0, 1_000_000_000);
        e.event_id = id;
        let decoded: RatingSubmitted = decode_at(&encode_at(&e, NOW).unwrap(), NOW).unwrap();
        assert_eq!(decoded.event_id, id);
    }
}
