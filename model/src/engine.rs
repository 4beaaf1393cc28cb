//! The facade serving calls: personal lists for known users (the top-N model over their live
//! history, so a rating just learned changes the next list), trending for cold ones,
//! collaborative "similar movies" once a movie has ratings and content-based ones before, and
//! explanations that cite what the user liked.

use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::Recommender;
use crate::batch::BatchModels;
use crate::content::ContentIndex;
use crate::explain::Reason;
use crate::ids::{ItemId, UserId};
use crate::online::OnlineModel;
use crate::popularity::PopularityModel;
use crate::rerank::RerankModel;
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
    /// Personal scores: the top-N model over the user's live history (the live factor model
    /// before the first recompute).
    Personal,
    /// Recency-weighted popularity (a user without ratings, or without a liked movie the
    /// top-N model knows; also the last resort for similar movies).
    Trending,
    /// Item–item similarity from ratings.
    Collaborative,
    /// Genre/tag similarity (a movie without enough ratings).
    Content,
}

/// Which model a personal list comes from: serving's routing, or one model alone (an A/B
/// experiment's variant). Cold users get the trending list whatever the choice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ListModel {
    /// [`Engine::recommend`]'s routing: the top-N model (EASE + re-ranker) over the live
    /// history, the live factors before the first recompute.
    #[default]
    Served,
    /// EASE alone over the live history, without the re-ranker (as `Served` without a top-N
    /// model).
    Ease,
    /// The live factors (online SGD matrix factorisation).
    OnlineMf,
    /// The popularity list for everyone, their rated movies left out.
    Popularity,
    /// Movies drawn uniformly at random from those the last recompute knows, the user's rated
    /// ones left out (a floor every model must beat; the trending list without a recompute).
    /// Seeded by the user and their rating count, so a user's list stays put until they rate.
    Random,
}

/// A list and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendations {
    /// The model that produced `items`.
    pub source: Source,
    /// Best first.
    pub items: Vec<Scored>,
}

/// The live online model, the top-N and cold-start models of the last recompute and the
/// content index, with the routing between them. Cheap to clone; swap in a new one after a
/// recompute.
#[derive(Debug, Clone)]
pub struct Engine {
    online: OnlineModel,
    top_n: Option<Arc<RerankModel>>,
    popularity: Option<Arc<PopularityModel>>,
    similarity: Option<Arc<ItemSimilarity>>,
    content: Arc<ContentIndex>,
    cold: ColdStart,
}

impl Engine {
    /// Combines the models of a full recompute with the default [`ColdStart`] thresholds.
    pub fn new(online: OnlineModel, batch: Arc<BatchModels>, content: Arc<ContentIndex>) -> Self {
        let mut engine = Self::from_parts(
            online,
            Some(Arc::new(batch.popularity.clone())),
            Some(Arc::new(batch.similarity.clone())),
            content,
        );
        engine.top_n = Some(batch.top_n.clone());
        engine
    }

    /// Combines models fitted separately (e.g. restored from a snapshot), without a top-N
    /// model: personal lists then come from the live factors. Without a popularity model cold
    /// users get the live model's most-rated movies; without a similarity index "similar
    /// movies" come from the live factors.
    pub fn from_parts(
        online: OnlineModel,
        popularity: Option<Arc<PopularityModel>>,
        similarity: Option<Arc<ItemSimilarity>>,
        content: Arc<ContentIndex>,
    ) -> Self {
        Self { online, top_n: None, popularity, similarity, content, cold: ColdStart::default() }
    }

    /// With a top-N model for personal lists (e.g. restored from a snapshot).
    pub fn with_top_n(mut self, top_n: Arc<RerankModel>) -> Self {
        self.top_n = Some(top_n);
        self
    }

    /// The same engine answering every user with the popularity list, their rated movies left
    /// out (source [`Source::Trending`]): for models whose personal lists lost to that list on
    /// the holdout. User histories, rating predictions and similar movies are unchanged.
    pub fn without_personal_lists(mut self) -> Self {
        self.top_n = None;
        self.cold.min_user_ratings = usize::MAX;
        self
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

    /// The top-N model of the last recompute, if any.
    pub fn top_n(&self) -> Option<&RerankModel> {
        self.top_n.as_deref()
    }

    /// The user's live history: their latest rating of each movie with its time, in time
    /// order (empty for an unknown user).
    pub fn history(&self, user: UserId) -> Vec<(ItemId, f32, i64)> {
        self.online.history(user)
    }

    /// The live model's predicted rating (clipped to the rating scale).
    pub fn predict(&self, user: UserId, item: ItemId) -> f32 {
        self.online.predict(user, item)
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

    /// Personal top-N from the top-N model over the user's live history (from the live
    /// factors before the first recompute), or trending for a user with too few ratings or
    /// no liked movie the top-N model knows (still excluding whatever they did rate).
    pub fn recommend(&self, user: UserId, query: &Query<'_>) -> Recommendations {
        self.recommend_with(user, query, ListModel::Served)
    }

    /// A list from `model` (see [`ListModel`]): a user with too few ratings, or for whom the
    /// model finds nothing, gets the trending list without their rated movies, as in
    /// [`Self::recommend`].
    pub fn recommend_with(&self, user: UserId, query: &Query<'_>, model: ListModel) -> Recommendations {
        if model == ListModel::Random
            && let Some(p) = &self.popularity
        {
            return Recommendations { source: Source::Personal, items: self.random(user, p, query) };
        }
        let history = self.online.history(user);
        let personal = !matches!(model, ListModel::Popularity | ListModel::Random);
        if personal && history.len() >= self.cold.min_user_ratings && !history.is_empty() {
            let items = match (&self.top_n, model) {
                (Some(top_n), ListModel::Served) => top_n.recommend_for_history(&history, query),
                (Some(top_n), ListModel::Ease) => {
                    let rated: Vec<(ItemId, f32)> = history.iter().map(|h| (h.0, h.1)).collect();
                    top_n.ease().recommend_for_ratings(&rated, query)
                }
                _ => self.online.recommend(user, query),
            };
            if !items.is_empty() {
                return Recommendations { source: Source::Personal, items };
            }
        }
        let mut q = query.clone();
        if query.excludes_seen() {
            q = q.exclude(history.iter().map(|h| h.0));
        }
        let items = match &self.popularity {
            Some(p) => p.trending(&q),
            None => self.online.most_rated(&q),
        };
        Recommendations { source: Source::Trending, items }
    }

    /// `query.n()` movies of `popularity`'s drawn without replacement (partial Fisher–Yates),
    /// skipping the user's rated ones and what `query` refuses.
    fn random(&self, user: UserId, popularity: &PopularityModel, query: &Query<'_>) -> Vec<Scored> {
        let rated = self.online.rated(user);
        let seen: std::collections::HashSet<ItemId> = rated.iter().map(|r| r.0).collect();
        let ids = popularity.item_ids().ids();
        let mut rng = SmallRng::seed_from_u64(crate::init::mix(user as u64 ^ ((rated.len() as u64) << 40)));
        let mut order: Vec<usize> = (0..ids.len()).collect();
        let mut items = Vec::with_capacity(query.n());
        for i in 0..order.len() {
            if items.len() == query.n() {
                break;
            }
            let j = rng.random_range(i..order.len());
            order.swap(i, j);
            let item = ids[order[i]];
            if !(query.excludes_seen() && seen.contains(&item)) && query.accepts(item) {
                items.push(Scored { item, score: 1.0 - items.len() as f32 / query.n() as f32 });
            }
        }
        items
    }

    /// Whether a list from `model` and `source` follows the live factors (see
    /// [`Self::follows_live_factors`]): the online model's lists always do.
    pub fn list_follows_live_factors(&self, model: ListModel, source: Source) -> bool {
        (model == ListModel::OnlineMf && source == Source::Personal) || self.follows_live_factors(source)
    }

    /// Whether a list from `source` follows the live factors, so that other users' ratings
    /// move it: personal lists before the first recompute, trending without a popularity
    /// model, similar movies. The others (the top-N model's lists, the popularity model's)
    /// depend on the recompute's models and the user's own history alone: a cache may keep
    /// them until one of those changes.
    pub fn follows_live_factors(&self, source: Source) -> bool {
        match source {
            Source::Personal => self.top_n.is_none(),
            Source::Trending => self.popularity.is_none(),
            Source::Collaborative | Source::Content => true,
        }
    }

    /// Similar movies: collaborative once the movie has enough ratings (batch similarity, or
    /// the live factors for a movie newer than the batch), content-based before that.
    pub fn similar(&self, item: ItemId, query: &Query<'_>) -> Recommendations {
        self.similar_in(item, query, &self.content)
    }

    /// [`Self::similar`] with `content` as the content index (a catalogue newer than the last
    /// recompute's); a movie that nothing relates to yet (no ratings, genres or tags) gets the
    /// trending list without itself rather than nothing.
    pub fn similar_in(&self, item: ItemId, query: &Query<'_>, content: &ContentIndex) -> Recommendations {
        if self.online.item_count(item) >= self.cold.min_item_ratings {
            let items = match &self.similarity {
                Some(s) if s.item_ids().index(item).is_some() => s.similar(item, query),
                _ => self.online.similar(item, query),
            };
            if !items.is_empty() {
                return Recommendations { source: Source::Collaborative, items };
            }
        }
        let items = content.similar(item, query);
        if !items.is_empty() {
            return Recommendations { source: Source::Content, items };
        }
        let query = query.clone().exclude([item]);
        let items = match &self.popularity {
            Some(p) => p.trending(&query),
            None => self.online.most_rated(&query),
        };
        Recommendations { source: Source::Trending, items }
    }

    /// Content-similar movies for a feature set (a movie not even in the content index yet).
    pub fn similar_to_features<S: AsRef<str>>(&self, features: &[S], query: &Query<'_>) -> Recommendations {
        Recommendations { source: Source::Content, items: self.content.similar_to(features, query) }
    }

    /// "Because you liked …" for recommending `item` to `user`: only movies the user liked are
    /// cited (rated ≥ 4, or ≥ their own mean when nothing reaches 4), weighted by what drove
    /// the score: each liked movie's share of the top-N model's score (EASE's item–item
    /// weights), or before the first recompute the live factors' similarity.
    pub fn explain(&self, user: UserId, item: ItemId, n: usize) -> Vec<Reason> {
        self.explain_each(user, &[item], n).pop().unwrap_or_default()
    }

    /// [`Self::explain`] for each of `items`, reading the user's history once (a listed
    /// request explains every movie of its list).
    pub fn explain_each(&self, user: UserId, items: &[ItemId], n: usize) -> Vec<Vec<Reason>> {
        let history = self.online.history(user);
        if let Some(top_n) = &self.top_n {
            let rated: Vec<(ItemId, f32)> = history.iter().map(|h| (h.0, h.1)).collect();
            return items.iter().map(|&item| top_n.ease().explain_for_ratings(&rated, item, n)).collect();
        }
        let liked = liked_threshold(&history);
        items
            .iter()
            .map(|&item| {
                self.online.explain(user, item, usize::MAX).into_iter().filter(|r| r.rating >= liked).take(n).collect()
            })
            .collect()
    }
}

/// The rating from which a user's movie counts as liked: 4, or the user's mean rating when
/// none of theirs reaches 4.
pub fn liked_threshold(history: &[(ItemId, f32, i64)]) -> f32 {
    const LIKED: f32 = 4.0;
    if history.is_empty() || history.iter().any(|h| h.1 >= LIKED) {
        return LIKED;
    }
    history.iter().map(|h| h.1).sum::<f32>() / history.len() as f32
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
    fn without_personal_lists_known_users_get_the_trending_list_without_their_movies() {
        let e = engine();
        let user = 7;
        let seen: Vec<ItemId> = e.history(user).iter().map(|h| h.0).collect();
        assert!(!seen.is_empty());
        assert_eq!(e.recommend(user, &Query::top(5)).source, Source::Personal);
        let e = e.without_personal_lists();
        let got = e.recommend(user, &Query::top(5));
        assert_eq!(got.source, Source::Trending);
        assert!(!got.items.is_empty() && got.items.iter().all(|s| !seen.contains(&s.item)), "{got:?}");
        assert_eq!(e.history(user).len(), seen.len(), "the user is still known");
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
        let got = e.recommend(5, &Query::top(20));
        assert_eq!(got.source, Source::Personal);
        let seen: Vec<ItemId> = e.online().rated(5).into_iter().map(|r| r.0).collect();
        // Every unseen movie the top-N model knows (someone liked it), and nothing else.
        let known = e.top_n().unwrap().ease().item_ids().filter(|i| !seen.contains(i)).count();
        assert_eq!(got.items.len(), known);
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
        assert!(e.follows_live_factors(Source::Trending) && e.follows_live_factors(Source::Personal));
        assert!(!full.follows_live_factors(Source::Trending) && !full.follows_live_factors(Source::Personal));
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
    fn explanations_cite_only_movies_the_user_liked() {
        let e = engine();
        let top = e.recommend(5, &Query::top(1)).items[0].item;
        let liked: Vec<ItemId> = e.online().rated(5).into_iter().filter(|r| r.1 >= 4.0).map(|r| r.0).collect();
        let why = e.explain(5, top, 3);
        assert!(!why.is_empty() && why.len() <= 3);
        assert!(why.iter().all(|r| liked.contains(&r.item) && r.weight > 0.0), "{why:?}");
        // Before the first recompute the live factors explain, still citing likes only.
        let live = Engine::from_parts(e.online().clone(), None, None, Arc::new(e.content().clone()));
        assert!(live.explain(5, top, 20).iter().all(|r| liked.contains(&r.item)));
    }

    #[test]
    fn a_new_rating_changes_the_next_personal_list_without_a_refit() {
        let e = engine();
        let before = e.recommend(5, &Query::top(5));
        assert_eq!(before.source, Source::Personal);
        assert!(e.top_n().is_some(), "lists come from the top-N model");
        e.online().update(5, before.items[0].item, 5.0, 100 * 86_400).unwrap();
        let after = e.recommend(5, &Query::top(5));
        assert_ne!(after.items, before.items);
        assert!(after.items.iter().all(|s| s.item != before.items[0].item));
    }

    #[test]
    fn each_list_model_answers_from_its_own_model() {
        let e = engine();
        let user = 5;
        let q = Query::top(5);
        assert_eq!(e.recommend_with(user, &q, ListModel::Served), e.recommend(user, &q));
        let rated: Vec<(ItemId, f32)> = e.online().rated(user);
        let ease = e.recommend_with(user, &q, ListModel::Ease);
        assert_eq!(
            (ease.source, &ease.items),
            (Source::Personal, &e.top_n().unwrap().ease().recommend_for_ratings(&rated, &q))
        );
        let mf = e.recommend_with(user, &q, ListModel::OnlineMf);
        assert_eq!((mf.source, &mf.items), (Source::Personal, &e.online().recommend(user, &q)));
        let pop = e.recommend_with(user, &q, ListModel::Popularity);
        assert_eq!(pop.source, Source::Trending);
        assert!(pop.items.iter().all(|s| !rated.iter().any(|r| r.0 == s.item)));
        assert!(e.list_follows_live_factors(ListModel::OnlineMf, Source::Personal));
        assert!(!e.list_follows_live_factors(ListModel::Ease, Source::Personal));
        // Random: unrated movies the recompute knows, the same until the user rates.
        let random = e.recommend_with(user, &q, ListModel::Random);
        assert_eq!(random.items.len(), 5);
        assert!(random.items.iter().all(|s| !rated.iter().any(|r| r.0 == s.item)));
        assert_eq!(random, e.recommend_with(user, &q, ListModel::Random));
        let other_user = e.recommend_with(6, &q, ListModel::Random);
        assert_ne!(random.items, other_user.items);
        // A cold user gets the trending list from every model but the random one.
        for m in [ListModel::Ease, ListModel::OnlineMf, ListModel::Popularity] {
            assert_eq!(e.recommend_with(12345, &q, m).source, Source::Trending);
        }
    }

    #[test]
    fn a_user_liked_nothing_gets_the_trending_list_without_their_movies() {
        let e = engine();
        e.online().update(777, 20, 1.0, 5).unwrap();
        let got = e.recommend(777, &Query::top(5));
        assert_eq!(got.source, Source::Trending);
        assert!(got.items.iter().all(|s| s.item != 20));
        assert_eq!(liked_threshold(&[(1, 3.0, 0), (2, 2.0, 1)]), 2.5);
        assert_eq!(liked_threshold(&[(1, 4.5, 0), (2, 2.0, 1)]), 4.0);
    }
}
