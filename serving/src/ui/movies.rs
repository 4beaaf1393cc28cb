//! `/ui/movies`: the catalogue as a table that filters as you type. The form works without
//! JavaScript (a GET to the page); with htmx each change fetches only `/ui/movies/table`,
//! which also refreshes the field messages (out-of-band) and the address bar.

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Layout, OrPage, PageResult};
use crate::charts::{self, Charts, MovieRow, MovieSearch, SortKey};
use crate::state::AppState;

/// Rows per page.
const PER_PAGE: usize = 25;
/// Longest title search accepted.
const MAX_TITLE: usize = 200;

/// The form as typed: every field is text so a bad value gets a message, not a rejection.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct MovieForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    genre: String,
    #[serde(default)]
    year_from: String,
    #[serde(default)]
    year_to: String,
    #[serde(default)]
    min_ratings: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    dir: String,
    #[serde(default)]
    page: String,
}

/// What the form fields say is wrong, by field name.
type Messages = BTreeMap<&'static str, String>;

fn year(name: &'static str, text: &str, messages: &mut Messages) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    match text.parse::<i64>() {
        Ok(y) if (1870..=2100).contains(&y) => Some(y),
        _ => {
            messages.insert(name, format!("Enter a year between 1870 and 2100, not \u{201c}{text}\u{201d}."));
            None
        }
    }
}

impl MovieForm {
    /// The search, and a message for each invalid field.
    fn search(&self, charts: &Charts) -> (MovieSearch, Messages, usize) {
        let mut m = Messages::new();
        let title = self.title.trim();
        let title = if title.contains('\0') || title.chars().count() > MAX_TITLE {
            m.insert("title", format!("Enter at most {MAX_TITLE} ordinary characters."));
            None
        } else {
            (!title.is_empty()).then(|| title.to_owned())
        };
        let genre = self.genre.trim();
        let genre = if genre.is_empty() {
            None
        } else if charts.genres.iter().any(|g| g.eq_ignore_ascii_case(genre)) {
            Some(genre.to_owned())
        } else {
            m.insert("genre", "Choose a genre from the list.".into());
            None
        };
        let year_from = year("year_from", &self.year_from, &mut m);
        let year_to = year("year_to", &self.year_to, &mut m);
        if let (Some(a), Some(b)) = (year_from, year_to)
            && a > b
        {
            m.insert("year_to", "The last year must not be before the first.".into());
        }
        let min_ratings = match self.min_ratings.trim() {
            "" => 0,
            t => match t.parse::<i64>() {
                Ok(n) if n >= 0 => n,
                _ => {
                    m.insert("min_ratings", "Enter a whole number, 0 or more.".into());
                    0
                }
            },
        };
        let sort = match self.sort.trim() {
            "" => SortKey::default(),
            t => SortKey::parse(t).unwrap_or_else(|| {
                m.insert("sort", "Choose a sort order from the list.".into());
                SortKey::default()
            }),
        };
        let reverse = match self.dir.trim() {
            "" | "default" => false,
            "reverse" => true,
            _ => {
                m.insert("dir", "Choose a direction from the list.".into());
                false
            }
        };
        let page = match self.page.trim() {
            "" => 1,
            t => match t.parse::<usize>() {
                Ok(p) if (1..=100_000).contains(&p) => p,
                _ => {
                    m.insert("page", "Pages are numbered from 1.".into());
                    1
                }
            },
        };
        let search = MovieSearch {
            title,
            genre,
            year_from,
            year_to,
            min_ratings,
            sort,
            reverse,
            skip: (page - 1) * PER_PAGE,
            limit: PER_PAGE,
        };
        (search, m, page)
    }

    /// The query string of this form on another page.
    fn query(&self, page: usize) -> String {
        let fields = [
            ("title", &self.title),
            ("genre", &self.genre),
            ("year_from", &self.year_from),
            ("year_to", &self.year_to),
            ("min_ratings", &self.min_ratings),
            ("sort", &self.sort),
            ("dir", &self.dir),
        ];
        let mut parts: Vec<String> = fields
            .iter()
            // Defaults are left out so equal searches share one address.
            .filter(|(k, v)| {
                !v.trim().is_empty() && !matches!((*k, v.trim()), ("sort", "ratings") | ("dir", "default"))
            })
            .map(|(k, v)| format!("{k}={}", encode(v.trim())))
            .collect();
        if page > 1 {
            parts.push(format!("page={page}"));
        }
        parts.join("&")
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One table row as shown.
struct Row {
    movie_id: i64,
    title: String,
    year: String,
    genres: String,
    rating_count: i64,
    mean: String,
    poster: String,
}

/// The results: table, pager and the field messages.
#[derive(Template, WebTemplate)]
#[template(path = "movies_table.html")]
struct Table {
    rows: Vec<Row>,
    total: usize,
    page: usize,
    pages: usize,
    prev: Option<String>,
    next: Option<String>,
    messages: Messages,
    /// Whether the messages go out-of-band (htmx partial) or are already in the form.
    oob: bool,
}

impl Table {
    fn message(&self, field: &str) -> String {
        self.messages.get(field).cloned().unwrap_or_default()
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "movies.html")]
struct MoviesPage {
    layout: Layout,
    form: MovieForm,
    genres: Vec<String>,
    sorts: Vec<(&'static str, &'static str)>,
    table: Table,
}

impl MoviesPage {
    fn message(&self, field: &str) -> String {
        self.table.message(field)
    }
}

fn results(state: &AppState, charts: &Charts, form: &MovieForm, oob: bool) -> Table {
    let (search, messages, page) = form.search(charts);
    let (total, rows) = if messages.is_empty() { charts.search(&search) } else { (0, Vec::new()) };
    let pages = total.div_ceil(PER_PAGE).max(1);
    let row = |r: &MovieRow| Row {
        movie_id: r.movie_id,
        title: r.title.clone(),
        year: r.year.map(|y| y.to_string()).unwrap_or_default(),
        genres: r.genres.replace('|', ", "),
        rating_count: r.rating_count,
        mean: r.mean_rating.map(|m| format!("{m:.2}")).unwrap_or_else(|| "–".into()),
        poster: state.posters.src(r.movie_id),
    };
    Table {
        rows: rows.into_iter().map(row).collect(),
        total,
        page,
        pages,
        prev: (page > 1).then(|| form.query(page - 1)),
        next: (page < pages).then(|| form.query(page + 1)),
        messages,
        oob,
    }
}

/// `GET /ui/movies`.
pub async fn page(
    State(state): State<AppState>,
    axum::extract::Query(form): axum::extract::Query<MovieForm>,
) -> PageResult<Response> {
    let charts = charts::current(&state).await.or_page(&state)?;
    let page = MoviesPage {
        layout: Layout::new(&state, "Movies", "movies"),
        genres: charts.genres.clone(),
        sorts: vec![
            ("ratings", "Most ratings"),
            ("mean", "Highest mean rating"),
            ("title", "Title"),
            ("year", "Newest"),
            ("id", "Movie id"),
        ],
        table: results(&state, &charts, &form, false),
        form,
    };
    Ok(page.into_response())
}

/// `GET /ui/movies/table`: the results for htmx; the address bar follows (`HX-Push-Url`).
pub async fn table(
    State(state): State<AppState>,
    axum::extract::Query(form): axum::extract::Query<MovieForm>,
) -> PageResult<Response> {
    let charts = charts::current(&state).await.or_page(&state)?;
    let table = results(&state, &charts, &form, true);
    let query = form.query(table.page);
    let mut response = table.into_response();
    let url = if query.is_empty() { "/ui/movies".to_owned() } else { format!("/ui/movies?{query}") };
    if let Ok(value) = HeaderValue::from_str(&url) {
        response.headers_mut().insert("HX-Push-Url", value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_fields_get_their_own_message() {
        let charts = Charts::default();
        let form = MovieForm {
            year_from: "abc".into(),
            year_to: "1990".into(),
            min_ratings: "-1".into(),
            genre: "Nope".into(),
            ..MovieForm::default()
        };
        let (_, m, _) = form.search(&charts);
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), ["genre", "min_ratings", "year_from"]);
        let reversed = MovieForm { year_from: "2000".into(), year_to: "1990".into(), ..MovieForm::default() };
        assert!(reversed.search(&charts).1.contains_key("year_to"));
    }

    #[test]
    fn the_query_string_keeps_filled_fields_encoded() {
        let form = MovieForm { title: "toy & co".into(), sort: "title".into(), ..MovieForm::default() };
        assert_eq!(form.query(2), "title=toy%20%26%20co&sort=title&page=2");
    }
}
