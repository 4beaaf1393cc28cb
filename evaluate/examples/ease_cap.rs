//! The quality cost of capping EASE's catalogue ([`model::Ease::max_items`]), which is how the
//! top-N model fits a catalogue of ml-25m's size (62k movies; a dense EASE over all of them is
//! 15 GB): protocol C's test split of ml-latest-small, scored for `ease` and `ease-rerank` with
//! the item model limited to its N most-liked movies.
//!
//! `cargo run --release -p evaluate --example ease_cap -- [DATA_DIR]`
//! (default `$CINEDATA_ML_SMALL`, else ../shared/data/movielens/ml-latest-small).

use evaluate::protocols::{Level, top_n_with};
use evaluate::{ModelName, splits};
use model::{Ease, Rerank};
use serde_json::json;

fn main() -> anyhow::Result<()> {
    let rows = evaluate::load_ratings(&evaluate::example_data_dir())?;
    let parts = splits::temporal_split(&rows);
    println!("| EASE movies (max_items) | ease NDCG@10 | ease coverage | ease-rerank NDCG@10 | ease-rerank coverage |");
    println!("| --- | --- | --- | --- | --- |");
    for cap in [500, 1_000, 2_000, 4_000, usize::MAX] {
        let ease = Ease { max_items: cap, ..Ease::default() };
        let plain = top_n_with(&rows, &parts, Level::Outer, ModelName::Ease, |train| {
            Ok((Box::new(ease.fit(train)?), json!({})))
        })?;
        let rerank = Rerank { ease, ..Rerank::default() };
        let reranked = top_n_with(&rows, &parts, Level::Outer, ModelName::EaseRerank, |train| {
            Ok((Box::new(rerank.fit(train)?), json!({})))
        })?;
        let label = if cap == usize::MAX { "all with a like".to_owned() } else { cap.to_string() };
        println!(
            "| {label} | {:.4} | {:.4} | {:.4} | {:.4} |",
            plain.metrics["ndcg@10"].as_f64().unwrap_or(f64::NAN),
            plain.metrics["coverage"].as_f64().unwrap_or(f64::NAN),
            reranked.metrics["ndcg@10"].as_f64().unwrap_or(f64::NAN),
            reranked.metrics["coverage"].as_f64().unwrap_or(f64::NAN)
        );
    }
    Ok(())
}
