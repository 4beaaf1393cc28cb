//! What a user's ratings say about them: how many, their mean, the genres they like most and
//! the movies they rated highest. Pure: the caller says which genres each movie has.

use std::collections::BTreeMap;

use crate::ids::ItemId;

/// Ratings a genre needs before its mean counts as much as the user's overall mean: a genre
/// rated once at 5 does not outrank one rated twenty times at 4.5.
pub const GENRE_DAMPING: f64 = 3.0;

/// A user's taste, from their ratings.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Ratings counted.
    pub ratings: usize,
    /// Their mean.
    pub mean: f64,
    /// Every genre of a rated movie, favourite first (by damped mean, then by count).
    pub genres: Vec<GenreTaste>,
    /// The rated movies, highest rating first (then by id).
    pub top_rated: Vec<(ItemId, f32)>,
}

/// The user's ratings of one genre.
#[derive(Debug, Clone, PartialEq)]
pub struct GenreTaste {
    /// The genre's name.
    pub genre: String,
    /// Rated movies of the genre.
    pub count: u64,
    /// Their mean rating.
    pub mean: f64,
}

impl Profile {
    /// The profile of these `(movie, rating)` pairs, with `genres_of` naming each movie's
    /// genres; `None` without ratings.
    pub fn of<'a, G>(rated: &[(ItemId, f32)], genres_of: impl Fn(ItemId) -> G) -> Option<Self>
    where
        G: IntoIterator<Item = &'a str>,
    {
        if rated.is_empty() {
            return None;
        }
        let mean = rated.iter().map(|r| f64::from(r.1)).sum::<f64>() / rated.len() as f64;
        let mut by_genre: BTreeMap<&str, (u64, f64)> = BTreeMap::new();
        for &(item, rating) in rated {
            for genre in genres_of(item) {
                let e = by_genre.entry(genre).or_default();
                e.0 += 1;
                e.1 += f64::from(rating);
            }
        }
        let damped = |&(count, sum): &(u64, f64)| (sum + GENRE_DAMPING * mean) / (count as f64 + GENRE_DAMPING);
        let mut ranked: Vec<(&str, (u64, f64))> = by_genre.into_iter().collect();
        ranked.sort_by(|a, b| damped(&b.1).total_cmp(&damped(&a.1)).then(b.1.0.cmp(&a.1.0)));
        let genres = ranked
            .into_iter()
            .map(|(genre, (count, sum))| GenreTaste { genre: genre.to_owned(), count, mean: sum / count as f64 })
            .collect();
        let mut top_rated = rated.to_vec();
        top_rated.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Some(Self { ratings: rated.len(), mean, genres, top_rated })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn genres_of(item: ItemId) -> Vec<&'static str> {
        match item {
            1 => vec!["Comedy"],
            2 => vec!["Comedy", "Drama"],
            3 => vec!["Drama"],
            _ => vec![],
        }
    }

    #[test]
    fn no_ratings_no_profile() {
        assert_eq!(Profile::of(&[], genres_of), None);
    }

    #[test]
    fn genres_rank_by_damped_mean_and_movies_by_rating() {
        // Mean 3.5: Comedy (5, 4) damps to (9 + 10.5) / 5 = 3.9; Drama (4, 1) to (5 + 10.5) / 5 = 3.1.
        let p = Profile::of(&[(1, 5.0), (2, 4.0), (3, 1.0), (9, 4.0)], genres_of).unwrap();
        assert_eq!((p.ratings, p.mean), (4, 3.5));
        let genres: Vec<(&str, u64, f64)> = p.genres.iter().map(|g| (g.genre.as_str(), g.count, g.mean)).collect();
        assert_eq!(genres, vec![("Comedy", 2, 4.5), ("Drama", 2, 2.5)]);
        assert_eq!(p.top_rated, vec![(1, 5.0), (2, 4.0), (9, 4.0), (3, 1.0)]);
    }

    #[test]
    fn one_high_rating_does_not_outrank_many_good_ones() {
        // Mean 70 / 21 = 3.33: Drama's ten 4.5s damp to 55 / 13 = 4.23, Horror's one 5.0 to 15 / 4 = 3.75.
        let genres_of = |item: ItemId| match item {
            0 => vec!["Horror"],
            1..=10 => vec!["Drama"],
            _ => vec!["Comedy"],
        };
        let mut rated: Vec<(ItemId, f32)> = (1..=10).map(|i| (i, 4.5)).chain((11..=20).map(|i| (i, 2.0))).collect();
        rated.push((0, 5.0));
        let p = Profile::of(&rated, genres_of).unwrap();
        let order: Vec<&str> = p.genres.iter().map(|g| g.genre.as_str()).collect();
        assert_eq!(order, ["Drama", "Horror", "Comedy"]);
    }
}
