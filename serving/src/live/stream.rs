//! The stream → model link: [`consumer::follow`] reads the ratings topic (every partition, its
//! offsets kept in the model's snapshots); [`LiveFollower`] is what it feeds, the live model
//! and the catalogue it checks movies against.

use std::sync::Arc;

use model::Rating;
use schemas::events::RatingSubmitted;
use store::Store;

pub use consumer::follow::FollowSettings as StreamSettings;

use super::{LiveModel, Movies};

/// The live model as the follower's sink.
pub struct LiveFollower {
    /// The model the events are learned into.
    pub model: Arc<LiveModel>,
    /// Where the catalogue is reloaded from when an event names a movie not loaded yet.
    pub store: Store,
}

impl consumer::follow::Follower for LiveFollower {
    fn knows_movie(&self, movie: i64) -> bool {
        self.model.knows_movie(movie)
    }

    async fn reload_catalogue(&self) -> anyhow::Result<()> {
        self.model.replace_movies(Movies::load(&self.store).await?);
        Ok(())
    }

    fn apply(&self, ratings: &[RatingSubmitted], offsets: &[(i32, i64)]) {
        let ratings: Vec<Rating> = ratings
            .iter()
            .map(|e| Rating { user: e.user_id, item: e.movie_id, value: e.rating as f32, timestamp: e.timestamp })
            .collect();
        self.model.apply(&ratings, offsets);
    }

    fn skipped(&self, reason: &'static str, n: u64) {
        self.model.skipped(reason, n);
    }
}
