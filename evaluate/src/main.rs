//! `evaluate --data DIR --protocol cv|prequential|topn|stream-topn [--model NAME]... [--folds FILE]
//! [--split FILE] [--inner] [--refit-every N] [--windows N] [--json]`: runs the protocols of
//! `EVALUATION.md` and streaming top-N (`evaluate/STREAM-TOPN.md`) and prints a Markdown
//! table, or with `--json` a JSON array with one object per model. Each model's result
//! is then recorded in the store (`--no-record` skips it) and, with `--mlflow-uri`, logged to
//! MLflow.
//!
//! `evaluate --compare [--protocol P] [--model M] [--data DIR] [--limit N] [--json]` prints the
//! recorded history instead, newest first, without running anything.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use evaluate::record::{RunInfo, compare_table};
use evaluate::{Level, ModelName, Protocol, Settings, StreamSettings};
use mlflow::MlflowClient;
use schemas::ExperimentRecord;
use schemas::experiments::unix_now;
use store::{DatabaseUrl, ExperimentQuery, Store};

/// Evaluates CineData's models on a MovieLens-shaped release, records the results and compares
/// them with earlier runs.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Release folder with ratings.csv and movies.csv (with --compare: only records on the same
    /// ratings, by fingerprint).
    #[arg(long, required_unless_present = "compare")]
    data: Option<PathBuf>,
    /// cv (5-fold rating prediction), prequential (test-then-train), topn (temporal top-10) or
    /// stream-topn (each liked next movie against the top-10 shown just before it).
    #[arg(long, value_enum, required_unless_present = "compare")]
    protocol: Option<Protocol>,
    /// Model to run (repeatable); default every model that applies to the protocol. With
    /// --compare: only this model's records (any recorded name).
    #[arg(long = "model")]
    models: Vec<String>,
    /// userId,movieId,fold file to use instead of computing the folds (cv).
    #[arg(long, conflicts_with = "compare")]
    folds: Option<PathBuf>,
    /// userId,movieId,split,inner file to use instead of computing the split (topn).
    #[arg(long, conflicts_with = "compare")]
    split: Option<PathBuf>,
    /// topn: train on the inner train part and score the validation part (for tuning).
    #[arg(long, conflicts_with = "compare")]
    inner: bool,
    /// stream-topn: refit the batch models on every rating streamed so far each time this many
    /// more have streamed (the demo retrains every 25,000).
    #[arg(long, default_value_t = evaluate::stream_topn::REFIT_EVERY, value_parser = at_least_one, conflicts_with = "compare")]
    refit_every: usize,
    /// stream-topn: report the scored events in this many consecutive windows of equal size.
    #[arg(long, default_value_t = evaluate::stream_topn::WINDOWS, value_parser = at_least_one, conflicts_with = "compare")]
    windows: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Print the recorded experiments, newest first, instead of running anything.
    #[arg(long)]
    compare: bool,
    /// With --compare: at most this many records.
    #[arg(long, requires = "compare")]
    limit: Option<i64>,
    /// Store the experiment records go to: sqlite://FILE or postgres://USER@HOST:PORT/DB.
    #[arg(long, env = "CINEDATA_DATABASE_URL", default_value = "sqlite://cinedata.db")]
    database_url: DatabaseUrl,
    /// Do not record the results in the store.
    #[arg(long, conflicts_with = "compare")]
    no_record: bool,
    /// MLflow tracking server (http[s]://HOST:PORT): also log each result there as a run.
    #[arg(long, env = "MLFLOW_TRACKING_URI", conflicts_with = "compare")]
    mlflow_uri: Option<String>,
    /// MLflow experiment name; default cinedata-<protocol>.
    #[arg(long, env = "CINEDATA_MLFLOW_EXPERIMENT", conflicts_with = "compare")]
    mlflow_experiment: Option<String>,
}

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not a whole number of at least 1")),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")
}

fn compare(args: &Args) -> anyhow::Result<()> {
    if args.models.len() > 1 {
        Args::command().error(clap::error::ErrorKind::ArgumentConflict, "--compare takes at most one --model").exit();
    }
    let data_fingerprint = match &args.data {
        Some(dir) => {
            let rows = evaluate::load_ratings(dir).with_context(|| format!("reading {}", dir.display()))?;
            Some(evaluate::snapshot(dir, &rows).fingerprint)
        }
        None => None,
    };
    let query = ExperimentQuery {
        protocol: args.protocol.map(|p| p.as_str().to_owned()),
        model: args.models.first().cloned(),
        kind: None,
        data_fingerprint,
        limit: args.limit,
    };
    let records = runtime()?.block_on(async {
        let store = Store::connect(args.database_url.expose()).await.context("connecting to the store")?;
        let records = store.experiments(&query).await.context("reading the experiment records");
        store.close().await;
        records
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&records).context("writing JSON")?);
    } else {
        print!("{}", compare_table(&records));
    }
    Ok(())
}

fn record(database_url: &DatabaseUrl, records: &mut [ExperimentRecord]) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let store = Store::connect(database_url.expose()).await.context("connecting to the store")?;
        let mut result = Ok(());
        for r in records.iter_mut() {
            match store.record_experiment(r).await {
                Ok(id) => r.id = Some(id),
                Err(e) => {
                    result = Err(e).context("writing the experiment record");
                    break;
                }
            }
        }
        store.close().await;
        result
    })
}

fn log_to_mlflow(uri: &str, experiment: Option<&str>, records: &[ExperimentRecord]) -> anyhow::Result<()> {
    let client = MlflowClient::new(uri)?;
    let mut experiments: HashMap<String, String> = HashMap::new();
    for r in records {
        let name = experiment.map_or_else(|| mlflow::experiment_name(r), str::to_owned);
        let experiment_id = match experiments.get(&name) {
            Some(id) => id.clone(),
            None => {
                let id = client.experiment_id(&name).with_context(|| format!("MLflow experiment {name}"))?;
                experiments.insert(name.clone(), id.clone());
                id
            }
        };
        let run_id = client.log_record(&experiment_id, r).with_context(|| format!("logging {} to MLflow", r.model))?;
        eprintln!("MLflow: {} {} is run {run_id} of experiment {name} ({experiment_id})", r.model, r.protocol);
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.compare {
        return compare(&args);
    }
    let (Some(data), Some(protocol)) = (args.data.clone(), args.protocol) else {
        unreachable!("clap requires --data and --protocol without --compare");
    };
    let models = match args.models.iter().map(|m| m.parse::<ModelName>()).collect::<Result<Vec<_>, _>>() {
        Ok(models) => models,
        Err(e) => Args::command().error(clap::error::ErrorKind::InvalidValue, format!("--model: {e}")).exit(),
    };
    let settings = Settings {
        data,
        protocol,
        models,
        folds: args.folds.clone(),
        split: args.split.clone(),
        level: if args.inner { Level::Inner } else { Level::Outer },
        stream: StreamSettings { refit_every: args.refit_every, windows: args.windows },
    };
    let started_at = unix_now();
    let evaluation = evaluate::evaluate(&settings)
        .with_context(|| format!("evaluating {} on {}", settings.protocol, settings.data.display()))?;
    let reports = &evaluation.reports;
    if args.json {
        let array: Vec<_> = reports.iter().map(|r| r.to_json()).collect();
        println!("{}", serde_json::to_string_pretty(&array).context("writing JSON")?);
    } else {
        print!("{}", evaluate::table(reports));
    }

    let mlflow_uri = args.mlflow_uri.as_deref().map(str::trim).filter(|u| !u.is_empty());
    if args.no_record && mlflow_uri.is_none() {
        return Ok(());
    }
    let info = RunInfo::here(evaluation.data, started_at);
    let mut records: Vec<ExperimentRecord> = reports.iter().map(|r| r.to_record(&info)).collect();
    if !args.no_record {
        record(&args.database_url, &mut records).context("recording the results (--no-record skips this)")?;
        let ids: Vec<String> = records.iter().filter_map(|r| r.id).map(|id| id.to_string()).collect();
        let noun = if ids.len() == 1 { "experiment" } else { "experiments" };
        eprintln!("recorded {noun} {} (evaluate --compare lists them)", ids.join(", "));
    }
    if let Some(uri) = mlflow_uri {
        let experiment = args.mlflow_experiment.as_deref().map(str::trim).filter(|e| !e.is_empty());
        log_to_mlflow(uri, experiment, &records)?;
    }
    Ok(())
}
