//! The chart figures of the web interface and `/charts/...`, precomputed: the store's rating
//! summaries (`store::Store::rating_aggregates`, kept in step by every write) become
//! per-month, per-genre-year and per-movie figures held in memory, so pages and the movie table
//! never query ratings. They are refreshed like `/analytics` (stale-while-revalidate,
//! `--analytics-ttl`): a page never waits for a refresh, only for the first computation.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use schemas::charts::{GenreYearStats, MonthStats, TopMovies};
use schemas::{Movie, MovieStats};
use store::{MovieQuery, Page, RatingAggregates, Store, StoreError};

use crate::error::{ApiError, ApiResult};
use crate::live::movies::genres;
use crate::state::AppState;

/// One row of the movie table: the catalogue entry with its rating figures.
#[derive(Debug, Clone, PartialEq)]
pub struct MovieRow {
    /// MovieLens movie id.
    pub movie_id: i64,
    /// Title with year.
    pub title: String,
    /// `|`-separated genres.
    pub genres: String,
    /// Release year from the title's trailing `(YYYY)`, when it has one.
    pub year: Option<i64>,
    /// Ratings of the movie.
    pub rating_count: i64,
    /// Their mean (none without ratings).
    pub mean_rating: Option<f64>,
}

/// Everything precomputed.
#[derive(Debug, Default)]
pub struct Charts {
    /// Ratings per month, ascending.
    pub months: Vec<MonthStats>,
    /// Ratings per genre and year, by genre then year.
    pub genre_years: Vec<GenreYearStats>,
    /// Every movie of the catalogue, by id.
    pub movies: Vec<MovieRow>,
    /// Every genre, sorted (for the table's filter).
    pub genres: Vec<String>,
    /// The newest rating's timestamp.
    pub latest: Option<i64>,
    /// Ratings in the day before `latest`.
    pub last_day: i64,
}

/// Sort keys of the movie table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortKey {
    /// Most ratings first (the default).
    #[default]
    Ratings,
    /// Highest mean first.
    Mean,
    /// Alphabetical.
    Title,
    /// Newest first.
    Year,
    /// By movie id.
    Id,
}

impl SortKey {
    /// Parses the `sort` parameter.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "ratings" => Self::Ratings,
            "mean" => Self::Mean,
            "title" => Self::Title,
            "year" => Self::Year,
            "id" => Self::Id,
            _ => return None,
        })
    }

    /// Whether the key's own order (`dir=default`) is ascending, as [`Charts::search`] sorts
    /// (the table's header arrows say so).
    pub fn ascends(self) -> bool {
        matches!(self, Self::Title | Self::Id)
    }

    /// The parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ratings => "ratings",
            Self::Mean => "mean",
            Self::Title => "title",
            Self::Year => "year",
            Self::Id => "id",
        }
    }
}

/// A validated movie-table query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MovieSearch {
    /// Case-insensitive substring of the title.
    pub title: Option<String>,
    /// Case-insensitive genre.
    pub genre: Option<String>,
    /// Released in or after this year.
    pub year_from: Option<i64>,
    /// Released in or before this year.
    pub year_to: Option<i64>,
    /// At least this many ratings.
    pub min_ratings: i64,
    /// Order.
    pub sort: SortKey,
    /// Reverse the order.
    pub reverse: bool,
    /// Rows to skip.
    pub skip: usize,
    /// Rows to return.
    pub limit: usize,
}

/// The release year in a MovieLens title's trailing `(YYYY)`.
pub fn title_year(title: &str) -> Option<i64> {
    let t = title.trim_end();
    let inner = t.strip_suffix(')')?;
    let open = inner.rfind('(')?;
    let year = &inner[open + 1..];
    (year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit())).then(|| year.parse().ok()).flatten()
}

impl Charts {
    /// Reads the catalogue and the rating aggregates.
    ///
    /// # Errors
    /// A database error.
    pub async fn load(store: &Store) -> Result<Self, StoreError> {
        let all = Page { skip: 0, limit: i64::MAX };
        let query = MovieQuery::default();
        let (movies, aggregates) = tokio::try_join!(store.movies(&query, all), store.rating_aggregates())?;
        Ok(Self::build(movies, aggregates))
    }

    /// Derives every figure from the catalogue and the aggregates.
    pub fn build(movies: Vec<Movie>, aggregates: RatingAggregates) -> Self {
        let mut per_movie: HashMap<i64, (i64, f64)> = HashMap::new();
        for my in &aggregates.movie_years {
            let e = per_movie.entry(my.movie_id).or_default();
            e.0 += my.count;
            e.1 += my.sum;
        }
        let genres_of: HashMap<i64, &str> = movies.iter().map(|m| (m.movie_id, m.genres.as_str())).collect();
        let mut genre_years: BTreeMap<(&str, i64), (i64, f64)> = BTreeMap::new();
        for my in &aggregates.movie_years {
            for g in genres_of.get(&my.movie_id).into_iter().flat_map(|g| genres(g)) {
                let e = genre_years.entry((g, my.year)).or_default();
                e.0 += my.count;
                e.1 += my.sum;
            }
        }
        let mut all_genres: Vec<String> = movies.iter().flat_map(|m| genres(&m.genres)).map(str::to_owned).collect();
        all_genres.sort();
        all_genres.dedup();
        let genre_years = genre_years
            .into_iter()
            .map(|((genre, year), (count, sum))| GenreYearStats {
                genre: genre.to_owned(),
                year,
                count,
                mean_rating: sum / count as f64,
            })
            .collect();
        let mut rows: Vec<MovieRow> = movies
            .into_iter()
            .map(|m| {
                let (count, sum) = per_movie.get(&m.movie_id).copied().unwrap_or_default();
                MovieRow {
                    movie_id: m.movie_id,
                    year: title_year(&m.title),
                    title: m.title,
                    genres: m.genres,
                    rating_count: count,
                    mean_rating: (count > 0).then(|| sum / count as f64),
                }
            })
            .collect();
        rows.sort_by_key(|r| r.movie_id);
        Self {
            months: aggregates.months,
            genre_years,
            movies: rows,
            genres: all_genres,
            latest: aggregates.latest,
            last_day: aggregates.last_day,
        }
    }

    /// The movie's row.
    pub fn movie(&self, movie_id: i64) -> Option<&MovieRow> {
        self.movies.binary_search_by_key(&movie_id, |r| r.movie_id).ok().map(|i| &self.movies[i])
    }

    /// The `n` most-rated movies and the `n` best-rated among those with `min_ratings` or more.
    pub fn top(&self, n: usize, min_ratings: i64) -> TopMovies {
        let stats = |r: &MovieRow| MovieStats {
            movie_id: r.movie_id,
            title: r.title.clone(),
            rating_count: r.rating_count,
            mean_rating: r.mean_rating.unwrap_or_default(),
        };
        let mut most: Vec<&MovieRow> = self.movies.iter().filter(|r| r.rating_count > 0).collect();
        most.sort_by(|a, b| b.rating_count.cmp(&a.rating_count).then(a.movie_id.cmp(&b.movie_id)));
        let mut best: Vec<&MovieRow> =
            self.movies.iter().filter(|r| r.rating_count > 0 && r.rating_count >= min_ratings).collect();
        best.sort_by(|a, b| {
            b.mean_rating
                .unwrap_or_default()
                .total_cmp(&a.mean_rating.unwrap_or_default())
                .then(b.rating_count.cmp(&a.rating_count))
                .then(a.movie_id.cmp(&b.movie_id))
        });
        TopMovies {
            most_rated: most.into_iter().take(n).map(stats).collect(),
            best_rated: best.into_iter().take(n).map(stats).collect(),
            min_ratings,
        }
    }

    /// The rows matching `search` in its order: (total matches, the requested page).
    pub fn search(&self, search: &MovieSearch) -> (usize, Vec<&MovieRow>) {
        let title = search.title.as_deref().map(str::to_lowercase);
        let genre = search.genre.as_deref().map(str::to_lowercase);
        let mut rows: Vec<&MovieRow> = self
            .movies
            .iter()
            .filter(|r| title.as_deref().is_none_or(|t| r.title.to_lowercase().contains(t)))
            .filter(|r| genre.as_deref().is_none_or(|g| genres(&r.genres).any(|x| x.eq_ignore_ascii_case(g))))
            .filter(|r| search.year_from.is_none_or(|y| r.year.is_some_and(|ry| ry >= y)))
            .filter(|r| search.year_to.is_none_or(|y| r.year.is_some_and(|ry| ry <= y)))
            .filter(|r| r.rating_count >= search.min_ratings)
            .collect();
        let id = |a: &&MovieRow, b: &&MovieRow| a.movie_id.cmp(&b.movie_id);
        match search.sort {
            SortKey::Ratings => rows.sort_by(|a, b| b.rating_count.cmp(&a.rating_count).then(id(a, b))),
            SortKey::Mean => rows
                .sort_by(|a, b| b.mean_rating.unwrap_or(-1.0).total_cmp(&a.mean_rating.unwrap_or(-1.0)).then(id(a, b))),
            SortKey::Title => rows.sort_by(|a, b| a.title.to_lowercase().cmp(&b.title.to_lowercase()).then(id(a, b))),
            SortKey::Year => rows.sort_by(|a, b| b.year.cmp(&a.year).then(id(a, b))),
            SortKey::Id => rows.sort_by(id),
        }
        if search.reverse {
            rows.reverse();
        }
        let total = rows.len();
        (total, rows.into_iter().skip(search.skip).take(search.limit).collect())
    }
}

/// The cached figures, computing them if none exist yet (also called once at start-up).
///
/// # Errors
/// The store fails on the first computation.
pub async fn current(state: &AppState) -> ApiResult<Arc<Charts>> {
    let store = state.store.clone();
    state.charts.get(move || async move { Charts::load(&store).await.map_err(ApiError::from) }).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::MovieYear;

    fn movie(id: i64, title: &str, genres: &str) -> Movie {
        Movie { movie_id: id, title: title.into(), genres: genres.into() }
    }

    fn charts() -> Charts {
        let my = |movie_id, year, count, sum| MovieYear { movie_id, year, count, sum };
        Charts::build(
            vec![
                movie(1, "Toy Story (1995)", "Adventure|Animation"),
                movie(2, "Heat (1995) ", "Action|Crime"),
                movie(3, "Untitled", "(no genres listed)"),
            ],
            RatingAggregates {
                movie_years: vec![my(1, 2000, 2, 9.0), my(1, 2001, 1, 3.0), my(2, 2000, 4, 8.0)],
                ..RatingAggregates::default()
            },
        )
    }

    #[test]
    fn titles_give_their_trailing_year() {
        assert_eq!(title_year("Toy Story (1995)"), Some(1995));
        assert_eq!(title_year("Babylon 5 (1994) "), Some(1994));
        assert_eq!(title_year("Untitled"), None);
        assert_eq!(title_year("Movie (in 3D)"), None);
    }

    #[test]
    fn per_movie_and_per_genre_figures_add_up_the_movie_years() {
        let c = charts();
        let toy = c.movie(1).unwrap();
        assert_eq!((toy.rating_count, toy.mean_rating), (3, Some(4.0)));
        assert_eq!(c.movie(3).unwrap().mean_rating, None);
        let animation: Vec<_> = c.genre_years.iter().filter(|g| g.genre == "Animation").collect();
        assert_eq!(animation.len(), 2);
        assert_eq!((animation[0].year, animation[0].count, animation[0].mean_rating), (2000, 2, 4.5));
        assert_eq!(c.genres, ["Action", "Adventure", "Animation", "Crime"]);
    }

    #[test]
    fn search_filters_sorts_and_pages() {
        let c = charts();
        let all = MovieSearch { limit: 10, ..MovieSearch::default() };
        let ids = |s: &MovieSearch| c.search(s).1.iter().map(|r| r.movie_id).collect::<Vec<_>>();
        assert_eq!(ids(&all), [2, 1, 3]);
        assert_eq!(ids(&MovieSearch { title: Some("TOY".into()), ..all.clone() }), [1]);
        assert_eq!(ids(&MovieSearch { genre: Some("crime".into()), ..all.clone() }), [2]);
        assert_eq!(ids(&MovieSearch { year_from: Some(1996), ..all.clone() }), Vec::<i64>::new());
        assert_eq!(ids(&MovieSearch { sort: SortKey::Mean, ..all.clone() }), [1, 2, 3]);
        assert_eq!(ids(&MovieSearch { min_ratings: 1, reverse: true, ..all.clone() }), [1, 2]);
        let (total, page) = c.search(&MovieSearch { skip: 1, limit: 1, ..all });
        assert_eq!((total, page[0].movie_id), (3, 1));
    }

    #[test]
    fn best_rated_respects_the_minimum_count() {
        let top = charts().top(10, 3);
        assert_eq!(top.most_rated.iter().map(|m| m.movie_id).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(top.best_rated.iter().map(|m| m.movie_id).collect::<Vec<_>>(), [1, 2]);
    }
}
