//! The query options of the API's list and recommendation endpoints, as plain structs with
//! defaults: `RecommendOptions { n: Some(5), explain: true, ..Default::default() }`.

/// Which rows of a list to return (`skip`/`limit`; the server allows 1 to 1000 per page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Rows to skip.
    pub skip: u64,
    /// Rows to return.
    pub limit: u32,
}

impl Page {
    /// The largest page the server returns; the streams walk lists with it.
    pub const MAX_LIMIT: u32 = 1000;
}

impl Default for Page {
    /// The server's default: the first 100 rows.
    fn default() -> Self {
        Page { skip: 0, limit: 100 }
    }
}

/// Filters of `GET /movies`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MovieFilter {
    /// Case-insensitive substring of the title.
    pub title: Option<String>,
    /// Case-insensitive genre name, e.g. `comedy`.
    pub genre: Option<String>,
}

/// Filters of `GET /ratings`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RatingFilter {
    /// Only this movie's ratings.
    pub movie_id: Option<i64>,
    /// Only this user's ratings.
    pub user_id: Option<i64>,
    /// Only ratings at or above this value.
    pub min_rating: Option<f64>,
}

/// Filters of `GET /tags`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TagFilter {
    /// Only this movie's tags.
    pub movie_id: Option<i64>,
    /// Only this user's tags.
    pub user_id: Option<i64>,
}

/// Options of `GET /users/{id}/recommendations`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecommendOptions {
    /// Movies to return, 1 to 100 (server default 10).
    pub n: Option<u32>,
    /// Only movies of this genre.
    pub genre: Option<String>,
    /// Movies never to return.
    pub exclude: Vec<i64>,
    /// Add the liked movies that most drove each recommendation.
    pub explain: bool,
}

/// Filters of `GET /model/experiments`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExperimentFilter {
    /// Only this protocol (`cv`, `prequential`, `topn`, `holdout`, ...).
    pub protocol: Option<String>,
    /// Only this model.
    pub model: Option<String>,
    /// Only `evaluate` runs or only `retrain`s.
    pub kind: Option<String>,
    /// At most this many records, 1 to 1000 (server default 100).
    pub limit: Option<u32>,
}

/// A query string under construction: only the options that are set.
#[derive(Debug, Default)]
pub(crate) struct Query(pub(crate) Vec<(&'static str, String)>);

impl Query {
    pub(crate) fn opt(mut self, name: &'static str, value: Option<impl ToString>) -> Self {
        if let Some(value) = value {
            self.0.push((name, value.to_string()));
        }
        self
    }

    pub(crate) fn page(self, page: Page) -> Self {
        self.opt("skip", Some(page.skip)).opt("limit", Some(page.limit))
    }
}

impl MovieFilter {
    pub(crate) fn query(&self) -> Query {
        Query::default().opt("title", self.title.as_ref()).opt("genre", self.genre.as_ref())
    }
}

impl RatingFilter {
    pub(crate) fn query(&self) -> Query {
        Query::default().opt("movieId", self.movie_id).opt("userId", self.user_id).opt("min_rating", self.min_rating)
    }
}

impl TagFilter {
    pub(crate) fn query(&self) -> Query {
        Query::default().opt("movieId", self.movie_id).opt("userId", self.user_id)
    }
}

impl RecommendOptions {
    pub(crate) fn query(&self) -> Query {
        let exclude =
            (!self.exclude.is_empty()).then(|| self.exclude.iter().map(i64::to_string).collect::<Vec<_>>().join(","));
        Query::default()
            .opt("n", self.n)
            .opt("genre", self.genre.as_ref())
            .opt("exclude", exclude)
            .opt("explain", self.explain.then_some(true))
    }
}

impl ExperimentFilter {
    pub(crate) fn query(&self) -> Query {
        Query::default()
            .opt("protocol", self.protocol.as_ref())
            .opt("model", self.model.as_ref())
            .opt("kind", self.kind.as_ref())
            .opt("limit", self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_set_options_reach_the_query_string() {
        let options = RecommendOptions { n: Some(5), exclude: vec![1, 2], explain: true, ..Default::default() };
        let q = options.query().0;
        assert_eq!(q, [("n", "5".to_owned()), ("exclude", "1,2".to_owned()), ("explain", "true".to_owned())]);
        assert!(RecommendOptions::default().query().0.is_empty());
        let q = RatingFilter { user_id: Some(7), ..Default::default() }.query().page(Page::default()).0;
        assert_eq!(q, [("userId", "7".to_owned()), ("skip", "0".to_owned()), ("limit", "100".to_owned())]);
    }
}
