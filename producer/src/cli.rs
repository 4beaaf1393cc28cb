//! The `producer` command line. Every flag can also come from a `CINEDATA_*` variable.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use movielens::Release;
use schemas::events::{RatingSubmitted, unix_now};
use tokio_util::sync::CancellationToken;

use crate::metrics::ProducerMetrics;
use crate::replay::{Pace, ReplayOptions, Timeline, replay_timeline};
use crate::topics::{self, TopicSpec};
use crate::{EmbeddedBroker, SendError, future_producer, producer_config, send_rating};
use runtime::metrics::MetricsServer;

/// Sends CineData events to Kafka.
#[derive(Debug, Parser)]
#[command(name = "producer", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay a MovieLens release's ratings (and tags) in timestamp order.
    Replay(ReplayArgs),
    /// Send ratings: one from flags, or JSON lines / CSV lines from standard input.
    Send(SendArgs),
}

/// Where to send.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// Kafka bootstrap servers, e.g. `127.0.0.1:9092`. Without it an embedded in-process broker
    /// is started (nothing survives the process; see the consumer's README).
    #[arg(long, env = "CINEDATA_BROKERS")]
    pub brokers: Option<String>,
    /// Topic of the ratings.
    #[arg(long, env = "CINEDATA_RATINGS_TOPIC", default_value = topics::RATINGS)]
    pub topic: String,
    /// Partitions of topics this command creates (existing topics are left alone).
    #[arg(long, env = "CINEDATA_PARTITIONS", default_value_t = topics::PARTITIONS)]
    pub partitions: i32,
}

/// Where to serve Prometheus metrics.
#[derive(Debug, Clone, Args)]
pub struct MetricsListen {
    /// Serve Prometheus metrics at `http://ADDR/metrics` (e.g. `0.0.0.0:9100`); none by default.
    #[arg(long, env = "CINEDATA_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// The release folder (ratings.csv, optional tags.csv).
    #[arg(long, env = "CINEDATA_DATA")]
    data: PathBuf,
    #[command(flatten)]
    target: Target,
    /// Topic of the tags.
    #[arg(long, env = "CINEDATA_TAGS_TOPIC", default_value = topics::TAGS)]
    tags_topic: String,
    /// Leave tags out.
    #[arg(long)]
    no_tags: bool,
    /// Times real time (following the events' timestamps), or `max` for as fast as possible.
    #[arg(long, env = "CINEDATA_SPEED", value_parser = Pace::speed, conflicts_with = "rate")]
    speed: Option<Pace>,
    /// Events per second.
    #[arg(long, env = "CINEDATA_RATE")]
    rate: Option<f64>,
    /// Send only the first N events (in time order).
    #[arg(long, env = "CINEDATA_LIMIT")]
    limit: Option<u64>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    metrics: MetricsListen,
}

#[derive(Debug, Args)]
struct SendArgs {
    #[command(flatten)]
    target: Target,
    /// The user.
    #[arg(long, required_unless_present = "stdin", conflicts_with = "stdin")]
    user_id: Option<i64>,
    /// The movie.
    #[arg(long, required_unless_present = "stdin")]
    movie_id: Option<i64>,
    /// 0.5 to 5.0 in half steps.
    #[arg(long, required_unless_present = "stdin")]
    rating: Option<f64>,
    /// Unix seconds (default: now).
    #[arg(long)]
    timestamp: Option<i64>,
    /// Read ratings from standard input, one per line: JSON (`{"userId":1,"movieId":2,
    /// "rating":4.5}` or a full event) or CSV (`userId,movieId,rating[,timestamp]`).
    #[arg(long)]
    stdin: bool,
    #[command(flatten)]
    metrics: MetricsListen,
}

/// A broker to talk to: the given one, or an embedded one kept alive by the returned guard.
async fn connect(target: &Target, extra_topics: &[&str]) -> anyhow::Result<(String, Option<EmbeddedBroker>)> {
    let mut specs = vec![TopicSpec::new(&target.topic, target.partitions)];
    specs.extend(extra_topics.iter().map(|t| TopicSpec::new(*t, target.partitions)));
    match &target.brokers {
        Some(brokers) => {
            if let Err(e) = topics::ensure_topics(brokers, &specs).await {
                tracing::warn!(error = %e, "could not create the topics; assuming they exist");
            }
            Ok((brokers.clone(), None))
        }
        None => {
            let broker = EmbeddedBroker::start(&specs).context("starting the embedded broker")?;
            eprintln!("embedded Kafka broker at {} (nothing survives this process)", broker.bootstrap_servers());
            Ok((broker.bootstrap_servers().to_owned(), Some(broker)))
        }
    }
}

/// Runs one subcommand to completion; `shutdown` stops a replay early.
///
/// # Errors
/// Bad arguments, an unreadable release, a broker that cannot be reached, or any event not
/// acknowledged: the process then exits non-zero.
pub async fn run(cli: Cli, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listen = match &cli.command {
        Command::Replay(args) => args.metrics.metrics_listen,
        Command::Send(args) => args.metrics.metrics_listen,
    };
    let (metrics, server) = match listen {
        Some(addr) => {
            let registry = runtime::metrics::registry();
            let metrics = ProducerMetrics::register(&registry)?;
            let server = MetricsServer::start(addr, registry, &shutdown)
                .await
                .with_context(|| format!("serving metrics on {addr}"))?;
            (Some(metrics), Some(server))
        }
        None => (None, None),
    };
    let result = match cli.command {
        Command::Replay(args) => replay(args, metrics, shutdown).await,
        Command::Send(args) => send(args, metrics).await,
    };
    if let Some(server) = server {
        server.stop().await;
    }
    result
}

async fn replay(args: ReplayArgs, metrics: Option<ProducerMetrics>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let release = Release::new(&args.data);
    let tags_topic = (!args.no_tags).then(|| args.tags_topic.clone());
    let extra: Vec<&str> = tags_topic.iter().map(String::as_str).collect();
    let (brokers, embedded) = connect(&args.target, &extra).await?;
    let with_tags = tags_topic.is_some();
    let timeline = tokio::task::spawn_blocking(move || Timeline::load(&release, with_tags))
        .await?
        .with_context(|| format!("reading {}", args.data.display()))?;
    let pace = match (args.rate, args.speed) {
        (Some(n), _) if n > 0.0 => Pace::Rate(n),
        (Some(n), _) => bail!("--rate {n} must be positive"),
        (None, Some(pace)) => pace,
        (None, None) => Pace::Max,
    };
    let options = ReplayOptions {
        tags_topic,
        pace,
        limit: args.limit,
        progress: !args.quiet,
        metrics,
        ..ReplayOptions::new(args.target.topic.clone())
    };
    let report = replay_timeline(producer_config(&brokers), Arc::new(timeline), options, shutdown.clone()).await?;
    eprintln!(
        "sent {} events, {} acknowledged, {} failed, {} invalid skipped, in {:.2} s ({:.0} events/s)",
        report.sent,
        report.delivered,
        report.failed,
        report.skipped,
        report.elapsed.as_secs_f64(),
        report.rate()
    );
    if !report.is_complete() {
        if report.interrupted {
            bail!("interrupted after {} events", report.sent);
        }
        bail!(
            "{} of {} events were not acknowledged: {}",
            report.sent - report.delivered,
            report.sent,
            report.first_error.as_deref().unwrap_or("flush timed out")
        );
    }
    if let Some(broker) = embedded {
        eprintln!(
            "the embedded broker at {} keeps the events until Ctrl-C; consume them with \
             `consumer --brokers {}`",
            broker.bootstrap_servers(),
            broker.bootstrap_servers()
        );
        shutdown.cancelled().await;
    }
    Ok(())
}

async fn send(args: SendArgs, metrics: Option<ProducerMetrics>) -> anyhow::Result<()> {
    let (brokers, embedded) = connect(&args.target, &[]).await?;
    if embedded.is_some() {
        tracing::warn!("no --brokers: sending to an embedded broker that vanishes when this command exits");
    }
    let producer = future_producer(&brokers)?;
    let now = unix_now();
    let events: Vec<Result<RatingSubmitted, String>> = if args.stdin {
        let stdin = std::io::stdin();
        let mut events = Vec::new();
        for (number, line) in stdin.lock().lines().enumerate() {
            let line = line.context("reading standard input")?;
            match crate::send::parse_rating_line(&line, now) {
                Ok(Some(event)) => events.push(Ok(event)),
                Ok(None) => {}
                Err(e) => events.push(Err(format!("line {}: {e}", number + 1))),
            }
        }
        events
    } else {
        let (Some(user), Some(movie), Some(rating)) = (args.user_id, args.movie_id, args.rating) else {
            bail!("--user-id, --movie-id and --rating are required without --stdin");
        };
        let new = schemas::events::NewRating { user_id: user, movie_id: movie, rating, timestamp: args.timestamp };
        vec![new.into_event(now).map_err(|e| e.to_string())]
    };
    let mut failures = 0;
    let mut sent = 0;
    let counters = metrics.as_ref().map(|m| m.topic(&args.target.topic));
    for event in &events {
        match event {
            Ok(event) => {
                let started = Instant::now();
                let result = send_rating(&producer, &args.target.topic, event).await;
                if let (Some(m), Some(c)) = (&metrics, &counters) {
                    match &result {
                        Ok(_) => {
                            c.sent.inc();
                            c.delivered.inc();
                            m.observe_send(started.elapsed());
                        }
                        Err(SendError::Kafka(_)) => {
                            c.sent.inc();
                            c.failures.inc();
                        }
                        Err(SendError::Invalid(_)) => {}
                    }
                }
                match result {
                    Ok(d) => {
                        sent += 1;
                        println!("{}\t{}\t{}", d.event_id, d.partition, d.offset);
                    }
                    Err(e) => {
                        failures += 1;
                        eprintln!("event {}: {e}", event.event_id);
                    }
                }
            }
            Err(reason) => {
                failures += 1;
                eprintln!("rejected {reason}");
            }
        }
    }
    eprintln!("{sent} ratings acknowledged, {failures} failed");
    if failures > 0 {
        bail!("{failures} of {} ratings were not sent", events.len());
    }
    Ok(())
}
