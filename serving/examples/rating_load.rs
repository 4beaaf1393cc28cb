//! Background load for the recommendation benchmark: fresh, valid rating events for movies of
//! the catalogue, produced to Kafka at a steady rate (what a live platform's users would send).
//!
//! `cargo run --release -p serving --example rating_load -- BROKERS DATABASE_URL RATE SECONDS`
//!
//! Users are drawn from the catalogue's raters plus new ids, movies from the catalogue, ratings
//! in half stars; timestamps are now. Prints the events sent per second at the end.

use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use schemas::events::{RatingSubmitted, encode_at, unix_now};
use store::{MovieQuery, Page, Store};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [brokers, database_url, rate, seconds] = args.as_slice() else {
        anyhow::bail!("usage: rating_load BROKERS DATABASE_URL RATE SECONDS");
    };
    let rate: f64 = rate.parse().context("RATE")?;
    let seconds: f64 = seconds.parse().context("SECONDS")?;
    let store = Store::connect(database_url).await?;
    let movies: Vec<i64> = store
        .movies(&MovieQuery::default(), Page { skip: 0, limit: i64::MAX })
        .await?
        .into_iter()
        .map(|m| m.movie_id)
        .collect();
    anyhow::ensure!(!movies.is_empty(), "the catalogue is empty");
    let producer: ThreadedProducer<DefaultProducerContext> = producer::producer_config(brokers).create()?;
    let started = Instant::now();
    let total = (rate * seconds) as u64;
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut sent, mut key) = (0u64, String::new());
    while sent < total {
        let due = Duration::from_secs_f64(sent as f64 / rate);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        let now = unix_now();
        for _ in 0..100 {
            let user = 1 + (next() % 2_000) as i64;
            let event = RatingSubmitted::new(
                user,
                movies[(next() % movies.len() as u64) as usize],
                f64::from((next() % 10) as u32 + 1) * 0.5,
                now,
            );
            let payload = encode_at(&event, now)?;
            key.clear();
            key.push_str(&user.to_string());
            let mut record = BaseRecord::to(producer::topics::RATINGS).key(&key).payload(&payload);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        record = r;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
            sent += 1;
        }
    }
    producer.flush(Duration::from_secs(30))?;
    println!(
        "sent {sent} rating events in {:.1} s ({:.0}/s)",
        started.elapsed().as_secs_f64(),
        sent as f64 / started.elapsed().as_secs_f64()
    );
    Ok(())
}
