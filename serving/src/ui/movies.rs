//! `/ui/movies`: the catalogue as a table that filters as you type. The form works without
//! JavaScript (a GET to the page); with htmx each change fetches only `/ui/movies/table`,
//! which also refreshes the field messages (out-of-band) and the address bar. The column
//! headers are links to the same table sorted by that column (again: reversed), so sorting
//! works without JavaScript too.

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

/// A page address (`/ui/movies`) or the partial's (`/ui/movies/table`) with a query string.
fn address(path: &str, query: &str) -> String {
    if query.is_empty() { path.to_owned() } else { format!("{path}?{query}") }
}

/// The table's columns: label, sort key (none: not sortable), numeric.
const COLUMNS: [(&str, Option<SortKey>, bool); 5] = [
    ("Title", Some(SortKey::Title), false),
    ("Year", Some(SortKey::Year), false),
    ("Genres", None, false),
    ("Ratings", Some(SortKey::Ratings), true),
    ("Mean", Some(SortKey::Mean), true),
];

/// A column header; a sortable one links to the table sorted by it, or reversed when it is
/// the current order.
struct Header {
    label: &'static str,
    /// The `sort` value; also names the link (`sort-{key}`) so htmx keeps the focus on it
    /// when the table is replaced.
    key: Option<&'static str>,
    numeric: bool,
    /// `ascending` or `descending` on the column the table is sorted by.
    aria_sort: Option<&'static str>,
    /// The page the link opens without JavaScript.
    href: String,
    /// The partial htmx fetches instead.
    partial: String,
}

/// The headers of the table of `form`, shown in `sort` order (`reverse`d or not).
fn headers(form: &MovieForm, sort: SortKey, reverse: bool) -> Vec<Header> {
    COLUMNS
        .iter()
        .map(|&(label, key, numeric)| {
            let active = key == Some(sort);
            let query = key.map(|k| {
                let dir = if active && !reverse { "reverse" } else { "default" };
                MovieForm { sort: k.as_str().into(), dir: dir.into(), ..form.clone() }.query(1)
            });
            Header {
                label,
                key: key.map(SortKey::as_str),
                numeric,
                aria_sort: active.then_some(if sort.ascends() != reverse { "ascending" } else { "descending" }),
                href: query.as_deref().map(|q| address("/ui/movies", q)).unwrap_or_default(),
                partial: query.as_deref().map(|q| address("/ui/movies/table", q)).unwrap_or_default(),
            }
        })
        .collect()
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
    headers: Vec<Header>,
    /// The order shown (`sort`, `dir`), for the form's controls to follow.
    sort: &'static str,
    dir: &'static str,
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
    /// The drop-downs' (value, text) options.
    genres: Vec<(String, String)>,
    sorts: Vec<(String, String)>,
    orders: Vec<(String, String)>,
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
        headers: headers(form, search.sort, search.reverse),
        sort: search.sort.as_str(),
        dir: if search.reverse { "reverse" } else { "default" },
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

fn options<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<(String, String)> {
    pairs.into_iter().map(|(value, text)| (value.to_owned(), text.to_owned())).collect()
}

/// `GET /ui/movies`.
pub async fn page(
    State(state): State<AppState>,
    axum::extract::Query(form): axum::extract::Query<MovieForm>,
) -> PageResult<Response> {
    let charts = charts::current(&state).await.or_page(&state)?;
    let page = MoviesPage {
        layout: Layout::new(&state, "Movies", "movies"),
        genres: options(
            std::iter::once(("", "Any genre")).chain(charts.genres.iter().map(|g| (g.as_str(), g.as_str()))),
        ),
        sorts: options([
            ("ratings", "Most ratings"),
            ("mean", "Highest mean rating"),
            ("title", "Title"),
            ("year", "Newest"),
            ("id", "Movie id"),
        ]),
        orders: options([("default", "As sorted"), ("reverse", "Reversed")]),
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
    if let Ok(value) = HeaderValue::from_str(&address("/ui/movies", &query)) {
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
    fn each_keys_own_order_is_the_one_the_search_uses() {
        let row = |movie_id: i64, title: &str, year: i64| MovieRow {
            movie_id,
            title: title.into(),
            genres: "Drama".into(),
            year: Some(year),
            rating_count: movie_id,
            mean_rating: Some(movie_id as f64),
        };
        // Every figure grows with the id, so an ascending order lists 1 before 2.
        let charts = Charts { movies: vec![row(1, "A (1990)", 1990), row(2, "B (2000)", 2000)], ..Charts::default() };
        for key in [SortKey::Ratings, SortKey::Mean, SortKey::Title, SortKey::Year, SortKey::Id] {
            let search = MovieSearch { sort: key, limit: 10, ..MovieSearch::default() };
            let ids: Vec<i64> = charts.search(&search).1.iter().map(|r| r.movie_id).collect();
            assert_eq!(ids == [1, 2], key.ascends(), "{key:?}: {ids:?}");
        }
    }

    #[test]
    fn headers_link_to_their_order_and_reverse_the_current_one() {
        let shown = |form: &MovieForm| {
            let (sort, reverse) = (SortKey::parse(&form.sort).unwrap_or_default(), form.dir == "reverse");
            headers(form, sort, reverse).into_iter().map(|h| (h.label, h.aria_sort, h.href)).collect::<Vec<_>>()
        };
        let default = shown(&MovieForm::default());
        assert_eq!(
            default,
            [
                ("Title", None, "/ui/movies?sort=title".to_owned()),
                ("Year", None, "/ui/movies?sort=year".to_owned()),
                ("Genres", None, String::new()),
                ("Ratings", Some("descending"), "/ui/movies?dir=reverse".to_owned()),
                ("Mean", None, "/ui/movies?sort=mean".to_owned()),
            ]
        );
        let by_title =
            MovieForm { title: "toy".into(), sort: "title".into(), page: "3".into(), ..MovieForm::default() };
        let sorted = shown(&by_title);
        assert_eq!(sorted[0], ("Title", Some("ascending"), "/ui/movies?title=toy&sort=title&dir=reverse".into()));
        assert_eq!(sorted[1], ("Year", None, "/ui/movies?title=toy&sort=year".into()), "filters kept, page 1");
        let reversed = MovieForm { dir: "reverse".into(), ..by_title };
        assert_eq!(shown(&reversed)[0], ("Title", Some("descending"), "/ui/movies?title=toy&sort=title".into()));
        let year = MovieForm { sort: "year".into(), ..MovieForm::default() };
        assert_eq!(shown(&year)[1].1, Some("descending"), "newest first");
    }

    #[test]
    fn the_query_string_keeps_filled_fields_encoded() {
        let form = MovieForm { title: "toy & co".into(), sort: "title".into(), ..MovieForm::default() };
        assert_eq!(form.query(2), "title=toy%20%26%20co&sort=title&page=2");
    }
}
