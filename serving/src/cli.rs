//! The `serving` command line. Every flag (but the demo's pace) can also come from a
//! `CINEDATA_*` variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use movielens::Release;
use secrecy::{ExposeSecret, SecretString};
use store::{DatabaseUrl, ImportOptions, Store};

use producer::replay::Pace;

use crate::demo::DemoSettings;
use crate::live::LiveSettings;
use crate::live::stream::StreamSettings;
use crate::server::ServerLimits;
use crate::startup::{Application, ServeSettings};
use crate::ui::posters::PosterSettings;

/// CineData's HTTP service and catalogue tools.
#[derive(Debug, Parser)]
#[command(name = "serving", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load a MovieLens release folder (movies.csv, ratings.csv, tags.csv, links.csv).
    Import(ImportArgs),
    /// Serve the HTTP API and live recommendations.
    Serve(ServeArgs),
    /// The whole system in one process: embedded broker, SQLite, catalogue import, a replay of
    /// the release's ratings, the live model and the HTTP API.
    Demo(DemoArgs),
}

/// The live model's settings, shared by `serve` and `demo`.
#[derive(Debug, Args)]
struct LiveArgs {
    /// Where model snapshots (with the Kafka offsets they include) are kept; restarts resume
    /// from the newest. Empty disables snapshots (a `String`: clap refuses an empty path).
    #[arg(long, env = "CINEDATA_SNAPSHOT_DIR", default_value = "cinedata-snapshots")]
    snapshot_dir: String,
    /// Seconds between snapshots (taken only when events arrived).
    #[arg(long, env = "CINEDATA_SNAPSHOT_INTERVAL", default_value_t = 60.0)]
    snapshot_interval: f64,
    /// Seconds between scheduled full retrains; 0 disables the schedule.
    #[arg(long, env = "CINEDATA_RETRAIN_INTERVAL", default_value_t = 3600.0)]
    retrain_interval: f64,
    /// Retrain after this many new rating events; 0 disables (default: 100000 for `serve`,
    /// 25000 for `demo`).
    #[arg(long, env = "CINEDATA_RETRAIN_EVERY")]
    retrain_every: Option<u64>,
    /// Group id of the live model's consumer (each replica reads every partition itself).
    #[arg(long = "model-group", env = "CINEDATA_MODEL_GROUP", default_value = "cinedata-serving")]
    model_group: String,
    /// MLflow tracking server: each retrain's experiment record is also logged there as a run.
    #[arg(long, env = "MLFLOW_TRACKING_URI")]
    mlflow_uri: Option<String>,
    /// Least seconds between two recomputations of a user's list for their own ratings: a
    /// rating after a quiet spell re-ranks their next list at once; faster ones meanwhile get
    /// the previous list without the movies rated since. 0 recomputes on every own rating.
    #[arg(long, env = "CINEDATA_LIST_REFRESH", default_value_t = 1.0)]
    list_refresh: f64,
}

impl LiveArgs {
    fn settings(&self, default_every: u64) -> LiveSettings {
        let mut live = LiveSettings::new();
        live.snapshot_dir = (!self.snapshot_dir.is_empty()).then(|| PathBuf::from(&self.snapshot_dir));
        live.snapshot_interval = Duration::from_secs_f64(self.snapshot_interval.max(1.0));
        live.retrain.interval = (self.retrain_interval > 0.0).then(|| Duration::from_secs_f64(self.retrain_interval));
        live.retrain.every_ratings = self.retrain_every.unwrap_or(default_every);
        live.retrain.mlflow_uri.clone_from(&self.mlflow_uri);
        live.list_refresh = Duration::try_from_secs_f64(self.list_refresh.max(0.0)).unwrap_or(Duration::MAX);
        live
    }
}

/// The HTTP server's limits, shared by `serve` and `demo`.
#[derive(Debug, Args)]
struct HttpArgs {
    /// Seconds a client has to send a complete request head, from connecting or from the end
    /// of its previous response (so also the idle keep-alive timeout).
    #[arg(long, env = "CINEDATA_HEADER_TIMEOUT", default_value_t = 10.0)]
    header_timeout: f64,
    /// Longest pause in seconds while a request body arrives before the request is answered 408.
    #[arg(long, env = "CINEDATA_BODY_TIMEOUT", default_value_t = 10.0)]
    body_timeout: f64,
    /// Open client connections at most (lowered to fit the open-file limit); past it a new
    /// connection is answered 503 and closed.
    #[arg(long, env = "CINEDATA_MAX_CONNECTIONS", default_value_t = 4096)]
    max_connections: usize,
}

impl HttpArgs {
    fn limits(&self) -> ServerLimits {
        ServerLimits {
            header_timeout: Duration::from_secs_f64(self.header_timeout.max(0.1)),
            body_timeout: Duration::from_secs_f64(self.body_timeout.max(0.1)),
            max_connections: self.max_connections.max(1),
        }
    }
}

/// Parses a key given on the command line or in the environment into a [`SecretString`], so
/// no `Debug` of the arguments or settings can show it.
fn secret(text: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(text))
}

/// Posters for the web interface; without a key they are generated SVGs.
#[derive(Debug, Args)]
struct PosterArgs {
    /// TMDb API key: posters come from TMDb (each movie's looked up once, then remembered).
    #[arg(long, env = "CINEDATA_TMDB_API_KEY", hide_env_values = true, value_parser = secret)]
    tmdb_api_key: Option<SecretString>,
    /// OMDb API key, used when there is no TMDb key.
    #[arg(long, env = "CINEDATA_OMDB_API_KEY", hide_env_values = true, value_parser = secret)]
    omdb_api_key: Option<SecretString>,
}

impl PosterArgs {
    fn settings(&self) -> PosterSettings {
        let mut posters = PosterSettings::new();
        let given = |key: &Option<SecretString>| key.clone().filter(|k| !k.expose_secret().trim().is_empty());
        posters.tmdb_api_key = given(&self.tmdb_api_key);
        posters.omdb_api_key = given(&self.omdb_api_key);
        posters
    }
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// A MovieLens release folder (e.g. ../shared/data/movielens/ml-latest-small).
    #[arg(long, env = "CINEDATA_DATA")]
    data: PathBuf,
    /// Download ml-latest-small from GroupLens into `--data` (checksums verified) if it is missing.
    #[arg(long)]
    download: bool,
    #[command(flatten)]
    database: Database,
    /// Address to listen on.
    #[arg(long, env = "CINEDATA_LISTEN", default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Replay pace: `max`, or a factor of real time following the ratings' timestamps
    /// (e.g. `1e7` plays ml-latest-small's 22 years in about 70 s).
    #[arg(long, default_value = "max", value_parser = Pace::speed, conflicts_with = "rate")]
    speed: Pace,
    /// Replay pace in events per second instead of `--speed`.
    #[arg(long)]
    rate: Option<f64>,
    /// Require this key in the `x-api-key` header on write endpoints.
    #[arg(long, env = "CINEDATA_API_KEY", hide_env_values = true, value_parser = secret)]
    api_key: Option<SecretString>,
    #[command(flatten)]
    live: LiveArgs,
    #[command(flatten)]
    http: HttpArgs,
    /// The journal where each rating `POST /ratings` accepts is synced before its 202; at start
    /// those not yet in the store are produced again (the embedded broker is in memory).
    /// Empty disables it (a 202 then survives only while the process does).
    #[arg(long, env = "CINEDATA_JOURNAL", default_value = "cinedata-ratings.journal")]
    journal: String,
    #[command(flatten)]
    posters: PosterArgs,
    /// The topic every served list is logged to and persisted from; empty logs nothing.
    #[arg(long, env = "CINEDATA_IMPRESSIONS_TOPIC", default_value = producer::topics::IMPRESSIONS)]
    impressions_topic: String,
    /// Run this A/B experiment on the replayed stream (a JSON file: `name` plus the body of
    /// `PUT /experiments/{name}`): replayed users are shown their variant's lists as they rate,
    /// and their real later ratings decide which variant wins (`GET /experiments/{name}`).
    #[arg(long, env = "CINEDATA_EXPERIMENT")]
    experiment: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct Database {
    /// `sqlite://FILE` (created if missing) or `postgres://USER@HOST/DB`.
    #[arg(long, env = "CINEDATA_DATABASE_URL", default_value = "sqlite://cinedata.db")]
    database_url: DatabaseUrl,
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// The release folder, e.g. data/ml-latest-small.
    #[arg(long, env = "CINEDATA_DATA")]
    data: PathBuf,
    #[command(flatten)]
    database: Database,
    /// Rows per write transaction.
    #[arg(long, env = "CINEDATA_BATCH_SIZE", default_value_t = 100_000)]
    batch_size: usize,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    database: Database,
    /// Address to listen on.
    #[arg(long, env = "CINEDATA_LISTEN", default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Require this key in the `x-api-key` header on write endpoints.
    #[arg(long, env = "CINEDATA_API_KEY", hide_env_values = true, value_parser = secret)]
    api_key: Option<SecretString>,
    /// Seconds `/analytics` figures are reused before being recomputed.
    #[arg(long, env = "CINEDATA_ANALYTICS_TTL", default_value_t = 5.0)]
    analytics_ttl: f64,
    /// Seconds a catalogue answer is reused for the same URL (0 disables the cache).
    #[arg(long, env = "CINEDATA_CACHE_TTL", default_value_t = 1.0)]
    cache_ttl: f64,
    /// Kafka bootstrap servers `POST /ratings` produces to (without them it answers 503).
    #[arg(long, env = "CINEDATA_BROKERS")]
    brokers: Option<String>,
    /// The ratings topic (`POST /ratings` produces to it, the live model follows it).
    #[arg(long = "topic", env = "CINEDATA_RATINGS_TOPIC", default_value = producer::topics::RATINGS)]
    ratings_topic: String,
    /// The topic every served list is logged to (with `--brokers`); empty logs nothing.
    #[arg(long, env = "CINEDATA_IMPRESSIONS_TOPIC", default_value = producer::topics::IMPRESSIONS)]
    impressions_topic: String,
    #[command(flatten)]
    live: LiveArgs,
    #[command(flatten)]
    http: HttpArgs,
    #[command(flatten)]
    posters: PosterArgs,
}

/// Runs one subcommand to completion.
///
/// # Errors
/// Whatever the subcommand fails with, with context.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Import(args) => import(args).await,
        Command::Serve(args) => serve(args).await,
        Command::Demo(args) => demo(args).await,
    }
}

async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let release = Release::new(&args.data);
    if !release.exists() {
        anyhow::bail!(
            "{} has no movies.csv and ratings.csv; see data/README.md for how to download a MovieLens release",
            args.data.display()
        );
    }
    let store = Store::connect(args.database.database_url.expose())
        .await
        .with_context(|| format!("connecting to {}", args.database.database_url))?;
    let options = ImportOptions { batch_size: args.batch_size, progress: true, ..Default::default() };
    let report = store.import(&release, &options).await.context("importing")?;
    store.close().await;
    eprintln!(
        "imported {} movies, {} ratings, {} tags, {} links in {:.2} s; {} rows rejected",
        report.movies,
        report.ratings,
        report.tags,
        report.links,
        report.elapsed.as_secs_f64(),
        report.rejected
    );
    for e in &report.errors {
        eprintln!("  rejected {e}");
    }
    if report.rejected as usize > report.errors.len() {
        eprintln!("  ... and {} more", report.rejected as usize - report.errors.len());
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut live = args.live.settings(100_000);
    if let Some(brokers) = &args.brokers {
        live.stream = Some(StreamSettings {
            brokers: brokers.clone(),
            topic: args.ratings_topic.clone(),
            group: args.live.model_group.clone(),
        });
    }
    let settings = ServeSettings {
        database_url: args.database.database_url,
        listen: args.listen,
        api_key: args.api_key,
        analytics_ttl: Duration::from_secs_f64(args.analytics_ttl.max(0.0)),
        cache_ttl: Duration::from_secs_f64(args.cache_ttl.max(0.0)),
        brokers: args.brokers,
        ratings_topic: args.ratings_topic,
        impressions_topic: args.impressions_topic,
        live,
        limits: args.http.limits(),
        journal: None,
        posters: args.posters.settings(),
    };
    let app = Application::build(&settings).await?;
    let addr = app.local_addr()?;
    tracing::info!(%addr, "serving; API docs at http://{addr}/docs");
    app.run_until_stopped(runtime::shutdown::on_signal()).await
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let pace = match args.rate {
        Some(r) if r > 0.0 && r.is_finite() => Pace::Rate(r),
        Some(r) => anyhow::bail!("--rate must be a positive number, got {r}"),
        None => args.speed,
    };
    let settings = DemoSettings {
        data: args.data,
        download: args.download,
        database_url: args.database.database_url,
        listen: args.listen,
        pace,
        api_key: args.api_key,
        live: args.live.settings(25_000),
        limits: args.http.limits(),
        journal: (!args.journal.is_empty()).then(|| PathBuf::from(&args.journal)),
        posters: args.posters.settings(),
        impressions_topic: args.impressions_topic,
        experiment: match &args.experiment {
            Some(path) => Some(crate::demo::DemoExperiment::read(path)?),
            None => None,
        },
    };
    crate::demo::run(settings, runtime::shutdown::on_signal()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live_settings(args: &[&str]) -> LiveSettings {
        let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        match cli.command {
            Command::Serve(serve) => serve.live.settings(100_000),
            Command::Demo(demo) => demo.live.settings(25_000),
            Command::Import(_) => unreachable!("not an import"),
        }
    }

    #[test]
    fn an_empty_snapshot_dir_disables_snapshots() {
        assert_eq!(live_settings(&["serving", "serve", "--snapshot-dir", ""]).snapshot_dir, None);
        assert_eq!(live_settings(&["serving", "demo", "--data", "x", "--snapshot-dir="]).snapshot_dir, None);
        assert_eq!(
            live_settings(&["serving", "serve", "--snapshot-dir", "snaps"]).snapshot_dir,
            Some(PathBuf::from("snaps"))
        );
    }
}
