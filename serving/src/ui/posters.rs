//! Movie posters. Without a key every poster is generated here: an SVG with the title's
//! initials and year on the main genre's colour (`/posters/{movieId}.svg`). With a TMDb key
//! (`/3/movie/{tmdbId}` gives `poster_path`) or an OMDb key (`?i=tt{imdbId}` gives `Poster`),
//! `/posters/{movieId}` redirects to the real image, looked up once per movie and remembered
//! (a movie without one is remembered too); any failure falls back to the SVG.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use dashmap::DashMap;
use secrecy::{ExposeSecret, SecretString};

use crate::error::ApiError;
use crate::extract::Path;
use crate::live::movies::genres;
use crate::state::AppState;

/// Where real posters come from, when a key is given.
#[derive(Debug, Clone, Default)]
pub struct PosterSettings {
    /// TMDb API key (v3).
    pub tmdb_api_key: Option<SecretString>,
    /// OMDb API key, used when there is no TMDb key.
    pub omdb_api_key: Option<SecretString>,
    /// TMDb's API root (tests point it at a local fake).
    pub tmdb_api_url: String,
    /// TMDb's image root, before `poster_path`.
    pub tmdb_image_url: String,
    /// OMDb's API root (tests point it at a local fake).
    pub omdb_api_url: String,
}

impl PosterSettings {
    /// No keys; the public TMDb and OMDb addresses.
    pub fn new() -> Self {
        Self {
            tmdb_api_key: None,
            omdb_api_key: None,
            tmdb_api_url: "https://api.themoviedb.org".into(),
            tmdb_image_url: "https://image.tmdb.org/t/p/w342".into(),
            omdb_api_url: "https://www.omdbapi.com".into(),
        }
    }
}

/// The poster service: settings and the once-per-movie lookup cache.
pub struct Posters {
    settings: PosterSettings,
    /// movieId → image URL, or `None` when the service has none for it.
    found: DashMap<i64, Option<String>>,
}

impl Posters {
    /// A service with an empty cache.
    pub fn new(settings: PosterSettings) -> Arc<Self> {
        Arc::new(Self { settings, found: DashMap::new() })
    }

    /// Whether real posters are looked up at all.
    pub fn external(&self) -> bool {
        self.settings.tmdb_api_key.is_some() || self.settings.omdb_api_key.is_some()
    }

    /// Whether TMDb is the source (its terms ask for an attribution).
    pub fn uses_tmdb(&self) -> bool {
        self.settings.tmdb_api_key.is_some()
    }

    /// The `src` pages use for a movie's poster.
    pub fn src(&self, movie_id: i64) -> String {
        if self.external() { format!("/posters/{movie_id}") } else { format!("/posters/{movie_id}.svg") }
    }

    /// The real poster's URL, asked of the service once per movie.
    async fn lookup(&self, tmdb_id: Option<i64>, imdb_id: &str, movie_id: i64) -> Option<String> {
        if let Some(known) = self.found.get(&movie_id) {
            return known.clone();
        }
        let settings = self.settings.clone();
        let imdb_id = imdb_id.to_owned();
        let result = tokio::task::spawn_blocking(move || fetch(&settings, tmdb_id, &imdb_id)).await;
        match result {
            Ok(Ok(url)) => {
                self.found.insert(movie_id, url.clone());
                url
            }
            Ok(Err(error)) => {
                // Remembered as "none" too: a failing service is not asked again per page view.
                tracing::warn!(movie_id, %error, "poster lookup failed; using the generated poster");
                self.found.insert(movie_id, None);
                None
            }
            Err(error) => {
                tracing::warn!(movie_id, %error, "poster lookup task failed");
                None
            }
        }
    }
}

/// One blocking lookup: `Ok(None)` when the service has no poster for the movie.
fn fetch(settings: &PosterSettings, tmdb_id: Option<i64>, imdb_id: &str) -> Result<Option<String>, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(3)))
        .http_status_as_error(false)
        .build()
        .into();
    let get_json = |url: String, query: &[(&str, &str)]| -> Result<Option<serde_json::Value>, String> {
        let mut request = agent.get(&url);
        for (k, v) in query {
            request = request.query(*k, *v);
        }
        let mut response = request.call().map_err(|e| e.to_string())?;
        match response.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            status => return Err(format!("{url} answered {status}")),
        }
        let text = response.body_mut().read_to_string().map_err(|e| e.to_string())?;
        serde_json::from_str(&text).map(Some).map_err(|e| format!("{url}: {e}"))
    };
    if let Some(key) = &settings.tmdb_api_key {
        let Some(tmdb_id) = tmdb_id else { return Ok(None) };
        let url = format!("{}/3/movie/{tmdb_id}", settings.tmdb_api_url.trim_end_matches('/'));
        let body = get_json(url, &[("api_key", key.expose_secret())])?;
        Ok(body
            .as_ref()
            .and_then(|b| b.get("poster_path"))
            .and_then(|p| p.as_str())
            .filter(|p| p.starts_with('/'))
            .map(|p| format!("{}{p}", settings.tmdb_image_url.trim_end_matches('/'))))
    } else if let Some(key) = &settings.omdb_api_key {
        let url = format!("{}/", settings.omdb_api_url.trim_end_matches('/'));
        let id = format!("tt{imdb_id}");
        let body = get_json(url, &[("i", &id), ("apikey", key.expose_secret())])?;
        Ok(body
            .as_ref()
            .and_then(|b| b.get("Poster"))
            .and_then(|p| p.as_str())
            .filter(|p| p.starts_with("https://") || p.starts_with("http://"))
            .map(str::to_owned))
    } else {
        Ok(None)
    }
}

/// Background colours by main (first) genre; unknown genres get grey.
const COLOURS: &[(&str, &str)] = &[
    ("Action", "#b23a48"),
    ("Adventure", "#c2682b"),
    ("Animation", "#2a9d8f"),
    ("Children", "#3a86c8"),
    ("Comedy", "#d4a017"),
    ("Crime", "#5c4d7d"),
    ("Documentary", "#4a7c59"),
    ("Drama", "#7a3b69"),
    ("Fantasy", "#6a4c93"),
    ("Film-Noir", "#333333"),
    ("Horror", "#6b1d1d"),
    ("IMAX", "#1d3557"),
    ("Musical", "#c9184a"),
    ("Mystery", "#283d3b"),
    ("Romance", "#b5485d"),
    ("Sci-Fi", "#1b4965"),
    ("Thriller", "#3d405b"),
    ("War", "#5a5a3c"),
    ("Western", "#8d5524"),
];

fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Up to three initials of the title's words, skipping the year and leading articles.
fn initials(title: &str) -> String {
    let name = match title.trim_end().rfind(" (") {
        Some(i) if crate::charts::title_year(title).is_some() => &title[..i],
        _ => title,
    };
    let words: Vec<&str> =
        name.split_whitespace().filter(|w| w.chars().next().is_some_and(char::is_alphanumeric)).collect();
    let skip = usize::from(words.len() > 1 && matches!(words[0].to_lowercase().as_str(), "the" | "a" | "an"));
    words.iter().skip(skip).take(3).filter_map(|w| w.chars().next()).flat_map(char::to_uppercase).collect()
}

/// The generated poster of a movie.
pub fn svg(title: &str, genre_field: &str) -> String {
    let genre = genres(genre_field).next().unwrap_or("");
    let colour = COLOURS.iter().find(|(g, _)| *g == genre).map_or("#555b6e", |(_, c)| c);
    let year = crate::charts::title_year(title).map(|y| y.to_string()).unwrap_or_default();
    let short: String = title.chars().take(28).collect();
    let short = if short.len() < title.len() { format!("{short}…") } else { short };
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 200 300\" width=\"200\" height=\"300\" role=\"img\" \
         aria-label=\"{label}\"><rect width=\"200\" height=\"300\" fill=\"{colour}\"/>\
         <rect x=\"10\" y=\"10\" width=\"180\" height=\"280\" fill=\"none\" stroke=\"#ffffff\" stroke-opacity=\".35\"/>\
         <text x=\"100\" y=\"150\" font-family=\"sans-serif\" font-size=\"64\" font-weight=\"700\" fill=\"#fff\" \
         text-anchor=\"middle\">{initials}</text>\
         <text x=\"100\" y=\"200\" font-family=\"sans-serif\" font-size=\"22\" fill=\"#fff\" text-anchor=\"middle\">{year}</text>\
         <text x=\"100\" y=\"270\" font-family=\"sans-serif\" font-size=\"12\" fill=\"#fff\" text-anchor=\"middle\">{short}</text>\
         </svg>",
        label = escape_xml(&format!("Poster of {title}")),
        initials = escape_xml(&initials(title)),
        short = escape_xml(&short),
    )
}

/// `GET /posters/{movieId}.svg` (generated) and `GET /posters/{movieId}` (real when a key is
/// set, else the generated one).
pub async fn serve(State(state): State<AppState>, Path(file): Path<String>) -> Result<Response, ApiError> {
    let (id_text, generated) = match file.strip_suffix(".svg") {
        Some(id) => (id, true),
        None => (file.as_str(), false),
    };
    let movie_id: i64 = id_text
        .parse()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::Invalid(format!("a poster is /posters/{{movieId}}.svg, got {file:?}")))?;
    let Some(movie) = state.store.movie(movie_id).await? else {
        return Err(ApiError::NotFound(format!("movie {movie_id} not found")));
    };
    if !generated && state.posters.external() {
        let link = state.store.link(movie_id).await?;
        let (tmdb, imdb) = link.map_or((None, String::new()), |l| (l.tmdb_id, l.imdb_id));
        let url = state.posters.lookup(tmdb, &imdb, movie_id).await;
        return Ok(Redirect::to(&url.unwrap_or_else(|| format!("/posters/{movie_id}.svg"))).into_response());
    }
    if !generated {
        return Ok(Redirect::to(&format!("/posters/{movie_id}.svg")).into_response());
    }
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        svg(&movie.title, &movie.genres),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initials_skip_articles_and_the_year() {
        assert_eq!(initials("The Matrix (1999)"), "M");
        assert_eq!(initials("Toy Story (1995)"), "TS");
        assert_eq!(initials("Lord of the Rings: The Fellowship (2001)"), "LOT");
        assert_eq!(initials("Untitled"), "U");
    }

    #[test]
    fn generated_posters_escape_the_title_and_use_the_genre_colour() {
        let s = svg("<script>alert(1)</script> & co (2001)", "Horror|Comedy");
        assert!(s.contains("#6b1d1d") && s.contains("2001"));
        assert!(!s.contains("<script>") && s.contains("&lt;script&gt;"));
    }
}
