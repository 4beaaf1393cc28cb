//! `serving demo`: the whole system in one process, for a first look on a fresh machine.
//!
//! SQLite file + librdkafka's in-process broker (nothing to install); the catalogue (movies,
//! links) is imported, then the release's ratings and tags are replayed into the broker in time
//! order while the store's consumer persists them and the live model learns them; retrains run
//! on their schedule; the HTTP API serves throughout.
//!
//! With an experiment (`--experiment FILE`) the replayed users also look: before a user's
//! first rating and every fifth after it, their list is asked for through the list endpoint's
//! handler (their variant's model answers, the impression is logged), and their real later
//! ratings decide which variant's lists they liked: `GET /experiments/{name}` shows a winner
//! emerge.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use consumer::{Embedded, OnPersisted, ReplayPlan};
use movielens::Release;
use movielens::download::{self, ML_LATEST_SMALL};
use producer::replay::Pace;
use schemas::ab::{ExperimentConfig, ExperimentStatus};
use secrecy::SecretString;
use store::{DatabaseUrl, ImportOptions, Store};
use tokio_util::sync::CancellationToken;

use crate::live::LiveSettings;
use crate::server::ServerLimits;
use crate::startup::{Application, ServeSettings};

/// What `demo` needs.
#[derive(Debug, Clone)]
pub struct DemoSettings {
    /// The release folder.
    pub data: PathBuf,
    /// Download ml-latest-small into `data` when it is missing.
    pub download: bool,
    /// The store (default `sqlite://cinedata.db` in the current directory).
    pub database_url: DatabaseUrl,
    /// Address to serve on.
    pub listen: SocketAddr,
    /// Replay pace.
    pub pace: Pace,
    /// Required on write endpoints when set.
    pub api_key: Option<SecretString>,
    /// The live model's settings.
    pub live: LiveSettings,
    /// The HTTP server's timeouts and connection limit.
    pub limits: ServerLimits,
    /// The journal of accepted ratings (see [`crate::journal`]); `None` keeps none.
    pub journal: Option<PathBuf>,
    /// Where the web interface's posters come from.
    pub posters: crate::ui::posters::PosterSettings,
    /// The topic served lists are logged to and persisted from; empty logs nothing.
    pub impressions_topic: String,
    /// An A/B experiment to run on the replayed stream.
    pub experiment: Option<DemoExperiment>,
}

/// An experiment file: its `name` and the configuration `PUT /experiments/{name}` takes.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoExperiment {
    /// The experiment's name.
    pub name: String,
    /// Its configuration (validated).
    pub config: ExperimentConfig,
}

/// Replay pace of a demo with an experiment when none is given: ml-latest-small in about
/// three minutes, slow enough for every replayed user's list to be asked for as they rate.
pub const EXPERIMENT_RATE: f64 = 500.0;

impl DemoExperiment {
    /// Parses and validates an experiment file.
    ///
    /// # Errors
    /// The file cannot be read, is not JSON of that shape, or the configuration is invalid.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("the experiment file {}", path.display()))
    }

    /// Parses and validates an experiment given as JSON text.
    ///
    /// # Errors
    /// Not JSON of that shape, or an invalid configuration.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut value: serde_json::Value = serde_json::from_str(text)?;
        let name = match value.as_object_mut().and_then(|o| o.remove("name")) {
            Some(serde_json::Value::String(name)) if schemas::ab::valid_name(&name) => name,
            _ => anyhow::bail!("it needs a \"name\": 1 to 64 letters, digits, '-', '_' or '.'"),
        };
        let config: ExperimentConfig = serde_json::from_value(value)?;
        config.validate().map_err(anyhow::Error::msg)?;
        Ok(Self { name, config })
    }
}

impl DemoSettings {
    /// A demo of the release at `data` keeping its SQLite file and ratings journal in `dir`:
    /// an ephemeral port on 127.0.0.1, the replay at full speed, no API key, the default live
    /// settings (no snapshots), generated posters. Tests and embedders start here and adjust.
    pub fn in_dir(data: PathBuf, dir: &Path) -> Self {
        DemoSettings {
            data,
            download: false,
            database_url: format!("sqlite://{}", dir.join("cinedata.db").display()).into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            pace: Pace::Max,
            api_key: None,
            live: LiveSettings::new(),
            limits: ServerLimits::default(),
            journal: Some(dir.join("ratings.journal")),
            posters: crate::ui::posters::PosterSettings::new(),
            impressions_topic: producer::topics::IMPRESSIONS.into(),
            experiment: None,
        }
    }
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

/// A started demo: catalogue imported, broker up, app bound; [`Demo::run`] sets it going.
pub struct Demo {
    app: Application,
    embedded: Embedded,
    store: Store,
    plan: ReplayPlan,
    address: SocketAddr,
}

/// Configures `experiment` and starts it, stopping another one left running in the store.
async fn start_experiment(state: &crate::state::AppState, experiment: &DemoExperiment) -> anyhow::Result<()> {
    let running = state.experiments.list().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    for other in running.iter().filter(|e| e.status == ExperimentStatus::Running && e.name != experiment.name) {
        state.experiments.stop(&other.name).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    state.experiments.put(&experiment.name, experiment.config.clone()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    state.experiments.start(&experiment.name).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!("experiment {:?} running: {} variants", experiment.name, experiment.config.variants.len());
    Ok(())
}

/// A replayed user looks at their list before their first rating and then before every
/// `LOOK_EVERY`-th: a page view between ratings, as on a site.
const LOOK_EVERY: u32 = 5;
/// A look leaves out the user's latest this many rated movies: sent, perhaps not yet learned
/// by the live model, they must not be shown (a movie rated before it is shown is no hit).
const RECENT: usize = 100;

#[derive(Default)]
struct Viewer {
    since_look: u32,
    recent: std::collections::VecDeque<i64>,
}

/// The replay's events with the replayed users looking at their lists as they go: before a
/// user's rating is sent (when a look is due), their list is asked for through the list
/// endpoint's handler, so the experiment's variant answers and the impression is logged. Runs
/// on the replay's blocking thread, which waits for each look.
struct Looking {
    events: Box<dyn Iterator<Item = producer::Outgoing> + Send>,
    state: crate::state::AppState,
    runtime: tokio::runtime::Handle,
    viewers: HashMap<i64, Viewer>,
}

impl Iterator for Looking {
    type Item = producer::Outgoing;

    fn next(&mut self) -> Option<producer::Outgoing> {
        let event = self.events.next()?;
        if let producer::Outgoing::Rating(r) = &event {
            let viewer = self.viewers.entry(r.user_id).or_default();
            if viewer.since_look == 0 || viewer.since_look >= LOOK_EVERY {
                viewer.since_look = 0;
                let mut query = "n=10".to_owned();
                if !viewer.recent.is_empty() {
                    let ids: Vec<String> = viewer.recent.iter().map(i64::to_string).collect();
                    query = format!("{query}&exclude={}", ids.join(","));
                }
                let looked = self.runtime.block_on(crate::routes::recommend::list_through_handler(
                    &self.state,
                    r.user_id,
                    &query,
                ));
                if let Err(error) = looked {
                    tracing::debug!(%error, user = r.user_id, "a replayed user's list");
                }
            }
            viewer.since_look += 1;
            if viewer.recent.len() == RECENT {
                viewer.recent.pop_front();
            }
            viewer.recent.push_back(r.movie_id);
        }
        Some(event)
    }
}

impl Demo {
    /// Finds (or downloads) the release, imports the catalogue, starts the embedded broker and
    /// builds the app on its listener.
    ///
    /// # Errors
    /// The release is missing, or the store, broker or listener cannot be set up.
    pub async fn start(settings: DemoSettings) -> anyhow::Result<Self> {
        let release = {
            let (data, download) = (settings.data.clone(), settings.download);
            tokio::task::spawn_blocking(move || locate(&data, download)).await??
        };
        let store = Store::connect(settings.database_url.expose())
            .await
            .with_context(|| format!("connecting to {}", settings.database_url))?;
        let options = ImportOptions { catalogue_only: true, progress: true, ..ImportOptions::default() };
        let report = store.import(&release, &options).await.context("importing the catalogue")?;
        eprintln!("catalogue: {} movies, {} links ({} rows rejected)", report.movies, report.links, report.rejected);

        let pipeline = consumer::Settings {
            impressions_topic: settings.impressions_topic.clone(),
            ..consumer::Settings::new(None, settings.database_url.clone())
        };
        let embedded = Embedded::start(&pipeline)?;
        // Ratings acknowledged before a crash and not yet in the store go to the broker again.
        if let Some(journal) = &settings.journal {
            let resend = producer::future_producer(embedded.brokers()).context("a producer for the journal")?;
            let recovered = crate::journal::recover(journal, &store, &resend, &pipeline.ratings_topic)
                .await
                .context("recovering the ratings journal")?;
            if recovered.produced > 0 {
                eprintln!("journal: {} acknowledged ratings not yet stored were produced again", recovered.produced);
            }
        }
        let mut serve = ServeSettings::new(settings.database_url.clone(), settings.listen);
        serve.journal.clone_from(&settings.journal);
        serve.api_key = settings.api_key.clone();
        serve.brokers = Some(embedded.brokers().to_owned());
        serve.ratings_topic = pipeline.ratings_topic.clone();
        serve.impressions_topic = pipeline.impressions_topic.clone();
        serve.live = settings.live.clone();
        serve.limits = settings.limits.clone();
        serve.posters = settings.posters.clone();
        let app = Application::build(&serve).await?;
        let address = app.local_addr()?;
        let mut plan = ReplayPlan::release(release, embedded.settings(), true).await?;
        plan.options.pace = settings.pace;
        if let Some(experiment) = &settings.experiment {
            start_experiment(app.state(), experiment).await?;
            if matches!(settings.pace, Pace::Max) {
                plan.options.pace = Pace::Rate(EXPERIMENT_RATE);
            }
            let events = std::mem::replace(&mut plan.events, Box::new(std::iter::empty()));
            plan.events = Box::new(Looking {
                events,
                state: app.state().clone(),
                runtime: tokio::runtime::Handle::current(),
                viewers: HashMap::new(),
            });
        }
        Ok(Self { app, embedded, store, plan, address })
    }

    /// Where the API listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The embedded broker's bootstrap servers (reachable from other processes while this runs).
    pub fn brokers(&self) -> &str {
        self.embedded.brokers()
    }

    /// Serves, replays and consumes until `shutdown`.
    ///
    /// # Errors
    /// The consumer, the replay or the server failed.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self { app, embedded, store, plan, .. } = self;
        // Catalogue answers cached for a second would hide what the consumer just persisted,
        // and retrains count what is in the store.
        let (responses, live, retrainer) =
            (app.state().responses.clone(), app.state().live.clone(), app.state().retrainer.clone());
        live.count_persisted_ratings();
        let on_persisted: OnPersisted = Arc::new(move |ratings| {
            responses.clear();
            live.persisted(ratings.len() as u64);
        });
        // The in-process consumer's and replay's families go on the service's /metrics.
        let registry = app.state().metrics.registry().clone();
        let metrics = consumer::Metrics::with_registry(&registry).context("registering the consumer's metrics")?;
        let mut plan = plan;
        plan.options.metrics =
            Some(producer::metrics::ProducerMetrics::register(&registry).context("registering the replay's metrics")?);
        // Once the whole release is in the store, one more retrain trains on all of it.
        let total = plan.total.unwrap_or(u64::MAX);
        let (handled, stop) = (metrics.clone(), shutdown.clone());
        tokio::spawn(async move {
            while handled.handled() < total {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
            tracing::info!(events = total, "replay persisted: retraining on all of it");
            while !retrainer.request("replay") {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        });
        let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        let replay = embedded.run(store.clone(), metrics, Some(on_persisted), Some(plan), shutdown.clone()).await;
        // The consumer only returns on shutdown or failure; either way stop the server too.
        shutdown.cancel();
        let served = server.await.context("the HTTP server task")?;
        store.close().await;
        replay?;
        served
    }
}

/// Runs the demo until `shutdown`, printing where to look.
///
/// # Errors
/// See [`Demo::start`] and [`Demo::run`].
pub async fn run(settings: DemoSettings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let demo = Demo::start(settings).await?;
    let addr = demo.address();
    println!("CineData demo: http://{addr}  (API docs: http://{addr}/docs)");
    println!("  curl http://{addr}/users/1/recommendations?explain=true");
    println!("  curl http://{addr}/movies/1/similar");
    println!("  curl -X POST http://{addr}/ratings -H 'content-type: application/json' \\");
    println!("       -d '{{\"userId\": 1, \"movieId\": 2, \"rating\": 5}}'");
    println!("  curl http://{addr}/model");
    println!("Kafka (embedded, alive while this runs): {}", demo.brokers());
    demo.run(shutdown).await
}
