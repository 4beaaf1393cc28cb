//! `serving demo`: the whole system in one process, for a first look on a fresh machine.
//!
//! SQLite file + librdkafka's in-process broker (nothing to install); the catalogue (movies,
//! links) is imported, then the release's ratings and tags are replayed into the broker in time
//! order while the store's consumer persists them and the live model learns them; retrains run
//! on their schedule; the HTTP API serves throughout.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use consumer::{Embedded, OnPersisted, ReplayPlan};
use movielens::Release;
use movielens::download::{self, ML_LATEST_SMALL};
use producer::replay::Pace;
use store::{ImportOptions, Store};
use tokio_util::sync::CancellationToken;

use crate::live::LiveSettings;
use crate::startup::{Application, ServeSettings};

/// What `demo` needs.
#[derive(Debug, Clone)]
pub struct DemoSettings {
    /// The release folder.
    pub data: PathBuf,
    /// Download ml-latest-small into `data` when it is missing.
    pub download: bool,
    /// The store (default `sqlite://cinedata.db` in the current directory).
    pub database_url: String,
    /// Address to serve on.
    pub listen: SocketAddr,
    /// Replay pace.
    pub pace: Pace,
    /// Required on write endpoints when set.
    pub api_key: Option<String>,
    /// The live model's settings.
    pub live: LiveSettings,
}

/// The release at `data`, downloading ml-latest-small there first if asked to; otherwise a
/// missing release is an error saying how to get one.
fn locate(data: &Path, download: bool) -> anyhow::Result<Release> {
    let release = Release::new(data);
    if release.exists() {
        return Ok(release);
    }
    if !download {
        anyhow::bail!(
            "{} holds no MovieLens release (movies.csv and ratings.csv).\n\
             Download ml-latest-small (1 MB, checksums verified) with:\n  \
             cargo run --release -p serving -- demo --data {} --download\n\
             or see data/README.md for the GroupLens releases (ml-latest-small, ml-25m, ml-32m).",
            data.display(),
            data.display()
        );
    }
    // `fetch` unpacks into DEST/ml-latest-small: aim DEST so that this is `data`.
    let dest = match data.file_name().and_then(|n| n.to_str()) {
        Some(name) if name == ML_LATEST_SMALL.name => data.parent().unwrap_or(Path::new(".")).to_path_buf(),
        _ => data.to_path_buf(),
    };
    eprintln!("downloading {} from GroupLens into {}", ML_LATEST_SMALL.name, dest.display());
    let dir = download::fetch(&ML_LATEST_SMALL, &dest, true).context("downloading ml-latest-small")?;
    Ok(Release::new(dir))
}

/// Runs the demo until `shutdown`.
///
/// # Errors
/// The release is missing, or the store, broker or listener cannot be set up.
pub async fn run(settings: DemoSettings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let release = {
        let (data, download) = (settings.data.clone(), settings.download);
        tokio::task::spawn_blocking(move || locate(&data, download)).await??
    };
    let store = Store::connect(&settings.database_url)
        .await
        .with_context(|| format!("connecting to {}", settings.database_url))?;
    let options = ImportOptions { catalogue_only: true, progress: true, ..ImportOptions::default() };
    let report = store.import(&release, &options).await.context("importing the catalogue")?;
    eprintln!("catalogue: {} movies, {} links ({} rows rejected)", report.movies, report.links, report.rejected);

    let pipeline = consumer::Settings::new(None, settings.database_url.clone());
    let embedded = Embedded::start(&pipeline)?;
    let mut serve = ServeSettings::new(settings.database_url.clone(), settings.listen);
    serve.api_key = settings.api_key.clone();
    serve.brokers = Some(embedded.brokers().to_owned());
    serve.ratings_topic = pipeline.ratings_topic.clone();
    serve.live = settings.live.clone();
    let app = Application::build(&serve).await?;
    let addr = app.local_addr()?;
    println!("CineData demo: http://{addr}  (API docs: http://{addr}/docs)");
    println!("  curl http://{addr}/users/1/recommendations?explain=true");
    println!("  curl http://{addr}/movies/1/similar");
    println!("  curl -X POST http://{addr}/ratings -H 'content-type: application/json' \\");
    println!("       -d '{{\"userId\": 1, \"movieId\": 2, \"rating\": 5}}'");
    println!("  curl http://{addr}/model");
    println!("Kafka (embedded, alive while this runs): {}", embedded.brokers());

    // Catalogue answers cached for a second would hide what the consumer just persisted.
    let responses = app.state().responses.clone();
    let on_persisted: OnPersisted = Arc::new(move |_| responses.clear());
    let mut plan = ReplayPlan::release(release, embedded.settings(), true).await?;
    plan.options.pace = settings.pace;

    let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let replay = embedded
        .run(store.clone(), consumer::Metrics::default(), Some(on_persisted), Some(plan), shutdown.clone())
        .await;
    // The consumer only returns on shutdown or failure; either way stop the server too.
    shutdown.cancel();
    let served = server.await.context("the HTTP server task")?;
    store.close().await;
    replay?;
    served
}
