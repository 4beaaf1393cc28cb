//! The catalogue in memory for recommendation answers: titles and genres by movie id, genre
//! filters, and the content index (genres and tags) for movies without ratings.

use std::collections::{HashMap, HashSet};

use model::ContentIndex;
use store::{MovieQuery, Page, Store, StoreError, TagQuery};

/// One movie as recommendation answers show it.
#[derive(Debug, Clone, PartialEq)]
pub struct MovieInfo {
    /// Title with year.
    pub title: String,
    /// `|`-separated genres.
    pub genres: String,
}

/// Every movie of the catalogue, loaded at start and at each retrain (movies only arrive by
/// import, so this is never stale for long).
#[derive(Debug, Default)]
pub struct Movies {
    by_id: HashMap<i64, MovieInfo>,
    /// Lower-cased genre → its movies.
    by_genre: HashMap<String, HashSet<i64>>,
    content: ContentIndex,
}

/// Tags used by a movie's content features: the most frequent ones, lower-cased.
const TAGS_PER_MOVIE: usize = 20;

impl Movies {
    /// Reads movies and tags from the store.
    ///
    /// # Errors
    /// A database error.
    pub async fn load(store: &Store) -> Result<Self, StoreError> {
        let all = Page { skip: 0, limit: i64::MAX };
        let (movie_query, tag_query) = (MovieQuery::default(), TagQuery::default());
        let (movies, tags) = tokio::try_join!(store.movies(&movie_query, all), store.tags(&tag_query, all))?;
        let mut tag_counts: HashMap<i64, HashMap<String, u32>> = HashMap::new();
        for t in tags {
            *tag_counts.entry(t.movie_id).or_default().entry(t.tag.trim().to_lowercase()).or_default() += 1;
        }
        Ok(Self::build(
            movies.into_iter().map(|m| (m.movie_id, MovieInfo { title: m.title, genres: m.genres })),
            &tag_counts,
        ))
    }

    /// Builds the index from movies and per-movie tag counts.
    pub fn build(
        movies: impl IntoIterator<Item = (i64, MovieInfo)>,
        tags: &HashMap<i64, HashMap<String, u32>>,
    ) -> Self {
        let by_id: HashMap<i64, MovieInfo> = movies.into_iter().collect();
        let mut by_genre: HashMap<String, HashSet<i64>> = HashMap::new();
        let mut features = Vec::with_capacity(by_id.len());
        for (&id, info) in &by_id {
            let mut f: Vec<String> = genres(&info.genres).map(|g| format!("genre:{g}")).collect();
            for g in genres(&info.genres) {
                by_genre.entry(g.to_lowercase()).or_default().insert(id);
            }
            if let Some(counts) = tags.get(&id) {
                let mut top: Vec<(&String, &u32)> = counts.iter().collect();
                top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                f.extend(top.into_iter().take(TAGS_PER_MOVIE).map(|(t, _)| format!("tag:{t}")));
            }
            features.push((id, f));
        }
        features.sort_by_key(|f| f.0);
        Self { content: ContentIndex::build(features), by_id, by_genre }
    }

    /// The movie, if in the catalogue.
    pub fn get(&self, id: i64) -> Option<&MovieInfo> {
        self.by_id.get(&id)
    }

    /// Whether the movie is in the catalogue.
    pub fn contains(&self, id: i64) -> bool {
        self.by_id.contains_key(&id)
    }

    /// Movies in the catalogue.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether the catalogue is empty.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The movies of a genre (case-insensitive); `None` for a genre no movie has.
    pub fn genre(&self, name: &str) -> Option<&HashSet<i64>> {
        self.by_genre.get(&name.trim().to_lowercase())
    }

    /// The content index over genres and tags.
    pub fn content(&self) -> &ContentIndex {
        &self.content
    }
}

/// The genres of a movies.csv `genres` field, without the "(no genres listed)" marker.
pub fn genres(field: &str) -> impl Iterator<Item = &str> {
    field.split('|').map(str::trim).filter(|g| !g.is_empty() && !g.starts_with('('))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn movies() -> Movies {
        let info = |t: &str, g: &str| MovieInfo { title: t.into(), genres: g.into() };
        let mut tags = HashMap::new();
        tags.insert(3, HashMap::from([("pixar".to_string(), 2), ("toys".to_string(), 1)]));
        tags.insert(1, HashMap::from([("pixar".to_string(), 5)]));
        Movies::build(
            [
                (1, info("Toy Story (1995)", "Adventure|Animation|Children")),
                (2, info("Heat (1995)", "Action|Crime|Thriller")),
                (3, info("Toy Story 2 (1999)", "Adventure|Animation|Children")),
                (4, info("Unknown (2020)", "(no genres listed)")),
            ],
            &tags,
        )
    }

    #[test]
    fn genres_are_matched_case_insensitively_and_the_marker_is_not_a_genre() {
        let m = movies();
        assert_eq!(m.genre("animation").unwrap(), &HashSet::from([1, 3]));
        assert_eq!(m.genre(" THRILLER ").unwrap(), &HashSet::from([2]));
        assert!(m.genre("(no genres listed)").is_none());
        assert_eq!(m.len(), 4);
        assert_eq!(m.get(2).unwrap().title, "Heat (1995)");
    }

    #[test]
    fn content_similarity_uses_genres_and_tags() {
        let m = movies();
        let similar = m.content().similar(1, &model::Query::top(2));
        assert_eq!(similar[0].item, 3, "{similar:?}");
        assert!(similar.iter().all(|s| s.item != 1));
    }
}
