//! One method per endpoint of the API (see `/openapi.json`), grouped as the docs group them.

use futures::stream::{self, Stream, StreamExt, TryStreamExt};
use reqwest::Method;
use schemas::ab::{ExperimentConfig, ExperimentList, ExperimentReport, ExperimentSummary};
use schemas::charts::{GenreCharts, MonthStats, MovieCharts, TopMovies};
use schemas::events::{NewRating, RatingAccepted};
use schemas::recommend::{ModelInfo, Predictions, RetrainStarted, SimilarMovies, UserProfile, UserRecommendations};
use schemas::{Analytics, ExperimentRecord, Health, Link, Movie, MovieDetail, Rating, RatingBucket, Tag};
use serde::de::DeserializeOwned;

use crate::client::{Client, Idempotent};
use crate::error::Error;
use crate::options::{ExperimentFilter, MovieFilter, Page, Query, RatingFilter, RecommendOptions, TagFilter};

/// # Health
impl Client {
    /// `GET /`: the service is up and its store answers.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn health(&self) -> Result<Health, Error> {
        self.get(self.url(&[], Query::default())).await
    }
}

/// # Catalogue
///
/// Lists come a page at a time (`*_page`), or as a [`Stream`] that walks every page (`movies`,
/// `ratings`, ...). Pages are `skip`/`limit` slices of a stable order, so rows added while a
/// stream walks may shift it by a row.
impl Client {
    /// `GET /movies`: one page of movies ordered by id.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn movies_page(&self, filter: &MovieFilter, page: Page) -> Result<Vec<Movie>, Error> {
        self.get(self.url(&["movies"], filter.query().page(page))).await
    }

    /// Every movie matching `filter`, page by page.
    pub fn movies(&self, filter: &MovieFilter) -> impl Stream<Item = Result<Movie, Error>> + Send + 'static {
        self.walk(vec!["movies"], filter.query())
    }

    /// `GET /movies/{id}`: a movie with its ratings, tags, links and figures.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown movie; see [`Error`].
    pub async fn movie(&self, movie_id: i64) -> Result<MovieDetail, Error> {
        self.get(self.url(&["movies", &movie_id.to_string()], Query::default())).await
    }

    /// `GET /ratings`: one page of ratings ordered by (userId, movieId).
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn ratings_page(&self, filter: &RatingFilter, page: Page) -> Result<Vec<Rating>, Error> {
        self.get(self.url(&["ratings"], filter.query().page(page))).await
    }

    /// Every rating matching `filter`, page by page.
    pub fn ratings(&self, filter: &RatingFilter) -> impl Stream<Item = Result<Rating, Error>> + Send + 'static {
        self.walk(vec!["ratings"], filter.query())
    }

    /// `GET /ratings/{userId}/{movieId}`.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the user has not rated the movie; see [`Error`].
    pub async fn rating(&self, user_id: i64, movie_id: i64) -> Result<Rating, Error> {
        self.get(self.url(&["ratings", &user_id.to_string(), &movie_id.to_string()], Query::default())).await
    }

    /// `GET /tags`: one page of tags ordered by (userId, movieId, tag).
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn tags_page(&self, filter: &TagFilter, page: Page) -> Result<Vec<Tag>, Error> {
        self.get(self.url(&["tags"], filter.query().page(page))).await
    }

    /// Every tag matching `filter`, page by page.
    pub fn tags(&self, filter: &TagFilter) -> impl Stream<Item = Result<Tag, Error>> + Send + 'static {
        self.walk(vec!["tags"], filter.query())
    }

    /// `GET /tags/{userId}/{movieId}/{tag}` (the tag is percent-encoded for you).
    ///
    /// # Errors
    /// [`Error::NotFound`] for no such tag; see [`Error`].
    pub async fn tag(&self, user_id: i64, movie_id: i64, tag: &str) -> Result<Tag, Error> {
        self.get(self.url(&["tags", &user_id.to_string(), &movie_id.to_string(), tag], Query::default())).await
    }

    /// `GET /links`: one page of IMDb/TMDb ids ordered by movie id.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn links_page(&self, page: Page) -> Result<Vec<Link>, Error> {
        self.get(self.url(&["links"], Query::default().page(page))).await
    }

    /// Every link, page by page.
    pub fn links(&self) -> impl Stream<Item = Result<Link, Error>> + Send + 'static {
        self.walk(vec!["links"], Query::default())
    }

    /// `GET /links/{movieId}`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown movie; see [`Error`].
    pub async fn link(&self, movie_id: i64) -> Result<Link, Error> {
        self.get(self.url(&["links", &movie_id.to_string()], Query::default())).await
    }

    /// Walks a list endpoint with the largest pages until one comes back short.
    fn walk<T: DeserializeOwned + Send + 'static>(
        &self,
        segments: Vec<&'static str>,
        filter: Query,
    ) -> impl Stream<Item = Result<T, Error>> + Send + 'static {
        let client = self.clone();
        let limit = Page::MAX_LIMIT;
        stream::try_unfold(Some(0u64), move |skip| {
            let (client, segments, filter) = (client.clone(), segments.clone(), filter.0.clone());
            async move {
                let Some(skip) = skip else { return Ok(None) };
                let url = client.url(&segments, Query(filter).page(Page { skip, limit }));
                let rows: Vec<T> = client.get(url).await?;
                let next = (rows.len() == limit as usize).then_some(skip + u64::from(limit));
                Ok(Some((stream::iter(rows.into_iter().map(Ok)), next)))
            }
        })
        .try_flatten()
        .boxed()
    }
}

/// # Analytics and charts
impl Client {
    /// `GET /analytics`: catalogue-wide figures.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn analytics(&self) -> Result<Analytics, Error> {
        self.get(self.url(&["analytics"], Query::default())).await
    }

    /// `GET /charts/ratings-per-month`.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn ratings_per_month(&self) -> Result<Vec<MonthStats>, Error> {
        self.get(self.url(&["charts", "ratings-per-month"], Query::default())).await
    }

    /// `GET /charts/rating-histogram`.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn rating_histogram(&self) -> Result<Vec<RatingBucket>, Error> {
        self.get(self.url(&["charts", "rating-histogram"], Query::default())).await
    }

    /// `GET /charts/genres`: genre popularity and mean rating per year.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn genre_charts(&self) -> Result<GenreCharts, Error> {
        self.get(self.url(&["charts", "genres"], Query::default())).await
    }

    /// `GET /charts/top-movies`: the `n` most-rated movies and the best-rated among those
    /// with at least `min_ratings` ratings (server defaults 10 and 50).
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn top_movies(&self, n: Option<u32>, min_ratings: Option<u32>) -> Result<TopMovies, Error> {
        let query = Query::default().opt("n", n).opt("min_ratings", min_ratings);
        self.get(self.url(&["charts", "top-movies"], query)).await
    }

    /// `GET /charts/movies/{id}`: a movie's histogram and ratings per year.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown movie; see [`Error`].
    pub async fn movie_charts(&self, movie_id: i64) -> Result<MovieCharts, Error> {
        self.get(self.url(&["charts", "movies", &movie_id.to_string()], Query::default())).await
    }
}

/// # Recommendations and the model
impl Client {
    /// `GET /users/{id}/recommendations`: the user's live top-N list.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn recommendations(
        &self,
        user_id: i64,
        options: &RecommendOptions,
    ) -> Result<UserRecommendations, Error> {
        self.get(self.url(&["users", &user_id.to_string(), "recommendations"], options.query())).await
    }

    /// `GET /movies/{id}/similar`: up to `n` movies like this one (server default 10).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown movie; see [`Error`].
    pub async fn similar(&self, movie_id: i64, n: Option<u32>) -> Result<SimilarMovies, Error> {
        self.get(self.url(&["movies", &movie_id.to_string(), "similar"], Query::default().opt("n", n))).await
    }

    /// `GET /users/{id}/profile`: favourite genres and recent ratings.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a user with no ratings; see [`Error`].
    pub async fn profile(&self, user_id: i64) -> Result<UserProfile, Error> {
        self.get(self.url(&["users", &user_id.to_string(), "profile"], Query::default())).await
    }

    /// `GET /users/{id}/predictions?movieId=...`: the live model's predicted stars.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown movie; see [`Error`].
    pub async fn predictions(&self, user_id: i64, movie_ids: &[i64]) -> Result<Predictions, Error> {
        let ids = movie_ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let query = Query::default().opt("movieId", Some(ids));
        self.get(self.url(&["users", &user_id.to_string(), "predictions"], query)).await
    }

    /// `GET /model`: the serving model's version, figures and last retrain.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn model(&self) -> Result<ModelInfo, Error> {
        self.get(self.url(&["model"], Query::default())).await
    }

    /// `GET /model/experiments`: evaluation and retrain records, newest first.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn experiments(&self, filter: &ExperimentFilter) -> Result<Vec<ExperimentRecord>, Error> {
        self.get(self.url(&["model", "experiments"], filter.query())).await
    }

    /// `POST /model/retrain`: starts a retrain in the background (not retried).
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] (409) while one runs; see [`Error`].
    pub async fn retrain(&self) -> Result<RetrainStarted, Error> {
        self.send(Method::POST, self.url(&["model", "retrain"], Query::default()), None::<&()>, Idempotent::No).await
    }
}

/// # A/B experiments
///
/// Experiments on live traffic (`/experiments`), not to be confused with the evaluation and
/// retrain records of [`Client::experiments`]. Changes need the API key when the service has
/// one, and like every write are not re-sent once they may have reached the server.
impl Client {
    /// `GET /experiments`: every A/B experiment with its status and configuration, by name.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn ab_experiments(&self) -> Result<ExperimentList, Error> {
        self.get(self.url(&["experiments"], Query::default())).await
    }

    /// `GET /experiments/{name}`: configuration, status, change history and the outcomes per
    /// variant (hit rate, gain, the difference to the control with its 95% interval).
    ///
    /// # Errors
    /// [`Error::NotFound`] for no such experiment, [`Error::InvalidRequest`] (422) for an
    /// invalid name; see [`Error`].
    pub async fn ab_experiment(&self, name: &str) -> Result<ExperimentReport, Error> {
        self.get(self.url(&["experiments", name], Query::default())).await
    }

    /// `PUT /experiments/{name}`: creates the experiment as a draft (201) or changes its
    /// configuration (200; a running one goes on with the new one at once). Not retried.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] (422) for an invalid name or configuration, with the reason;
    /// [`Error::Unauthorized`] without the service's API key; see [`Error`].
    pub async fn put_ab_experiment(&self, name: &str, config: &ExperimentConfig) -> Result<ExperimentSummary, Error> {
        self.send(Method::PUT, self.url(&["experiments", name], Query::default()), Some(config), Idempotent::No).await
    }

    /// `POST /experiments/{name}/start`: starts (or resumes) the experiment; from then on each
    /// user's list comes from their variant's model and names it
    /// ([`UserRecommendations::variant`]). Not retried.
    ///
    /// # Errors
    /// [`Error::NotFound`] for no such experiment; [`Error::InvalidRequest`] (409) while
    /// another one runs; [`Error::Unauthorized`] without the service's API key; see [`Error`].
    pub async fn start_ab_experiment(&self, name: &str) -> Result<ExperimentSummary, Error> {
        let url = self.url(&["experiments", name, "start"], Query::default());
        self.send(Method::POST, url, None::<&()>, Idempotent::No).await
    }

    /// `POST /experiments/{name}/stop`: stops the experiment; lists come from the served model
    /// again and its outcomes stay readable. Not retried.
    ///
    /// # Errors
    /// [`Error::NotFound`] for no such experiment; [`Error::Unauthorized`] without the
    /// service's API key; see [`Error`].
    pub async fn stop_ab_experiment(&self, name: &str) -> Result<ExperimentSummary, Error> {
        let url = self.url(&["experiments", name, "stop"], Query::default());
        self.send(Method::POST, url, None::<&()>, Idempotent::No).await
    }
}

/// # Ingestion
impl Client {
    /// `POST /ratings`: submits a rating; the answer (202) means the broker has it.
    ///
    /// Sent once: it is retried only when no connection could be made, since the API has no
    /// idempotency key and a rating delivered twice is learned twice.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] (422) for a bad value or an unknown movie; see [`Error`].
    pub async fn rate(&self, rating: &NewRating) -> Result<RatingAccepted, Error> {
        self.send(Method::POST, self.url(&["ratings"], Query::default()), Some(rating), Idempotent::No).await
    }

    /// Submits ratings one after the other with [`Client::rate`], stopping at the first failure.
    ///
    /// # Errors
    /// The first failure and the index of its rating: every rating before it was accepted,
    /// none after it was sent.
    pub async fn rate_many(&self, ratings: &[NewRating]) -> Result<Vec<RatingAccepted>, (usize, Error)> {
        let mut accepted = Vec::with_capacity(ratings.len());
        for (i, rating) in ratings.iter().enumerate() {
            accepted.push(self.rate(rating).await.map_err(|e| (i, e))?);
        }
        Ok(accepted)
    }
}
