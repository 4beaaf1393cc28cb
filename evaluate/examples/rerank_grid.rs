//! The hyper-parameter search behind `model::Rerank::default()`: one setting at a time around
//! the first guess (round 1), then the winners together (round 2), each scored by NDCG@10 on
//! the *inner* split of the top-N protocol (train on the first 80% of each user's training
//! ratings, test on the rest), never on test.
//!
//! `cargo run --release -p evaluate --example rerank_grid -- [DATA_DIR]`
//! (default `$CINEDATA_ML_SMALL`, else ../shared/data/movielens/ml-latest-small).

use evaluate::protocols::{Level, top_n_with};
use evaluate::{ModelName, splits};
use model::Rerank;
use serde_json::json;

fn main() -> anyhow::Result<()> {
    let rows = evaluate::load_ratings(&evaluate::example_data_dir())?;
    let parts = splits::temporal_split(&rows);

    // Round 1 varies one setting at a time around the first guess (the default before the
    // search: 300 rounds, min hessian 4); round 2's winner became `Rerank::default()`.
    let base = Rerank { trees: 300, min_leaf_weight: 4.0, ..Rerank::default() };
    let mut grid: Vec<(String, Rerank)> = vec![("first guess".into(), base.clone())];
    for candidates in [50, 200] {
        grid.push((format!("candidates {candidates}"), Rerank { candidates, ..base.clone() }));
    }
    for trees in [150, 600] {
        grid.push((format!("trees {trees}"), Rerank { trees, ..base.clone() }));
    }
    for max_leaves in [3, 15] {
        grid.push((format!("max_leaves {max_leaves}"), Rerank { max_leaves, ..base.clone() }));
    }
    for min_leaf_weight in [1.0, 16.0] {
        grid.push((format!("min_leaf_weight {min_leaf_weight}"), Rerank { min_leaf_weight, ..base.clone() }));
    }
    for ensembles in [1, 5] {
        grid.push((format!("ensembles {ensembles}"), Rerank { ensembles, ..base.clone() }));
    }
    for days in [30, 365] {
        grid.push((format!("window {days} days"), Rerank { window_seconds: days * 86_400, ..base.clone() }));
    }
    // Round 2: the round-1 settings that beat the first guess, together.
    for (trees, max_leaves, min_leaf_weight) in [(300, 15, 1.0), (600, 15, 4.0), (600, 7, 1.0), (600, 15, 1.0)] {
        grid.push((
            format!("trees {trees}, max_leaves {max_leaves}, min_leaf_weight {min_leaf_weight}"),
            Rerank { trees, max_leaves, min_leaf_weight, ..base.clone() },
        ));
    }

    println!("| setting | inner NDCG@10 | inner coverage | fit s |");
    println!("| --- | --- | --- | --- |");
    for (name, rerank) in grid {
        let report = top_n_with(&rows, &parts, Level::Inner, ModelName::EaseRerank, |train| {
            Ok((Box::new(rerank.fit(train)?), json!({})))
        })?;
        println!(
            "| {name} | {:.4} | {:.4} | {:.1} |",
            report.metrics["ndcg@10"].as_f64().unwrap_or(f64::NAN),
            report.metrics["coverage"].as_f64().unwrap_or(f64::NAN),
            report.fit_seconds
        );
    }
    Ok(())
}
