//! Sending single events and waiting for the broker's acknowledgement.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use schemas::events::{Event, EventError, EventId, NewRating, RatingSubmitted, TagAdded, encode_at, unix_now};

/// How long [`send_event`] waits for room in the producer's queue.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the broker stored an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// The event's id.
    pub event_id: EventId,
    /// The partition it went to.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
}

/// Why an event was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The event is invalid; nothing was sent (an HTTP endpoint answers 422 with this text).
    #[error(transparent)]
    Invalid(#[from] EventError),
    /// The broker did not acknowledge it (unreachable, timed out, refused): a 503.
    #[error("Kafka did not acknowledge the event: {0}")]
    Kafka(#[from] KafkaError),
}

/// The message key of a user's events: the decimal user id, so one user's events share a
/// partition and stay in order.
pub fn key(user_id: i64) -> String {
    let mut key = String::new();
    write_key(&mut key, user_id);
    key
}

/// [`key`] into a reused buffer (the replay sends a million events a second).
pub fn write_key(buf: &mut String, user_id: i64) {
    use std::fmt::Write as _;
    buf.clear();
    let _ = write!(buf, "{user_id}");
}

/// Validates `event`, sends it to `topic` keyed by its user and waits until the broker has
/// acknowledged it (`acks=all`, idempotent).
///
/// # Errors
/// [`SendError::Invalid`] before anything is sent; [`SendError::Kafka`] when delivery failed.
#[tracing::instrument(skip(producer, event), fields(event_id = %event.event_id()))]
pub async fn send_event<E: Event>(producer: &FutureProducer, topic: &str, event: &E) -> Result<Delivered, SendError> {
    let payload = encode_at(event, unix_now())?;
    let key = key(event.user_id());
    let record = FutureRecord::to(topic).key(&key).payload(&payload);
    let (partition, offset) = producer
        .send(record, QUEUE_TIMEOUT)
        .await
        .map(|d| (d.partition, d.offset))
        .map_err(|(e, _)| SendError::Kafka(e))?;
    Ok(Delivered { event_id: event.event_id(), partition, offset })
}

/// [`send_event`] for a rating: what `POST /ratings` calls after building the event with
/// [`NewRating::into_event`] (or [`RatingSubmitted::new`]).
///
/// # Errors
/// As [`send_event`].
pub async fn send_rating(
    producer: &FutureProducer,
    topic: &str,
    event: &RatingSubmitted,
) -> Result<Delivered, SendError> {
    send_event(producer, topic, event).await
}

/// [`send_event`] for a tag.
///
/// # Errors
/// As [`send_event`].
pub async fn send_tag(producer: &FutureProducer, topic: &str, event: &TagAdded) -> Result<Delivered, SendError> {
    send_event(producer, topic, event).await
}

/// Parses one line of `producer send`'s standard input into a validated rating event.
///
/// Accepted forms: a full event (`{"schemaVersion":1,"eventId":...}`), a [`NewRating`]
/// object (`{"userId":1,"movieId":2,"rating":4.5,"timestamp":...}`, timestamp optional), or
/// CSV `userId,movieId,rating[,timestamp]`. Returns `Ok(None)` for a blank line or a CSV
/// header.
///
/// # Errors
/// The line is none of these, or the rating is invalid.
pub fn parse_rating_line(line: &str, now: i64) -> Result<Option<RatingSubmitted>, EventError> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    if line.starts_with('{') {
        if line.contains("\"schemaVersion\"") {
            return schemas::events::decode_at(line.as_bytes(), now).map(Some);
        }
        let new: NewRating = serde_json::from_str(line).map_err(|e| EventError::Malformed(e.to_string()))?;
        return new.into_event(now).map(Some);
    }
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    if fields.first().is_some_and(|f| f.parse::<i64>().is_err())
        && fields.iter().any(|f| f.eq_ignore_ascii_case("userId"))
    {
        return Ok(None);
    }
    if !(3..=4).contains(&fields.len()) {
        return Err(EventError::Malformed(format!(
            "expected userId,movieId,rating[,timestamp], got {} fields",
            fields.len()
        )));
    }
    let int = |name: &str, text: &str| {
        text.parse::<i64>().map_err(|_| EventError::Malformed(format!("{name} {text:?} is not an integer")))
    };
    let rating = fields[2]
        .parse::<f64>()
        .map_err(|_| EventError::Malformed(format!("rating {:?} is not a number", fields[2])))?;
    let timestamp = fields.get(3).map(|t| int("timestamp", t)).transpose()?;
    let new = NewRating { user_id: int("userId", fields[0])?, movie_id: int("movieId", fields[1])?, rating, timestamp };
    new.into_event(now).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn csv_lines_parse_with_or_without_timestamp() {
        let e = parse_rating_line("1,31,2.5,1260759144", NOW).unwrap().unwrap();
        assert_eq!((e.user_id, e.movie_id, e.rating, e.timestamp), (1, 31, 2.5, 1_260_759_144));
        let e = parse_rating_line(" 2 , 3 , 4 ", NOW).unwrap().unwrap();
        assert_eq!((e.user_id, e.movie_id, e.rating, e.timestamp), (2, 3, 4.0, NOW));
    }

    #[test]
    fn a_csv_header_and_blank_lines_are_skipped() {
        assert_eq!(parse_rating_line("userId,movieId,rating,timestamp", NOW).unwrap(), None);
        assert_eq!(parse_rating_line("   ", NOW).unwrap(), None);
    }

    #[test]
    fn json_lines_parse_in_both_forms() {
        let e = parse_rating_line(r#"{"userId":5,"movieId":6,"rating":0.5}"#, NOW).unwrap().unwrap();
        assert_eq!((e.user_id, e.movie_id, e.rating, e.timestamp), (5, 6, 0.5, NOW));
        let full = r#"{"schemaVersion":1,"eventId":"000102030405060708090a0b0c0d0e0f","userId":1,"movieId":2,"rating":3,"timestamp":964982703}"#;
        let e = parse_rating_line(full, NOW).unwrap().unwrap();
        assert_eq!(e.event_id.to_string(), "000102030405060708090a0b0c0d0e0f");
    }

    #[test]
    fn bad_lines_are_rejected_with_a_reason() {
        assert_eq!(parse_rating_line("1,2,5.5", NOW).unwrap_err().kind(), "invalid");
        assert_eq!(parse_rating_line("1,2", NOW).unwrap_err().kind(), "malformed");
        assert_eq!(parse_rating_line("a,2,3", NOW).unwrap_err().kind(), "malformed");
        assert_eq!(parse_rating_line(r#"{"userId":1}"#, NOW).unwrap_err().kind(), "malformed");
        assert_eq!(parse_rating_line("0,2,3", NOW).unwrap_err().kind(), "invalid");
    }

    #[test]
    fn keys_are_decimal_user_ids() {
        assert_eq!(key(610), "610");
        let mut buf = String::from("stale");
        write_key(&mut buf, 42);
        assert_eq!(buf, key(42), "the replay's reused buffer gets the same key");
    }
}
