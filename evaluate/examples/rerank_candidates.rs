//! What re-ranking fewer EASE candidates costs: `Rerank::candidates` at 100 (the default), 70
//! and 50 with the default trees, each over three seeds, by NDCG@10 and coverage on the
//! *inner* split of the top-N protocol (never on test), with each setting's time to produce
//! the 592 users' lists. Fewer candidates means fewer rows for the features and the trees,
//! which are most of a personal list's time.
//!
//! `cargo run --release -p evaluate --example rerank_candidates -- [DATA_DIR]`
//! (default `$CINEDATA_ML_SMALL`, else ../shared/data/movielens/ml-latest-small).

use evaluate::protocols::{Level, top_n_with};
use evaluate::{ModelName, splits};
use model::Rerank;
use serde_json::json;

fn main() -> anyhow::Result<()> {
    let rows = evaluate::load_ratings(&evaluate::example_data_dir())?;
    let parts = splits::temporal_split(&rows);
    println!("| candidates | seed | inner NDCG@10 | inner coverage | lists s |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    for candidates in [100, 70, 50] {
        let mut ndcg = Vec::new();
        for seed in [0, 10, 20] {
            let rerank = Rerank { candidates, seed, ..Rerank::default() };
            let report = top_n_with(&rows, &parts, Level::Inner, ModelName::EaseRerank, |train| {
                Ok((Box::new(rerank.fit(train)?), json!({})))
            })?;
            let n = report.metrics["ndcg@10"].as_f64().unwrap_or(f64::NAN);
            ndcg.push(n);
            println!(
                "| {candidates} | {seed} | {n:.4} | {:.4} | {:.2} |",
                report.metrics["coverage"].as_f64().unwrap_or(f64::NAN),
                report.predict_seconds
            );
        }
        println!("| {candidates} | mean | {:.4} | | |", ndcg.iter().sum::<f64>() / ndcg.len() as f64);
    }
    Ok(())
}
