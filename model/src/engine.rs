//! The facade serving calls: personal lists for known users, trending for cold ones,
//! collaborative "similar movies" once a movie has ratings and content-based ones before.

use std::sync::Arc;

use crate::Recommender;
use crate::batch::BatchModels;
use crate::content::ContentIndex;
use crate::explain::Reason;
use crate::ids::{ItemId, UserId};
use crate::online::OnlineModel;
use crate::popularity::PopularityModel;
use crate::similarity::ItemSimilarity;
use crate::topn::{Query, Scored};

/// When a user or a movie has too little history for collaborative answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColdStart {
    /// A user with fewer ratings gets the trending list (default 1).
    pub min_user_ratings: usize,
    /// A movie with fewer ratings gets content-based similar movies (default 5): below that
    /// its factors are still mostly their random start.
    pub min_item_ratings: u32,
}

impl Default for ColdStart {
    fn default() -> Self {
        Self { min_user_ratings: 1, min_item_ratings: 5 }
    }
}

/// Which model produced a list; serving can show it ("Trending now", "Because you liked …").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Personal scores from the live factor model.
    Personal,
    /// Recency-weighted popularity (cold user).
    Trending,
    /// Item–item similarity from ratings.
    Collaborative,
    /// Genre/tag similarity (a movie without enough ratings).
    Content,
}

/// A list and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendations {
    /// The model that produced `items`.
    pub source: Source,
    /// Best first.
    pub items: Vec<Scored>,
}

/// The live online model, the cold-start models of the last recompute and the content
/// index, with the cold-start routing between them. Cheap to clone; swap in a new one after a
/// recompute.
#[derive(Debug, Clone)]
pub struct Engine {
    online: OnlineModel,
    popularity: Option<Arc<PopularityModel>>,
    similarity: Option<Arc<ItemSimilarity>>,
    content: Arc<ContentIndex>,
    cold: ColdStart,
}

impl Engine {
    /// Combines the models of a full recompute with the default [`ColdStart`] thresholds.
    pub fn new(online: OnlineModel, batch: Arc<BatchModels>, content: Arc<ContentIndex>) -> Self {
        Self::from_parts(
            online,
            Some(Arc::new(batch.popularity.clone())),
            Some(Arc::new(batch.similarity.clone())),
            content,
        )
    }

    /// Combines models fitted separately (e.g. restored from a snapshot). Without a
    /// popularity model cold users get the live model's most-rated movies; without a
    /// similarity index "similar movies" come from the live factors.
    pub fn from_parts(
        online: OnlineModel,
        popularity: Option<Arc<PopularityModel>>,
        similarity: Option<Arc<ItemSimilarity>>,
        content: Arc<ContentIndex>,
    ) -> Self {
        Self { online, popularity, similarity, content, cold: ColdStart::default() }
    }

    /// Other cold-start thresholds.
    pub fn with_cold_start(mut self, cold: ColdStart) -> Self {
        self.cold = cold;
        self
    }

    /// The live model (the consumer calls [`OnlineModel::update`] on it).
    pub fn online(&self) -> &OnlineModel {
        &self.online
    }

    /// The popularity model of the last recompute, if any.
    pub fn popularity(&self) -> Option<&PopularityModel> {
        self.popularity.as_deref()
    }

    /// The item–item similarity of the last recompute, if any.
    pub fn similarity(&self) -> Option<&ItemSimilarity> {
        self.similarity.as_deref()
    }

    /// The content index.
    pub fn content(&self) -> &ContentIndex {
        &self.content
    }

    /// Personal top-N from the live model, or trending for a user with too few ratings (still
    /// excluding whatever they did rate).
    pub fn recommend(&self, user: UserId, query: &Query<'_>) -> Recommendations {
        let rated = self.online.user(user).map_or(0, |u| u.n_ratings);
        if rated >= self.cold.min_user_ratings && rated > 0 {
            return Recommendations { source: Source::Personal, items: self.online.recommend(user, query) };
        }
        let mut q = query.clone();
        if query.excludes_seen() {
            q = q.exclude(self.online.rated(user).into_iter().map(|r| r.0));
        }
        let items = match &self.popularity {
            Some(p) => p.trending(&q),
            None => self.online.most_rated(&q),
        };
        Recommendations { source: Source::Trending, items }
    }

    /// Similar movies: collaborative once the movie has enough ratings (batch similarity, or
    /// the live factors for a movie newer than the batch), content-based before that.
    pub fn similar(&self, item: ItemId, query: &Query<'_>) -> Recommendations {
        if self.online.item_count(item) >= self.cold.min_item_ratings {
            let items = match &self.similarity {
                Some(s) if s.item_ids().index(item).is_some() => s.similar(item, query),
                _ => self.online.similar(item, query),
            };
            return Recommendations { source: Source::Collaborative, items };
        }
        Recommendations { source: Source::Content, items: self.content.similar(item, query) }
    }

    /// Content-similar movies for a feature set (a movie not even in the content index yet).
    pub fn similar_to_features<S: AsRef<str>>(&self, features: &[S], query: &Query<'_>) -> Recommendations {
        Recommendations { source: Source::Content, items: self.content.similar_to(features, query) }
    }

    /// "Because you rated …" for recommending `item` to `user`, from the live model.
    pub fn explain(&self, user: UserId, item: ItemId, n: usize) -> Vec<Reason> {
        self.online.explain(user, item, n)
    }
}

impl Recommender for Engine {
    fn predict(&self, user: UserId, item: ItemId) -> f32 {
        self.online.predict(user, item)
    }

    fn recommend(&self, user: UserId, query: &Query<'_>) -> Vec<Scored> {
        Engine::recommend(self, user, query).items
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Recompute;
    use crate::mf::BiasedMf;
    use crate::ratings::Ratings;
    use crate::svd::TruncatedSvd;

    fn engine() -> Engine {
        let day = 86_400;
        // 30 users rate movies 1..=20; movie 20 gets the freshest likes.
        let rows: Vec<(i64, i64, f32, i64)> = (1..=30)
            .flat_map(|u| {
                (1..=20)
                    .filter(move |i| (u + i) % 3 != 0)
                    .map(move |i| (u, i, if i == 20 { 5.0 } else { ((u * i) % 4 + 2) as f32 }, i * day))
            })
            .collect();
        let ratings = Ratings::from_rows(rows).unwrap();
        let batch = Recompute::builder()
            .mf(BiasedMf::builder().factors(4).epochs(5).build().unwrap())
            .svd(TruncatedSvd::builder().rank(3).build().unwrap())
            .build()
            .unwrap()
            .fit(&ratings)
            .unwrap();
        let online = OnlineModel::from_batch(OnlineModel::builder().build().unwrap(), &batch.mf, &ratings).unwrap();
        let content = ContentIndex::build(
            (1..=20)
                .map(|i| (i, vec![if i % 2 == 0 { "genre:Drama" } else { "genre:Comedy" }]))
                .chain([(99, vec!["genre:Comedy", "tag:new"])]),
        );
        Engine::new(online, Arc::new(batch), Arc::new(content))
    }

    #[test]
    fn a_cold_user_gets_the_trending_list() {
        let e = engine();
        let got = e.recommend(12345, &Query::top(5));
        assert_eq!(got.source, Source::Trending);
        assert_eq!(got.items, e.popularity().unwrap().trending(&Query::top(5)));
        assert_eq!(got.items[0].item, 20);
        // Filters apply to the cold-start list too.
        let odd = |i: ItemId| i % 2 == 1;
        let got = e.recommend(12345, &Query::top(3).filter(&odd));
        assert!(got.items.len() == 3 && got.items.iter().all(|s| s.item % 2 == 1));
    }

    #[test]
    fn a_known_user_gets_personal_scores_without_seen_movies() {
        let e = engine();
        let got = e.recommend(4, &Query::top(20));
        assert_eq!(got.source, Source::Personal);
        let seen: Vec<ItemId> = e.online().rated(4).into_iter().map(|r| r.0).collect();
        assert_eq!(got.items.len(), 20 - seen.len());
        assert!(got.items.iter().all(|s| !seen.contains(&s.item)));
    }

    #[test]
    fn a_new_movie_gets_content_similar_movies_until_it_has_ratings() {
        let e = engine();
        let got = e.similar(99, &Query::top(3));
        assert_eq!(got.source, Source::Content);
        assert!(got.items.iter().all(|s| s.item % 2 == 1), "comedies only: {:?}", got.items);
        for u in 1..=5 {
            e.online().update(u, 99, 4.0, 10_000_000).unwrap();
        }
        let got = e.similar(99, &Query::top(3));
        assert_eq!(got.source, Source::Collaborative);
        assert_eq!(got.items.len(), 3);
        assert!(got.items.iter().all(|s| s.item != 99));
    }

    #[test]
    fn without_batch_models_cold_users_get_the_most_rated_and_similar_uses_live_factors() {
        let full = engine();
        let e = Engine::from_parts(full.online().clone(), None, None, Arc::new(full.content().clone()));
        let got = e.recommend(12345, &Query::top(3));
        assert_eq!(got.source, Source::Trending);
        assert_eq!(got.items, full.online().most_rated(&Query::top(3)));
        let got = e.similar(3, &Query::top(4));
        assert_eq!((got.source, got.items.clone()), (Source::Collaborative, full.online().similar(3, &Query::top(4))));
    }

    #[test]
    fn a_rated_movie_gets_collaborative_similar_movies() {
        let e = engine();
        let got = e.similar(3, &Query::top(4));
        assert_eq!(got.source, Source::Collaborative);
        assert_eq!(got.items.len(), 4);
        assert!(got.items.iter().all(|s| s.item != 3));
    }

    #[test]
    fn explanations_cite_movies_the_user_rated() {
        let e = engine();
        let top = e.recommend(4, &Query::top(1)).items[0].item;
        let rated: Vec<ItemId> = e.online().rated(4).into_iter().map(|r| r.0).collect();
        let why = e.explain(4, top, 3);
        assert!(why.len() <= 3);
        assert!(why.iter().all(|r| rated.contains(&r.item) && r.weight > 0.0));
    }
}
