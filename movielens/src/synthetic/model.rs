//! The generative model behind a synthetic release: each movie's profile, and what all users
//! share (popularity, biases, taste factors, per-genre sampling tables, per-user counts).

use rand::Rng;

use super::random::{Rng64, allocate, build_alias, exponential, jan_first, normal, pick_cdf, pick_weighted};
use super::*;

/// What one movie looks like, derived from its own random stream (so [`movies`] needs no
/// model).
pub(super) struct MovieProfile {
    year: u32,
    /// Genre indices; the first is the primary genre, which decides the movie's taste group.
    genres: [u8; 3],
    genre_count: u8,
    /// Title decoration: article, alternative title, quotes.
    variant: u8,
}

impl MovieProfile {
    pub(super) fn new(seed: u64, id: u32) -> Self {
        let mut rng = Rng64::stream(seed, STREAM_MOVIE, u64::from(id));
        // Release years: most movies recent, a tail back to the 1900s.
        let age = (exponential(&mut rng) * 16.0).floor() as u32;
        let year = 2022u32.saturating_sub(age).max(1902);
        let count = match rng.random::<f64>() {
            x if x < 0.33 => 1,
            x if x < 0.71 => 2,
            _ => 3,
        };
        let mut genres = [0u8; 3];
        let total: f64 = GENRE_WEIGHTS.iter().sum();
        let mut n = 0;
        while n < count {
            let g = pick_weighted(&GENRE_WEIGHTS, total, rng.random::<f64>()) as u8;
            if !genres[..n].contains(&g) {
                genres[n] = g;
                n += 1;
            }
        }
        let variant = match rng.random::<f64>() {
            x if x < 0.050 => 1, // "..., The"
            x if x < 0.070 => 2, // "..., A"
            x if x < 0.075 => 3, // "..., Les"
            x if x < 0.100 => 4, // alternative title with accents
            x if x < 0.105 => 5, // quoted part
            _ => 0,
        };
        Self { year, genres, genre_count: count as u8, variant }
    }

    pub(super) fn primary_genre(&self) -> usize {
        usize::from(self.genres[0])
    }

    /// Genres in MovieLens order (alphabetical).
    pub(super) fn genres(&self) -> impl Iterator<Item = usize> + use<> {
        let mut sorted = self.genres;
        let n = usize::from(self.genre_count);
        sorted[..n].sort_unstable();
        (0..n).map(move |i| usize::from(sorted[i]))
    }

    pub(super) fn title(&self, id: u32) -> String {
        let year = self.year;
        match self.variant {
            1 => format!("Synthetic Movie {id}, The ({year})"),
            2 => format!("Synthetic Movie {id}, A ({year})"),
            3 => format!("Synthetic Movie {id}, Les ({year})"),
            4 => format!("Synthetic Movie {id} (Film synthétique n° {id}) ({year})"),
            5 => format!("\"Synthetic\" Movie {id} ({year})"),
            _ => format!("Synthetic Movie {id} ({year})"),
        }
    }
}

/// Everything shared across users: movie popularity, biases and factors, per-genre sampling
/// tables, and the per-user rating and tag counts. O(users + movies) memory.
pub(super) struct Model {
    pub(super) cfg: SyntheticConfig,
    /// Movie bias (genre effect + popularity effect + noise), indexed by `movie_id - 1`.
    movie_bias: Vec<f32>,
    /// Movie taste factors, indexed by `movie_id - 1`.
    movie_factors: Vec<[f32; FACTORS]>,
    /// Primary genre of each movie.
    movie_genre: Vec<u8>,
    /// Popularity weight of each movie (Zipf-Mandelbrot over a shuffled rank).
    popularity: Vec<f64>,
    /// Taste direction of each genre; movies of a genre lie around it.
    genre_factors: [[f64; FACTORS]; 19],
    /// Total popularity weight of each genre's movies.
    genre_weight: [f64; 19],
    /// Alias tables for drawing a movie of a genre by popularity, concatenated per genre.
    genre_start: [usize; 20],
    members: Vec<u32>,
    alias_prob: Vec<f64>,
    alias: Vec<u32>,
    /// Share of picks drawn uniformly over the catalogue.
    tail_floor: f64,
    ratings_per_user: Vec<u32>,
    pub(super) tags_per_user: Vec<u32>,
}

impl Model {
    pub(super) fn build(cfg: &SyntheticConfig) -> Result<Self, SyntheticError> {
        cfg.validate()?;
        let m = cfg.movies as usize;
        let mut rng = Rng64::stream(cfg.seed, STREAM_MODEL, 0);

        let mut genre_factors = [[0.0; FACTORS]; 19];
        for row in &mut genre_factors {
            for x in row.iter_mut() {
                *x = normal(&mut rng);
            }
        }

        // Popularity: Zipf-Mandelbrot over ranks, ranks shuffled over ids so that popularity
        // does not follow the id.
        let mut rank: Vec<u32> = (0..cfg.movies).collect();
        for i in (1..m).rev() {
            let j = rng.random_range(0..=i);
            rank.swap(i, j);
        }
        let q = ZIPF_Q;
        let exponent = (ZIPF_S + ZIPF_S_GROWTH * (m as f64 / 9_742.0).ln()).clamp(1.1, 2.5);
        let popularity: Vec<f64> = rank.iter().map(|&r| (f64::from(r) + q).powf(-exponent)).collect();
        let log_pop: Vec<f64> = popularity.iter().map(|p| p.ln()).collect();
        // Centred on what the ratings see (popularity-weighted), so the mean rating does not
        // drift with the scale.
        let weight: f64 = popularity.iter().sum();
        let mean = popularity.iter().zip(&log_pop).map(|(p, l)| p * l).sum::<f64>() / weight;
        let var = popularity.iter().zip(&log_pop).map(|(p, l)| p * (l - mean).powi(2)).sum::<f64>() / weight;
        let sd = var.sqrt().max(1e-9);

        let mut movie_bias = Vec::with_capacity(m);
        let mut movie_factors = Vec::with_capacity(m);
        let mut movie_genre = Vec::with_capacity(m);
        for id in 1..=cfg.movies {
            let profile = MovieProfile::new(cfg.seed, id);
            let i = id as usize - 1;
            let g = profile.primary_genre();
            let genre_bias: f32 = profile.genres().map(|g| GENRE_BIAS[g]).sum::<f32>() / f32::from(profile.genre_count);
            let mut r = Rng64::stream(cfg.seed, STREAM_MOVIE_LATENT, u64::from(id));
            let bias =
                f64::from(genre_bias) + POPULARITY_BIAS * (log_pop[i] - mean) / sd + MOVIE_BIAS_SD * normal(&mut r);
            let mut f = [0.0f32; FACTORS];
            for (k, x) in f.iter_mut().enumerate() {
                *x = (GENRE_FACTOR_SCALE * genre_factors[g][k] + MOVIE_FACTOR_NOISE_SD * normal(&mut r)) as f32;
            }
            movie_bias.push(bias as f32);
            movie_factors.push(f);
            movie_genre.push(g as u8);
        }

        // Per-genre alias tables.
        let mut genre_start = [0usize; 20];
        for &g in &movie_genre {
            genre_start[usize::from(g) + 1] += 1;
        }
        for g in 0..19 {
            genre_start[g + 1] += genre_start[g];
        }
        let mut fill = genre_start;
        let mut members = vec![0u32; m];
        for (i, &g) in movie_genre.iter().enumerate() {
            members[fill[usize::from(g)]] = i as u32;
            fill[usize::from(g)] += 1;
        }
        let mut alias_prob = vec![0.0; m];
        let mut alias = vec![0u32; m];
        let mut genre_weight = [0.0; 19];
        for g in 0..19 {
            let range = genre_start[g]..genre_start[g + 1];
            let weights: Vec<f64> = members[range.clone()].iter().map(|&i| popularity[i as usize]).collect();
            genre_weight[g] = weights.iter().sum();
            build_alias(&weights, &mut alias_prob[range.clone()], &mut alias[range]);
        }

        // Activity: the minimum for everyone, the rest shared out log-normally, capped at a
        // third of the catalogue (or more when the config is that dense).
        let min = cfg.min_ratings_per_user();
        let users = cfg.users as usize;
        let cap =
            u64::from((cfg.movies / 3).max(min)).max(cfg.ratings.div_ceil(users as u64)).min(u64::from(cfg.movies));
        let activity: Vec<f64> = (1..=cfg.users)
            .map(|u| (ACTIVITY_SIGMA * normal(&mut Rng64::stream(cfg.seed, STREAM_USER_PLAN, u64::from(u)))).exp())
            .collect();
        let ratings_per_user = allocate(cfg.ratings, &activity, &vec![min; users], &vec![cap as u32; users]);

        // Taggers: about one user in ten, log-normal counts, at most three tags per rating.
        let mut tag_weight: Vec<f64> = Vec::with_capacity(users);
        for u in 1..=cfg.users {
            let mut r = Rng64::stream(cfg.seed, STREAM_TAG_PLAN, u64::from(u));
            let chosen = r.random::<f64>() < TAGGER_SHARE;
            let w = (TAG_SIGMA * normal(&mut r)).exp();
            tag_weight.push(if chosen { w } else { -w });
        }
        let tag_cap: Vec<u32> = ratings_per_user.iter().map(|&n| n.saturating_mul(MAX_TAGS_PER_MOVIE)).collect();
        let chosen_capacity: u64 =
            tag_weight.iter().zip(&tag_cap).filter(|(w, _)| **w > 0.0).map(|(_, &c)| u64::from(c)).sum();
        if chosen_capacity < cfg.tags {
            // Too few taggers for the requested tags: everyone may tag.
            for w in &mut tag_weight {
                *w = w.abs();
            }
        }
        for w in &mut tag_weight {
            *w = w.max(0.0);
        }
        let tags_per_user = allocate(cfg.tags, &tag_weight, &vec![0; users], &tag_cap);

        Ok(Self {
            cfg: *cfg,
            movie_bias,
            movie_factors,
            movie_genre,
            popularity,
            genre_factors,
            genre_weight,
            genre_start,
            members,
            alias_prob,
            alias,
            tail_floor: (TAIL_FLOOR * m as f64 / cfg.ratings as f64).min(0.5),
            ratings_per_user,
            tags_per_user,
        })
    }

    /// One user's ratings, sorted by movie id, with increasing timestamps.
    pub(super) fn user_ratings(&self, user: u32, scratch: &mut Scratch, out: &mut Vec<RatingRow>) {
        out.clear();
        let n = self.ratings_per_user[user as usize - 1] as usize;
        let movies = self.cfg.movies as usize;
        let mut rng = Rng64::stream(self.cfg.seed, STREAM_USER_RATINGS, u64::from(user));

        // Taste and the genre mix it leads to.
        let bias = USER_BIAS_SD * normal(&mut rng);
        let mut taste = [0.0f64; FACTORS];
        for x in &mut taste {
            *x = USER_FACTOR_SD * normal(&mut rng);
        }
        let mut genre_cdf = [0.0f64; 19];
        let mut total = 0.0;
        for (g, cdf) in genre_cdf.iter_mut().enumerate() {
            let fit: f64 = (0..FACTORS).map(|k| taste[k] * self.genre_factors[g][k]).sum();
            let w = self.genre_weight[g] * (TASTE_SELECTION * fit + 0.3 * normal(&mut rng)).exp();
            total += w;
            *cdf = total;
        }
        // A small uniform share of picks keeps the tail populated.
        let explore = self.tail_floor;

        // Distinct movies. Heavy users: exact weighted sampling without replacement over the
        // whole catalogue (Efraimidis-Spirakis keys), so they rate nearly every popular movie
        // and go on down the tail. Others: rejection on a bitset, cheap for small samples.
        let chosen = &mut scratch.chosen;
        chosen.clear();
        if n > movies / HEAVY_USER_DIVISOR {
            let mut share = [0.0f64; 19];
            let mut below = 0.0;
            for (g, s) in share.iter_mut().enumerate() {
                if self.genre_weight[g] > 0.0 {
                    *s = (genre_cdf[g] - below) / total / self.genre_weight[g];
                }
                below = genre_cdf[g];
            }
            let keys = &mut scratch.keys;
            keys.clear();
            let uniform = explore / movies as f64;
            for i in 0..movies {
                let w = (1.0 - explore) * share[usize::from(self.movie_genre[i])] * self.popularity[i] + uniform;
                keys.push((exponential(&mut rng) / w, i as u32));
            }
            keys.select_nth_unstable_by(n - 1, |a, b| a.0.total_cmp(&b.0));
            chosen.extend(keys[..n].iter().map(|k| k.1));
        } else {
            let mut attempts = 4 * n + 64;
            while chosen.len() < n && attempts > 0 {
                attempts -= 1;
                let i = if rng.random::<f64>() < explore {
                    rng.random_range(0..movies)
                } else {
                    let g = pick_cdf(&genre_cdf, rng.random::<f64>() * total);
                    let (start, end) = (self.genre_start[g], self.genre_start[g + 1]);
                    let k = start + rng.random_range(0..end - start);
                    if rng.random::<f64>() < self.alias_prob[k] {
                        self.members[k] as usize
                    } else {
                        self.members[start + self.alias[k] as usize] as usize
                    }
                };
                if scratch.seen.insert(i) {
                    chosen.push(i as u32);
                }
            }
            // Out of attempts (a narrow taste exhausted): fill uniformly.
            while chosen.len() < n {
                let i = rng.random_range(0..movies);
                if scratch.seen.insert(i) {
                    chosen.push(i as u32);
                }
            }
            for &i in chosen.iter() {
                scratch.seen.remove(i as usize);
            }
        }
        chosen.sort_unstable();

        // Activity window and session-shaped gaps, scaled to fit it.
        let start_year = pick_weighted(&START_YEAR_WEIGHTS, START_YEAR_WEIGHTS.iter().sum(), rng.random::<f64>());
        let year_start = jan_first(1996 + start_year as i64);
        let mut start = year_start + (rng.random::<f64>() * 365.0 * 86_400.0) as i64;
        // Median two days, a tail of years.
        let mut span = (2.0 * 86_400.0 * (2.5 * normal(&mut rng)).exp()) as i64;
        let min_span = 30 * n as i64;
        span = span.max(min_span).min(LAST_SECOND - FIRST_SECOND);
        start = start.min(LAST_SECOND - span).max(FIRST_SECOND);
        let half_stars = start >= HALF_STARS_FROM && rng.random::<f64>() < HALF_STAR_USERS;
        let gaps = &mut scratch.gaps;
        gaps.clear();
        let mut sum = 0.0;
        for _ in 0..n {
            let gap = if rng.random::<f64>() < 0.04 { 300.0 * exponential(&mut rng) } else { exponential(&mut rng) };
            sum += gap;
            gaps.push(sum);
        }
        let scale = if sum > 0.0 { (span - n as i64) as f64 / sum } else { 0.0 };

        let mut last = start - 1;
        let uid = i64::from(user);
        for (j, &i) in chosen.iter().enumerate() {
            let i = i as usize;
            let t = (start + (gaps[j] * scale) as i64 + j as i64).max(last + 1);
            last = t;
            let f = &self.movie_factors[i];
            let fit: f64 = (0..FACTORS).map(|k| taste[k] * f64::from(f[k])).sum();
            let mut score = GLOBAL_MEAN + bias + f64::from(self.movie_bias[i]) + fit + NOISE_SD * normal(&mut rng);
            if rng.random::<f64>() < LETDOWN_CHANCE {
                score -= LETDOWN_MEAN * exponential(&mut rng);
            }
            let steps =
                if half_stars { (score * 2.0).round().clamp(1.0, 10.0) } else { score.round().clamp(1.0, 5.0) * 2.0 };
            out.push(RatingRow { user_id: uid, movie_id: i as i64 + 1, rating: steps as f32 * 0.5, timestamp: t });
        }
    }

    /// One user's tags, on movies from `rated` (that user's ratings), sorted by movie id.
    pub(super) fn user_tags(&self, user: u32, rated: &[RatingRow], out: &mut Vec<TagRow>) {
        out.clear();
        let t = self.tags_per_user[user as usize - 1] as usize;
        if t == 0 || rated.is_empty() {
            return;
        }
        let mut rng = Rng64::stream(self.cfg.seed, STREAM_USER_TAGS, u64::from(user));
        let per = MAX_TAGS_PER_MOVIE as usize;
        // About 1.6 tags per tagged movie, at most three.
        let m = (t as f64 / 1.6).ceil() as usize;
        let m = m.min(rated.len()).max(t.div_ceil(per));
        let mut picks: Vec<usize> = (0..rated.len()).collect();
        for j in 0..m {
            let k = rng.random_range(j..picks.len());
            picks.swap(j, k);
        }
        picks.truncate(m);
        picks.sort_unstable();
        let mut counts = vec![1usize; m];
        let mut extra = t - m;
        while extra > 0 {
            let j = rng.random_range(0..m);
            if counts[j] < per {
                counts[j] += 1;
                extra -= 1;
            }
        }
        let mut used: Vec<&str> = Vec::with_capacity(per);
        for (&r, &count) in picks.iter().zip(&counts) {
            let row = &rated[r];
            let genre = usize::from(self.movie_genre[row.movie_id as usize - 1]);
            used.clear();
            while used.len() < count {
                let tag = if rng.random::<f64>() < 0.7 {
                    let list = GENRE_TAGS[genre];
                    list[rng.random_range(0..list.len())]
                } else {
                    GENERIC_TAGS[rng.random_range(0..GENERIC_TAGS.len())]
                };
                if !used.contains(&tag) {
                    used.push(tag);
                }
            }
            for tag in &used {
                let delay = 1 + rng.random_range(0..600);
                out.push(TagRow {
                    user_id: row.user_id,
                    movie_id: row.movie_id,
                    tag: (*tag).to_owned(),
                    timestamp: (row.timestamp + delay).min(LAST_SECOND),
                });
            }
        }
    }
}

/// Per-iterator working memory, reused across users.
pub(super) struct Scratch {
    seen: BitSet,
    chosen: Vec<u32>,
    gaps: Vec<f64>,
    keys: Vec<(f64, u32)>,
}

impl Scratch {
    pub(super) fn new(movies: u32) -> Self {
        Self { seen: BitSet::new(movies as usize), chosen: Vec::new(), gaps: Vec::new(), keys: Vec::new() }
    }
}

pub(super) struct BitSet(Vec<u64>);

impl BitSet {
    pub(super) fn new(n: usize) -> Self {
        Self(vec![0; n.div_ceil(64)])
    }
    /// Sets bit `i`; true if it was clear.
    pub(super) fn insert(&mut self, i: usize) -> bool {
        let (w, b) = (i / 64, 1u64 << (i % 64));
        let fresh = self.0[w] & b == 0;
        self.0[w] |= b;
        fresh
    }
    pub(super) fn remove(&mut self, i: usize) {
        self.0[i / 64] &= !(1u64 << (i % 64));
    }
}
