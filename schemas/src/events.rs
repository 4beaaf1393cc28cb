//! The events that travel on Kafka, and the one function that decodes and validates them.
//!
//! Every event is a JSON object with camelCase fields, a `schemaVersion` and an `eventId`:
//!
//! ```json
//! {"schemaVersion":1,"eventId":"5f0c2a9e8b7d4c3f9a1e2d3c4b5a6978","userId":1,"movieId":31,"rating":2.5,"timestamp":1260759144}
//! ```
//!
//! - [`RatingSubmitted`] goes to the ratings topic, [`TagAdded`] to the tags topic; both are keyed
//!   by `userId` so one user's events stay in order.
//! - [`ListShown`]s (impressions) travel in batches on the impressions topic, written by
//!   [`ListsShownWriter`] and read by [`decode_lists_at`], which checks each list alone.
//! - [`decode`] is the only way in: it bounds the size, parses, checks the version and the value
//!   ranges. Producers call [`encode`], which runs the same checks, so nothing invalid is sent.
//!   Whether the movie is in the catalogue is checked by the consumer against the store
//!   ([`EventError::UnknownMovie`]).
//! - `schemas/rating-event.schema.json` and `schemas/tag-event.schema.json` describe the same
//!   contract for producers in other languages; a test keeps them in step with [`decode`].

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::{DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The version written by this code and the only one [`decode`] accepts.
pub const SCHEMA_VERSION: u32 = 1;

/// Longest encoded event accepted, in bytes. A rating is about 130 bytes; the room is for tags.
pub const MAX_EVENT_BYTES: usize = 2048;

/// Longest tag text accepted, in UTF-8 bytes (MovieLens' longest is well under 300).
pub const MAX_TAG_BYTES: usize = 1024;

/// Earliest accepted timestamp: 1995-01-01T00:00:00Z, before MovieLens' first rating.
pub const EARLIEST_TIMESTAMP: i64 = 788_918_400;

/// How far in the future a timestamp may lie (clock skew between producers), in seconds.
pub const MAX_CLOCK_SKEW_SECS: i64 = 86_400;

/// Why bytes are not a valid event. Each variant has a stable [`kind`](EventError::kind) for
/// metrics and dead-letter headers; the `Display` text is the human reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EventError {
    /// Larger than [`MAX_EVENT_BYTES`]; not parsed at all.
    #[error("event is {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not JSON, not an object, a missing or unknown field, or a value of the wrong type.
    #[error("malformed event: {0}")]
    Malformed(String),
    /// A `schemaVersion` this code does not know.
    #[error("unsupported schemaVersion {found} (this consumer reads {SCHEMA_VERSION})")]
    UnsupportedVersion {
        /// The version in the event.
        found: u64,
    },
    /// Well-formed, but a value is out of range.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The JSON field name.
        field: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// The movie is not in the catalogue (checked by the consumer against the store).
    #[error("unknown movie: movieId {movie_id} is not in the catalogue")]
    UnknownMovie {
        /// The movie id in the event.
        movie_id: i64,
    },
}

impl EventError {
    /// A short stable code: `too-large`, `malformed`, `unsupported-version`, `invalid` or
    /// `unknown-movie`.
    pub fn kind(&self) -> &'static str {
        match self {
            EventError::TooLarge { .. } => "too-large",
            EventError::Malformed(_) => "malformed",
            EventError::UnsupportedVersion { .. } => "unsupported-version",
            EventError::Invalid { .. } => "invalid",
            EventError::UnknownMovie { .. } => "unknown-movie",
        }
    }

    fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        EventError::Invalid { field, reason: reason.into() }
    }
}

/// A 128-bit event id, written as 32 lowercase hex digits. Decoding also accepts upper case and
/// the dashed UUID form, so other producers can send `uuid4()` values.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(u128);

impl EventId {
    /// A fresh random id (from the thread-local CSPRNG).
    pub fn random() -> Self {
        EventId(rand::random())
    }

    /// A fresh id that sorts by creation time: the UUIDv7 layout (Unix milliseconds in the top
    /// 48 bits, version 7, 74 random bits). Tables keyed by such ids insert at the end of their
    /// index instead of at a random page, which keeps a high-rate stream (impressions) cheap to
    /// store.
    pub fn time_ordered() -> Self {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self::time_ordered_at(millis, rand::random())
    }

    /// [`EventId::time_ordered`] at `millis` with the random bits taken from `random`.
    pub const fn time_ordered_at(millis: u64, random: u128) -> Self {
        const RAND_A: u128 = 0xfff << 64; // 12 bits after the version nibble
        const RAND_B: u128 = (1 << 62) - 1; // 62 bits after the variant bits
        let time = ((millis & 0xffff_ffff_ffff) as u128) << 80;
        EventId(time | (0x7 << 76) | (random & RAND_A) | (0b10 << 62) | (random & RAND_B))
    }

    /// Wraps a raw value (tests and deterministic generators).
    pub const fn from_u128(value: u128) -> Self {
        EventId(value)
    }

    /// The raw value.
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// Parses 32 hex digits, or a dashed UUID (8-4-4-4-12).
    ///
    /// # Errors
    /// Anything else.
    pub fn parse(text: &str) -> Result<Self, EventError> {
        let bad = || EventError::invalid("eventId", format!("{text:?} is not 32 hex digits or a UUID"));
        let bytes = text.as_bytes();
        let dashed = bytes.len() == 36 && [8, 13, 18, 23].iter().all(|&i| bytes[i] == b'-');
        if bytes.len() != 32 && !dashed {
            return Err(bad());
        }
        let mut value: u128 = 0;
        let mut digits = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if dashed && matches!(i, 8 | 13 | 18 | 23) {
                continue;
            }
            let d = (b as char).to_digit(16).ok_or_else(bad)?;
            value = (value << 4) | u128::from(d);
            digits += 1;
        }
        debug_assert_eq!(digits, 32);
        Ok(EventId(value))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({self})")
    }
}

impl std::str::FromStr for EventId {
    type Err = EventError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventId::parse(s)
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = EventId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string of 32 hex digits or a UUID")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<EventId, E> {
                EventId::parse(v).map_err(|e| E::custom(e.to_string()))
            }
        }
        deserializer.deserialize_str(IdVisitor)
    }
}

/// A user rated a movie (or changed their rating: the newer timestamp wins in the store).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RatingSubmitted {
    /// Always [`SCHEMA_VERSION`] when written by this code.
    pub schema_version: u32,
    /// Unique per event, so duplicates can be traced end to end.
    pub event_id: EventId,
    /// MovieLens user id, positive.
    pub user_id: i64,
    /// MovieLens movie id, positive and in the catalogue.
    pub movie_id: i64,
    /// 0.5 to 5.0 in half-star steps.
    pub rating: f64,
    /// Unix seconds when the user rated.
    pub timestamp: i64,
}

/// A user put a free-text tag on a movie.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagAdded {
    /// Always [`SCHEMA_VERSION`] when written by this code.
    pub schema_version: u32,
    /// Unique per event.
    pub event_id: EventId,
    /// MovieLens user id, positive.
    pub user_id: i64,
    /// MovieLens movie id, positive and in the catalogue.
    pub movie_id: i64,
    /// The tag text: not blank, at most [`MAX_TAG_BYTES`], no control characters but tab.
    pub tag: String,
    /// Unix seconds when the user tagged.
    pub timestamp: i64,
}

impl RatingSubmitted {
    /// A new event with a fresh random id and the current schema version (not yet validated:
    /// [`encode`] and [`validate`](Event::validate) do that).
    pub fn new(user_id: i64, movie_id: i64, rating: f64, timestamp: i64) -> Self {
        Self { schema_version: SCHEMA_VERSION, event_id: EventId::random(), user_id, movie_id, rating, timestamp }
    }
}

impl TagAdded {
    /// A new event with a fresh random id and the current schema version.
    pub fn new(user_id: i64, movie_id: i64, tag: impl Into<String>, timestamp: i64) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            event_id: EventId::random(),
            user_id,
            movie_id,
            tag: tag.into(),
            timestamp,
        }
    }
}

/// A rating as a client submits it (the body of `POST /ratings`, a line of `producer send`):
/// the server adds the event id and schema version, and `timestamp` defaults to now.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewRating {
    /// MovieLens user id, positive.
    #[schema(minimum = 1)]
    pub user_id: i64,
    /// MovieLens movie id, positive and in the catalogue.
    #[schema(minimum = 1)]
    pub movie_id: i64,
    /// 0.5 to 5.0 in half-star steps.
    #[schema(minimum = 0.5, maximum = 5.0, multiple_of = 0.5)]
    pub rating: f64,
    /// Unix seconds, from 1995-01-01 to one day ahead; now when absent.
    #[schema(minimum = 788_918_400)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
}

impl NewRating {
    /// The event for this rating with a fresh id, validated with `now` (Unix seconds) as the
    /// present and as the default timestamp.
    ///
    /// # Errors
    /// A value out of range, as [`EventError::Invalid`].
    pub fn into_event(self, now: i64) -> Result<RatingSubmitted, EventError> {
        let event = RatingSubmitted::new(self.user_id, self.movie_id, self.rating, self.timestamp.unwrap_or(now));
        event.validate(now)?;
        Ok(event)
    }
}

/// What [`decode`] and [`encode`] need of a type: its checks.
pub trait Validate: Serialize + DeserializeOwned {
    /// Checks the values' ranges with `now` (Unix seconds) as the present.
    ///
    /// # Errors
    /// The first value out of range.
    fn check_event(&self, now: i64) -> Result<(), EventError>;
}

impl<E: Event> Validate for E {
    fn check_event(&self, now: i64) -> Result<(), EventError> {
        self.validate(now)
    }
}

/// What every event about one movie shares, so [`decode`] and [`encode`] serve them all.
pub trait Event: Serialize + DeserializeOwned {
    /// The event's name, e.g. `RatingSubmitted`.
    const NAME: &'static str;

    /// The fields every event carries.
    fn envelope(&self) -> Envelope;

    /// Checks the fields only this kind of event has.
    ///
    /// # Errors
    /// The first value out of range.
    fn check_payload(&self) -> Result<(), EventError>;

    /// The user, also the Kafka message key.
    fn user_id(&self) -> i64 {
        self.envelope().user_id
    }

    /// The movie, which must be in the catalogue.
    fn movie_id(&self) -> i64 {
        self.envelope().movie_id
    }

    /// The event id.
    fn event_id(&self) -> EventId {
        self.envelope().event_id
    }

    /// Checks the values' ranges with `now` (Unix seconds) as the present.
    ///
    /// # Errors
    /// The first value out of range.
    fn validate(&self, now: i64) -> Result<(), EventError> {
        self.envelope().check(now)?;
        self.check_payload()
    }
}

/// The fields every event carries, checked by the same rules whatever the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope {
    /// The event's schema version.
    pub schema_version: u32,
    /// The event id.
    pub event_id: EventId,
    /// The user.
    pub user_id: i64,
    /// The movie.
    pub movie_id: i64,
    /// Unix seconds.
    pub timestamp: i64,
}

impl Envelope {
    /// The envelope of these fields.
    pub fn new(schema_version: u32, event_id: EventId, user_id: i64, movie_id: i64, timestamp: i64) -> Self {
        Self { schema_version, event_id, user_id, movie_id, timestamp }
    }

    fn check(self, now: i64) -> Result<(), EventError> {
        let Self { schema_version, user_id, movie_id, timestamp, .. } = self;
        if schema_version != SCHEMA_VERSION {
            return Err(EventError::UnsupportedVersion { found: u64::from(schema_version) });
        }
        if user_id <= 0 {
            return Err(EventError::invalid("userId", format!("{user_id} is not positive")));
        }
        if movie_id <= 0 {
            return Err(EventError::invalid("movieId", format!("{movie_id} is not positive")));
        }
        let latest = now.saturating_add(MAX_CLOCK_SKEW_SECS);
        if !(EARLIEST_TIMESTAMP..=latest).contains(&timestamp) {
            return Err(EventError::invalid(
                "timestamp",
                format!("{timestamp} is outside {EARLIEST_TIMESTAMP} (1995-01-01) ..= {latest} (now + 1 day)"),
            ));
        }
        Ok(())
    }
}

/// Whether a rating is on MovieLens' scale: 0.5 to 5.0 in half-star steps (the same rule as
/// `movielens::valid_rating`).
pub fn valid_rating(rating: f64) -> bool {
    (0.5..=5.0).contains(&rating) && (rating * 2.0).fract() == 0.0
}

impl Event for RatingSubmitted {
    const NAME: &'static str = "RatingSubmitted";

    fn envelope(&self) -> Envelope {
        Envelope::new(self.schema_version, self.event_id, self.user_id, self.movie_id, self.timestamp)
    }

    fn check_payload(&self) -> Result<(), EventError> {
        if !valid_rating(self.rating) {
            return Err(EventError::invalid("rating", format!("{} is not 0.5..=5.0 in 0.5 steps", self.rating)));
        }
        Ok(())
    }
}

impl Event for TagAdded {
    const NAME: &'static str = "TagAdded";

    fn envelope(&self) -> Envelope {
        Envelope::new(self.schema_version, self.event_id, self.user_id, self.movie_id, self.timestamp)
    }

    fn check_payload(&self) -> Result<(), EventError> {
        if self.tag.trim().is_empty() {
            return Err(EventError::invalid("tag", "is blank"));
        }
        if self.tag.len() > MAX_TAG_BYTES {
            return Err(EventError::invalid("tag", format!("is {} bytes, more than {MAX_TAG_BYTES}", self.tag.len())));
        }
        if let Some(c) = self.tag.chars().find(|&c| c.is_control() && c != '\t') {
            return Err(EventError::invalid("tag", format!("contains the control character {c:?}")));
        }
        Ok(())
    }
}

/// Most movies one shown list may carry (the list endpoint's largest `n`).
pub const MAX_SHOWN: usize = 100;

/// Serving showed a user a list of recommendations (an impression): on the impressions topic,
/// keyed by `userId`, persisted by the consumer group. Experiment outcomes join these with the
/// ratings that follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListShown {
    /// Always [`SCHEMA_VERSION`] when written by this code.
    pub schema_version: u32,
    /// Unique per event: the store keeps each impression once however often it is delivered.
    pub event_id: EventId,
    /// The user shown the list, positive.
    pub user_id: i64,
    /// The movies shown, best first: position 1 is `movieIds[0]`. At most [`MAX_SHOWN`].
    pub movie_ids: Vec<i64>,
    /// `personal` or `trending`.
    pub strategy: String,
    /// Version of the model that answered.
    pub model_version: u64,
    /// The running experiment, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
    /// The user's variant in it (or `holdout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The stream's clock when shown: the newest rating time the live model had applied (wall
    /// time before any). Outcome windows count from it, so a replay of old ratings works.
    pub stream_time: i64,
    /// Unix seconds (wall clock) when it was served.
    pub timestamp: i64,
}

impl Validate for ListShown {
    fn check_event(&self, now: i64) -> Result<(), EventError> {
        Envelope::new(self.schema_version, self.event_id, self.user_id, 1, self.timestamp).check(now)?;
        if self.movie_ids.len() > MAX_SHOWN {
            return Err(EventError::invalid(
                "movieIds",
                format!("{} movies, more than {MAX_SHOWN}", self.movie_ids.len()),
            ));
        }
        if let Some(&id) = self.movie_ids.iter().find(|&&id| id <= 0) {
            return Err(EventError::invalid("movieIds", format!("{id} is not positive")));
        }
        if !matches!(self.strategy.as_str(), "personal" | "trending") {
            return Err(EventError::invalid("strategy", format!("{:?} is not personal or trending", self.strategy)));
        }
        for (field, name) in [("experiment", &self.experiment), ("variant", &self.variant)] {
            if let Some(name) = name
                && !crate::ab::valid_name(name)
            {
                return Err(EventError::invalid(field, format!("{name:?} is not a valid name")));
            }
        }
        if self.experiment.is_some() != self.variant.is_some() {
            return Err(EventError::invalid("variant", "experiment and variant come together"));
        }
        let latest = now.saturating_add(MAX_CLOCK_SKEW_SECS);
        if !(EARLIEST_TIMESTAMP..=latest).contains(&self.stream_time) {
            return Err(EventError::invalid(
                "streamTime",
                format!("{} is outside 1995-01-01 ..= now + 1 day", self.stream_time),
            ));
        }
        Ok(())
    }
}

/// Largest impressions batch accepted, in bytes: well under Kafka's default message limit
/// (1 MB), room for about 2,000 lists of ten movies.
pub const MAX_BATCH_BYTES: usize = 512 * 1024;

/// Builds an impressions batch: the lists one serving replica showed over a moment (its
/// linger, 100 ms), as one Kafka message on the impressions topic:
///
/// ```json
/// {"schemaVersion":1,"lists":[{"schemaVersion":1,"eventId":"…","userId":3,…},{…}]}
/// ```
///
/// At the request rate, one message per list costs more than the list: each goes through the
/// producer's queue, batching and delivery report, the broker and the consumer's fetch. A
/// batch pays that once. Each list keeps its own event id and checks: [`decode_lists_at`]
/// gives them back one by one, and a bad list is dead-lettered alone, with its own bytes.
#[derive(Debug)]
pub struct ListsShownWriter {
    buf: Vec<u8>,
    lists: usize,
}

impl ListsShownWriter {
    /// An empty batch.
    pub fn new() -> Self {
        let mut writer = Self { buf: Vec::with_capacity(64 * 1024), lists: 0 };
        writer.start();
        writer
    }

    fn start(&mut self) {
        use std::io::Write as _;
        self.buf.clear();
        self.lists = 0;
        let _ = write!(self.buf, "{{\"schemaVersion\":{SCHEMA_VERSION},\"lists\":[");
    }

    /// Appends `list` if it passes the checks [`decode_at`] applies (with `now` as the present)
    /// and the batch has room: `Ok(false)` means it is full, [`take`](Self::take) it and push
    /// again.
    ///
    /// # Errors
    /// The list is out of range or encodes larger than [`MAX_EVENT_BYTES`]; the batch is as
    /// it was.
    pub fn push(&mut self, list: &ListShown, now: i64) -> Result<bool, EventError> {
        list.check_event(now)?;
        let mark = self.buf.len();
        if self.lists > 0 {
            self.buf.push(b',');
        }
        let start = self.buf.len();
        if let Err(e) = serde_json::to_writer(&mut self.buf, list) {
            self.buf.truncate(mark);
            return Err(EventError::Malformed(e.to_string()));
        }
        let size = self.buf.len() - start;
        if size > MAX_EVENT_BYTES {
            self.buf.truncate(mark);
            return Err(EventError::TooLarge { size, max: MAX_EVENT_BYTES });
        }
        if self.buf.len() + 2 > MAX_BATCH_BYTES {
            self.buf.truncate(mark);
            return Ok(false);
        }
        self.lists += 1;
        Ok(true)
    }

    /// How many lists the batch holds.
    pub fn len(&self) -> usize {
        self.lists
    }

    /// Whether the batch holds no list.
    pub fn is_empty(&self) -> bool {
        self.lists == 0
    }

    /// The batch's bytes; the writer starts a new, empty one.
    pub fn take(&mut self) -> Vec<u8> {
        self.buf.extend_from_slice(b"]}");
        let bytes = self.buf.clone();
        self.start();
        bytes
    }
}

impl Default for ListsShownWriter {
    fn default() -> Self {
        Self::new()
    }
}

/// A list of an impressions batch that is not a valid [`ListShown`]: where it was, its own
/// bytes (what the dead-letter topic gets) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BadList {
    /// Its position in the batch's `lists`, from 0.
    pub index: usize,
    /// The list's JSON as it was in the batch.
    pub payload: Vec<u8>,
    /// Why it is not valid.
    pub error: EventError,
}

/// Decodes an impressions batch (see [`ListsShownWriter`]) with `now` (Unix seconds) as the
/// present: its lists in order, each decoded and checked alone, as [`decode_at`] would. Never
/// panics, for any input.
///
/// # Errors
/// The batch itself is larger than [`MAX_BATCH_BYTES`], not an object with `schemaVersion`
/// and a `lists` array of objects, or of another `schemaVersion`.
pub fn decode_lists_at(bytes: &[u8], now: i64) -> Result<Vec<Result<ListShown, BadList>>, EventError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Batch<'a> {
        schema_version: u64,
        #[serde(borrow)]
        lists: Vec<&'a serde_json::value::RawValue>,
    }
    if bytes.len() > MAX_BATCH_BYTES {
        return Err(EventError::TooLarge { size: bytes.len(), max: MAX_BATCH_BYTES });
    }
    let batch: Batch<'_> = serde_json::from_slice(bytes)
        .map_err(|e| version_error(bytes).unwrap_or_else(|| EventError::Malformed(e.to_string())))?;
    if batch.schema_version != u64::from(SCHEMA_VERSION) {
        return Err(EventError::UnsupportedVersion { found: batch.schema_version });
    }
    Ok(batch
        .lists
        .iter()
        .enumerate()
        .map(|(index, raw)| {
            let payload = raw.get().as_bytes();
            decode_at::<ListShown>(payload, now).map_err(|error| BadList { index, payload: payload.to_vec(), error })
        })
        .collect())
}

/// The current time in Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// `YYYY-MM-DD HH:MM` (UTC) of Unix seconds.
pub fn utc(seconds: i64) -> String {
    let (year, month, day) = utc_date(seconds);
    let secs = seconds.rem_euclid(86_400);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}", secs / 3600, secs % 3600 / 60)
}

/// The (year, month, day) (UTC) of Unix seconds, without formatting (hot paths bucket
/// millions of timestamps by month).
pub fn utc_date(seconds: i64) -> (i64, i64, i64) {
    let days = seconds.div_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Decodes and validates one event, with the current time as the present. Never panics, for
/// any input.
///
/// # Errors
/// [`EventError`] saying why the bytes are not a valid `E`.
pub fn decode<E: Validate>(bytes: &[u8]) -> Result<E, EventError> {
    decode_at(bytes, unix_now())
}

/// [`decode`] with an explicit present (Unix seconds), for tests and replays.
///
/// # Errors
/// [`EventError`] saying why the bytes are not a valid `E`.
pub fn decode_at<E: Validate>(bytes: &[u8], now: i64) -> Result<E, EventError> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(EventError::TooLarge { size: bytes.len(), max: MAX_EVENT_BYTES });
    }
    let event: E = match serde_json::from_slice(bytes) {
        Ok(event) => event,
        Err(e) => {
            return Err(version_error(bytes).unwrap_or_else(|| EventError::Malformed(e.to_string())));
        }
    };
    event.check_event(now)?;
    Ok(event)
}

/// When an event does not parse, a newer `schemaVersion` is the better explanation than the
/// field it tripped on.
fn version_error(bytes: &[u8]) -> Option<EventError> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "schemaVersion")]
        schema_version: u64,
    }
    let probe: Probe = serde_json::from_slice(bytes).ok()?;
    (probe.schema_version != u64::from(SCHEMA_VERSION))
        .then_some(EventError::UnsupportedVersion { found: probe.schema_version })
}

/// Validates an event (with the current time) and encodes it as compact JSON, the bytes
/// [`decode`] accepts.
///
/// # Errors
/// The event is out of range or encodes larger than [`MAX_EVENT_BYTES`].
pub fn encode<E: Validate>(event: &E) -> Result<Vec<u8>, EventError> {
    encode_at(event, unix_now())
}

/// [`encode`] with an explicit present (Unix seconds).
///
/// # Errors
/// The event is out of range or encodes larger than [`MAX_EVENT_BYTES`].
pub fn encode_at<E: Validate>(event: &E, now: i64) -> Result<Vec<u8>, EventError> {
    event.check_event(now)?;
    let bytes = serde_json::to_vec(event).map_err(|e| EventError::Malformed(e.to_string()))?;
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(EventError::TooLarge { size: bytes.len(), max: MAX_EVENT_BYTES });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn rating_json(fields: &str) -> Vec<u8> {
        format!(r#"{{"schemaVersion":1,"eventId":"000102030405060708090a0b0c0d0e0f",{fields}}}"#).into_bytes()
    }

    fn decode_rating(bytes: &[u8]) -> Result<RatingSubmitted, EventError> {
        decode_at::<RatingSubmitted>(bytes, NOW)
    }

    #[test]
    fn a_valid_rating_round_trips() {
        let event = RatingSubmitted::new(7, 31, 2.5, 1_260_759_144);
        let bytes = encode_at(&event, NOW).unwrap();
        assert_eq!(decode_rating(&bytes).unwrap(), event);
    }

    #[test]
    fn a_valid_tag_round_trips() {
        let event = TagAdded::new(7, 31, "dark comedy, \"quoted\" \u{e9}", 1_260_759_144);
        let bytes = encode_at(&event, NOW).unwrap();
        assert_eq!(decode_at::<TagAdded>(&bytes, NOW).unwrap(), event);
    }

    #[test]
    fn integral_ratings_decode() {
        let e = decode_rating(&rating_json(r#""userId":1,"movieId":2,"rating":4,"timestamp":964982703"#)).unwrap();
        assert_eq!(e.rating, 4.0);
        assert_eq!(e.event_id.as_u128(), 0x0001_0203_0405_0607_0809_0a0b_0c0d_0e0f);
    }

    #[test]
    fn rating_above_five_is_rejected() {
        let err = decode_rating(&rating_json(r#""userId":1,"movieId":2,"rating":5.5,"timestamp":964982703"#));
        assert!(matches!(err, Err(EventError::Invalid { field: "rating", .. })), "{err:?}");
    }

    #[test]
    fn rating_off_the_half_star_grid_is_rejected() {
        for r in ["0", "0.25", "3.3", "-1", "4.75"] {
            let json = rating_json(&format!(r#""userId":1,"movieId":2,"rating":{r},"timestamp":964982703"#));
            assert_eq!(decode_rating(&json).unwrap_err().kind(), "invalid", "{r}");
        }
    }

    #[test]
    fn non_positive_ids_are_rejected() {
        let e = decode_rating(&rating_json(r#""userId":0,"movieId":2,"rating":4,"timestamp":964982703"#)).unwrap_err();
        assert_eq!(e, EventError::Invalid { field: "userId", reason: "0 is not positive".into() });
        let e = decode_rating(&rating_json(r#""userId":1,"movieId":-2,"rating":4,"timestamp":964982703"#)).unwrap_err();
        assert!(matches!(e, EventError::Invalid { field: "movieId", .. }));
    }

    #[test]
    fn timestamps_before_1995_or_after_tomorrow_are_rejected() {
        for ts in [0, EARLIEST_TIMESTAMP - 1, NOW + MAX_CLOCK_SKEW_SECS + 1] {
            let json = rating_json(&format!(r#""userId":1,"movieId":2,"rating":4,"timestamp":{ts}"#));
            assert!(matches!(decode_rating(&json), Err(EventError::Invalid { field: "timestamp", .. })), "{ts}");
        }
        let json = rating_json(&format!(r#""userId":1,"movieId":2,"rating":4,"timestamp":{}"#, NOW + 3600));
        assert!(decode_rating(&json).is_ok());
    }

    #[test]
    fn wrong_types_missing_and_unknown_fields_are_malformed() {
        for fields in [
            r#""userId":"1","movieId":2,"rating":4,"timestamp":964982703"#,
            r#""userId":1.5,"movieId":2,"rating":4,"timestamp":964982703"#,
            r#""userId":1,"movieId":2,"rating":"4.0","timestamp":964982703"#,
            r#""userId":1,"movieId":2,"timestamp":964982703"#,
            r#""userId":1,"movieId":2,"rating":4,"timestamp":964982703,"extra":true"#,
            r#""userId":99999999999999999999,"movieId":2,"rating":4,"timestamp":964982703"#,
        ] {
            assert_eq!(decode_rating(&rating_json(fields)).unwrap_err().kind(), "malformed", "{fields}");
        }
        for bytes in [&b""[..], b"null", b"[]", b"{", b"\xff\xfe", b"{\"userId\":1}"] {
            assert_eq!(decode_rating(bytes).unwrap_err().kind(), "malformed");
        }
    }

    #[test]
    fn bad_event_ids_are_malformed() {
        for id in ["", "xyz", "000102030405060708090a0b0c0d0e0", "000102030405060708090a0b0c0d0e0g"] {
            let json = format!(
                r#"{{"schemaVersion":1,"eventId":"{id}","userId":1,"movieId":2,"rating":4,"timestamp":964982703}}"#
            );
            assert_eq!(decode_rating(json.as_bytes()).unwrap_err().kind(), "malformed", "{id}");
        }
    }

    #[test]
    fn uuid_event_ids_are_accepted() {
        let id = EventId::parse("00010203-0405-0607-0809-0A0B0C0D0E0F").unwrap();
        assert_eq!(id.to_string(), "000102030405060708090a0b0c0d0e0f");
        assert!(EventId::parse("0001020304-05-0607-0809-0a0b0c0d0e0f").is_err());
    }

    #[test]
    fn another_schema_version_is_reported_as_such() {
        let json = br#"{"schemaVersion":2,"eventId":"000102030405060708090a0b0c0d0e0f","userId":1,"movieId":2,"rating":4,"timestamp":964982703,"new":1}"#;
        assert_eq!(decode_rating(json).unwrap_err(), EventError::UnsupportedVersion { found: 2 });
        let json = br#"{"schemaVersion":0,"eventId":"000102030405060708090a0b0c0d0e0f","userId":1,"movieId":2,"rating":4,"timestamp":964982703}"#;
        assert_eq!(decode_rating(json).unwrap_err().kind(), "unsupported-version");
    }

    #[test]
    fn oversized_events_are_rejected_before_parsing() {
        let big = vec![b' '; MAX_EVENT_BYTES + 1];
        assert_eq!(
            decode_rating(&big).unwrap_err(),
            EventError::TooLarge { size: MAX_EVENT_BYTES + 1, max: MAX_EVENT_BYTES }
        );
        let tag = TagAdded::new(1, 2, "x".repeat(MAX_TAG_BYTES + 1), 964_982_703);
        assert_eq!(encode_at(&tag, NOW).unwrap_err().kind(), "invalid");
    }

    #[test]
    fn blank_and_control_character_tags_are_rejected() {
        for text in ["", "   ", "a\u{0}b", "line\nbreak"] {
            let tag = TagAdded::new(1, 2, text, 964_982_703);
            assert!(matches!(tag.validate(NOW), Err(EventError::Invalid { field: "tag", .. })), "{text:?}");
        }
        assert!(TagAdded::new(1, 2, "tab\tok", 964_982_703).validate(NOW).is_ok());
    }

    #[test]
    fn a_tag_is_not_a_rating() {
        let bytes = encode_at(&TagAdded::new(1, 2, "funny", 964_982_703), NOW).unwrap();
        assert_eq!(decode_rating(&bytes).unwrap_err().kind(), "malformed");
    }

    #[test]
    fn encode_refuses_invalid_events() {
        let event = RatingSubmitted::new(1, 2, 6.0, 964_982_703);
        assert_eq!(encode_at(&event, NOW).unwrap_err().kind(), "invalid");
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(EventId::random(), EventId::random());
        assert_ne!(EventId::time_ordered(), EventId::time_ordered());
    }

    #[test]
    fn time_ordered_ids_are_uuid_v7_and_sort_by_time() {
        let id = EventId::time_ordered_at(0x0189_abcd_ef01, u128::MAX);
        // 48 bits of milliseconds, version 7, variant 0b10, the rest random.
        assert_eq!(id.to_string(), "0189abcdef017fffbfffffffffffffff");
        assert_eq!(EventId::time_ordered_at(0x0189_abcd_ef01, 0).to_string(), "0189abcdef0170008000000000000000");
        let (earlier, later) = (EventId::time_ordered_at(1_000, u128::MAX), EventId::time_ordered_at(1_001, 0));
        assert!(earlier < later && earlier.to_string() < later.to_string());
        let now = EventId::time_ordered();
        assert!(now > EventId::time_ordered_at(1_765_000_000_000, u128::MAX), "{now} is not from after 2025");
    }

    #[test]
    fn a_new_rating_becomes_a_validated_event() {
        let new: NewRating = serde_json::from_str(r#"{"userId":3,"movieId":4,"rating":3.5}"#).unwrap();
        let event = new.into_event(NOW).unwrap();
        assert_eq!((event.user_id, event.movie_id, event.rating, event.timestamp), (3, 4, 3.5, NOW));
        assert_eq!(event.schema_version, SCHEMA_VERSION);
        let bad = NewRating { user_id: 3, movie_id: 4, rating: 7.0, timestamp: None };
        assert!(matches!(bad.into_event(NOW), Err(EventError::Invalid { field: "rating", .. })));
        assert!(serde_json::from_str::<NewRating>(r#"{"userId":3,"movieId":4,"rating":3.5,"x":1}"#).is_err());
    }

    fn shown() -> ListShown {
        ListShown {
            schema_version: SCHEMA_VERSION,
            event_id: EventId::from_u128(7),
            user_id: 3,
            movie_ids: vec![10, 20, 30],
            strategy: "personal".into(),
            model_version: 2,
            experiment: Some("exp".into()),
            variant: Some("holdout".into()),
            stream_time: 1_000_000_000,
            timestamp: NOW,
        }
    }

    #[test]
    fn a_shown_list_round_trips_and_bad_ones_say_why() {
        let bytes = encode_at(&shown(), NOW).unwrap();
        assert_eq!(decode_at::<ListShown>(&bytes, NOW).unwrap(), shown());
        let invalid = |change: fn(&mut ListShown)| {
            let mut e = shown();
            change(&mut e);
            match decode_at::<ListShown>(&serde_json::to_vec(&e).unwrap(), NOW) {
                Err(EventError::Invalid { field, .. }) => field,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(invalid(|e| e.movie_ids = (1..=101).collect()), "movieIds");
        assert_eq!(invalid(|e| e.movie_ids[1] = 0), "movieIds");
        assert_eq!(invalid(|e| e.strategy = "content".into()), "strategy");
        assert_eq!(invalid(|e| e.variant = None), "variant");
        assert_eq!(invalid(|e| e.experiment = Some("a b".into())), "experiment");
        assert_eq!(invalid(|e| e.stream_time = 5), "streamTime");
        assert_eq!(invalid(|e| e.user_id = -1), "userId");
        let mut e = shown();
        e.experiment = None;
        e.variant = None;
        assert!(!String::from_utf8(encode_at(&e, NOW).unwrap()).unwrap().contains("variant"));
        assert!(matches!(decode_at::<ListShown>(b"{}", NOW), Err(EventError::Malformed(_))));
    }

    #[test]
    fn a_batch_of_lists_round_trips_in_order() {
        let mut writer = ListsShownWriter::new();
        let lists: Vec<ListShown> =
            (1..=3).map(|i| ListShown { event_id: EventId::from_u128(i), user_id: i as i64, ..shown() }).collect();
        for list in &lists {
            assert_eq!(writer.push(list, NOW), Ok(true));
        }
        assert_eq!(writer.len(), 3);
        let bytes = writer.take();
        assert!(writer.is_empty());
        let decoded: Vec<ListShown> = decode_lists_at(&bytes, NOW).unwrap().into_iter().map(Result::unwrap).collect();
        assert_eq!(decoded, lists);
        // Each list is the very bytes a single event would be.
        let text = String::from_utf8(bytes).unwrap();
        let single = String::from_utf8(encode_at(&lists[0], NOW).unwrap()).unwrap();
        assert!(text.starts_with(&format!("{{\"schemaVersion\":1,\"lists\":[{single},")), "{text}");
        // The writer starts afresh after take.
        writer.push(&lists[2], NOW).unwrap();
        let again = decode_lists_at(&writer.take(), NOW).unwrap();
        assert_eq!(again, vec![Ok(lists[2].clone())]);
        assert_eq!(decode_lists_at(&ListsShownWriter::new().take(), NOW).unwrap(), vec![]);
    }

    #[test]
    fn a_bad_list_in_a_batch_is_rejected_alone_with_its_own_bytes() {
        let good = serde_json::to_string(&shown()).unwrap();
        let mut long = shown();
        long.movie_ids = (1..=101).collect();
        let long = serde_json::to_string(&long).unwrap();
        let batch = format!(r#"{{"schemaVersion":1,"lists":[{good}, {long},{{"userId":"one"}},7,{good}]}}"#);
        let lists = decode_lists_at(batch.as_bytes(), NOW).unwrap();
        assert_eq!(lists.len(), 5);
        assert_eq!(lists[0], Ok(shown()));
        assert_eq!(lists[4], Ok(shown()));
        let bad: Vec<(usize, &str, &[u8])> =
            lists.iter().filter_map(|l| l.as_ref().err()).map(|b| (b.index, b.error.kind(), &b.payload[..])).collect();
        assert_eq!(
            bad,
            vec![
                (1, "invalid", long.as_bytes()),
                (2, "malformed", &br#"{"userId":"one"}"#[..]),
                (3, "malformed", &b"7"[..])
            ]
        );
    }

    #[test]
    fn a_bad_batch_is_rejected_whole() {
        let kind = |bytes: &[u8]| decode_lists_at(bytes, NOW).unwrap_err().kind();
        assert_eq!(kind(b"not json"), "malformed");
        assert_eq!(kind(b"[]"), "malformed");
        assert_eq!(kind(br#"{"schemaVersion":1}"#), "malformed");
        assert_eq!(kind(br#"{"schemaVersion":1,"lists":{}}"#), "malformed");
        assert_eq!(kind(br#"{"schemaVersion":1,"lists":[],"extra":0}"#), "malformed");
        assert_eq!(kind(br#"{"schemaVersion":2,"lists":[]}"#), "unsupported-version");
        assert_eq!(kind(br#"{"schemaVersion":2,"other":[]}"#), "unsupported-version");
        // A single list is not a batch.
        assert_eq!(kind(&encode_at(&shown(), NOW).unwrap()), "malformed");
        let mut big = br#"{"schemaVersion":1,"lists":["#.to_vec();
        big.resize(MAX_BATCH_BYTES + 1, b' ');
        assert_eq!(kind(&big), "too-large");
    }

    #[test]
    fn the_writer_keeps_a_batch_under_the_limit_and_refuses_bad_lists() {
        let mut writer = ListsShownWriter::new();
        let mut bad = shown();
        bad.strategy = "content".into();
        assert!(matches!(writer.push(&bad, NOW), Err(EventError::Invalid { field: "strategy", .. })));
        assert!(writer.is_empty());
        let mut full = shown();
        full.movie_ids = (1_000_000..1_000_100).collect();
        let mut pushed = 0;
        while writer.push(&full, NOW).unwrap() {
            pushed += 1;
        }
        assert!(pushed > 100, "{pushed}");
        // Refusing one changes nothing: the batch holds what was pushed, and fits.
        assert_eq!(writer.push(&full, NOW), Ok(false));
        let bytes = writer.take();
        assert!(bytes.len() <= MAX_BATCH_BYTES && bytes.len() > MAX_BATCH_BYTES - MAX_EVENT_BYTES, "{}", bytes.len());
        assert_eq!(decode_lists_at(&bytes, NOW).unwrap().len(), pushed);
        assert_eq!(writer.push(&full, NOW), Ok(true));
    }
}

/// What `POST /ratings` answers once the broker has acknowledged the event (202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RatingAccepted {
    /// The event's id, as the consumer and the dead-letter topic will name it.
    pub event_id: String,
}
