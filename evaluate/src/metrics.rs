//! The metrics live in `model::metrics` (the retrain's holdout check uses them too).

pub use model::metrics::*;
