//! How soon a user's own rating shows in their next list, over HTTP as a client sees it.
//!
//! `cargo run --release -p serving --example rating_visibility -- BASE_URL SAMPLES [SECONDS]`
//!
//! For each sample, a user (spread over ids 1..=610, ml-latest-small's raters) asks for their
//! top 10, rates its first movie with `POST /ratings`, then asks again every millisecond until
//! that movie has left the list (a rated movie is never recommended). The time from sending the
//! rating to the first answer without the movie is the figure: Kafka, the stream follower, the
//! live model's update and the list cache all lie on that path. It is also counted from the
//! 202 (what the client waits for anyway), with how often the very next list already showed
//! the rating. Samples are spread over `SECONDS` (default: back to back), so the probe can run
//! beside a load. Prints medians, p90, p99 and maximum, and how many samples took at most
//! 100 ms; exits non-zero if a rating never showed within 5 s.

use std::time::{Duration, Instant};

use anyhow::Context;
use cinedata_client::types::events::NewRating;
use cinedata_client::{Client, RecommendOptions};

/// Give up on one sample after this long.
const GIVE_UP: Duration = Duration::from_secs(5);

async fn top(client: &Client, user: i64) -> anyhow::Result<Vec<i64>> {
    let options = RecommendOptions { n: Some(10), ..RecommendOptions::default() };
    let list = client.recommendations(user, &options).await.with_context(|| format!("user {user}'s list"))?;
    Ok(list.items.iter().map(|m| m.movie_id).collect())
}

/// One sample's times.
struct Sample {
    /// From sending the rating to the first list without the movie.
    shown: Duration,
    /// From sending the rating to its 202.
    acknowledged: Duration,
    /// Whether the first list asked for after the 202 already lacked the movie.
    next_list: bool,
}

async fn sample(client: &Client, user: i64) -> anyhow::Result<Sample> {
    let movie = *top(client, user).await?.first().context("an empty list")?;
    let sent = Instant::now();
    client.rate(&NewRating { user_id: user, movie_id: movie, rating: 1.0, timestamp: None }).await?;
    let acknowledged = sent.elapsed();
    let mut first = true;
    loop {
        if !top(client, user).await?.contains(&movie) {
            return Ok(Sample { shown: sent.elapsed(), acknowledged, next_list: first });
        }
        first = false;
        anyhow::ensure!(sent.elapsed() < GIVE_UP, "user {user}'s rating of movie {movie} not shown after {GIVE_UP:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn quantile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// `median …, p90 …, p99 …, max … ms; k of n within 100 ms`, sorting `times`.
fn summary(times: &mut [Duration]) -> String {
    times.sort_unstable();
    let within = times.iter().filter(|d| **d <= Duration::from_millis(100)).count();
    format!(
        "median {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {within} of {} within 100 ms",
        quantile(times, 0.5),
        quantile(times, 0.9),
        quantile(times, 0.99),
        quantile(times, 1.0),
        times.len()
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (base, samples, seconds) = match args.as_slice() {
        [base, samples] => (base, samples, "0"),
        [base, samples, seconds] => (base, samples, seconds.as_str()),
        _ => anyhow::bail!("usage: rating_visibility BASE_URL SAMPLES [SECONDS]"),
    };
    let samples: usize = samples.parse().context("SAMPLES")?;
    anyhow::ensure!(samples > 0, "SAMPLES must be positive");
    let spacing = Duration::from_secs_f64(seconds.parse::<f64>().context("SECONDS")? / samples as f64);
    let client = Client::builder(base).timeout(Duration::from_secs(10)).build()?;
    let started = Instant::now();
    let mut done = Vec::with_capacity(samples);
    for i in 0..samples {
        if let Some(wait) = (spacing * i as u32).checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        // A stride coprime to 610 visits different users in turn.
        let user = 1 + (i as i64 * 97) % 610;
        done.push(sample(&client, user).await?);
    }
    let mut shown: Vec<Duration> = done.iter().map(|s| s.shown).collect();
    let mut after_ack: Vec<Duration> = done.iter().map(|s| s.shown - s.acknowledged).collect();
    let mut acks: Vec<Duration> = done.iter().map(|s| s.acknowledged).collect();
    let next = done.iter().filter(|s| s.next_list).count();
    println!("own rating visible in the next list, {samples} samples:");
    println!("  from sending it: {}", summary(&mut shown));
    println!(
        "  from its 202:    {}; the first list asked after the 202 showed it in {next} of {samples}",
        summary(&mut after_ack)
    );
    println!("  POST /ratings answered in {}", summary(&mut acks));
    Ok(())
}
