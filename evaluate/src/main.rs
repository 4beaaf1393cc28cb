//! `evaluate --data DIR --protocol cv|prequential|topn [--model NAME]... [--folds FILE]
//! [--split FILE] [--inner] [--json]`: runs the protocols of `EVALUATION.md` and prints a
//! Markdown table, or with `--json` a JSON array with one object per model.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use evaluate::{Level, ModelName, Protocol, Settings};

/// Evaluates CineData's models on a MovieLens-shaped release.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Release folder with ratings.csv and movies.csv.
    #[arg(long)]
    data: PathBuf,
    /// cv (5-fold rating prediction), prequential (test-then-train) or topn (temporal top-10).
    #[arg(long, value_enum)]
    protocol: Protocol,
    /// Model to run (repeatable); default every model that applies to the protocol.
    #[arg(long = "model")]
    models: Vec<ModelName>,
    /// userId,movieId,fold file to use instead of computing the folds (cv).
    #[arg(long)]
    folds: Option<PathBuf>,
    /// userId,movieId,split,inner file to use instead of computing the split (topn).
    #[arg(long)]
    split: Option<PathBuf>,
    /// topn: train on the inner train part and score the validation part (for tuning).
    #[arg(long)]
    inner: bool,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings = Settings {
        data: args.data,
        protocol: args.protocol,
        models: args.models,
        folds: args.folds,
        split: args.split,
        level: if args.inner { Level::Inner } else { Level::Outer },
    };
    let reports = evaluate::run(&settings)
        .with_context(|| format!("evaluating {} on {}", settings.protocol, settings.data.display()))?;
    if args.json {
        let array: Vec<_> = reports.iter().map(|r| r.to_json()).collect();
        println!("{}", serde_json::to_string_pretty(&array).context("writing JSON")?);
    } else {
        print!("{}", evaluate::table(&reports));
    }
    Ok(())
}
