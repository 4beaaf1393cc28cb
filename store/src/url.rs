//! Database URLs that never show their password.
//!
//! A PostgreSQL URL may carry a password (`postgres://user:secret@host/db`, or
//! `?password=secret`). Settings structs are `Debug`, and connection errors name the URL, so
//! the URL is kept as a [`DatabaseUrl`]: `Debug` and `Display` print it with the password
//! replaced by `***`, and only [`DatabaseUrl::expose`] gives the real text, to connect with.

use std::fmt;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};

/// A database URL (`sqlite://FILE` or `postgres://...`) whose password is never printed.
#[derive(Clone)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    /// Wraps `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self(SecretString::from(url.into()))
    }

    /// The URL itself, password included: for connecting only, never for printing.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact(self.expose())
    }
}

/// `url` with the password of its user-info part and any `password=` parameter replaced by
/// `***`.
fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let authority_start = scheme_end + 3;
        let authority_end = out[authority_start..].find(['/', '?', '#']).map_or(out.len(), |i| authority_start + i);
        if let Some(at) = out[authority_start..authority_end].rfind('@') {
            let user_info = &out[authority_start..authority_start + at];
            if let Some(colon) = user_info.find(':') {
                out.replace_range(authority_start + colon + 1..authority_start + at, "***");
            }
        }
    }
    if let Some(query_start) = out.find('?') {
        let (head, query) = out.split_at(query_start + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redacted())
    }
}

impl PartialEq for DatabaseUrl {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        Self::new(url)
    }
}

impl From<&str> for DatabaseUrl {
    fn from(url: &str) -> Self {
        Self::new(url)
    }
}

impl FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_never_printed() {
        let cases = [
            ("postgres://cine:hunter2@db:5432/cinedata", "postgres://cine:***@db:5432/cinedata"),
            ("postgresql://cine:p%40ss@db/x?sslmode=require", "postgresql://cine:***@db/x?sslmode=require"),
            (
                "postgres://db/x?user=cine&password=hunter2&sslmode=disable",
                "postgres://db/x?user=cine&password=***&sslmode=disable",
            ),
            ("postgres://cine@db/x", "postgres://cine@db/x"),
            ("sqlite://cinedata.db", "sqlite://cinedata.db"),
            ("sqlite:data/a@b.db", "sqlite:data/a@b.db"),
        ];
        for (url, shown) in cases {
            let wrapped = DatabaseUrl::new(url);
            assert_eq!(wrapped.to_string(), shown);
            assert_eq!(format!("{wrapped:?}"), format!("DatabaseUrl({shown:?})"));
            assert_eq!(wrapped.expose(), url, "connecting uses the real URL");
        }
    }

    #[test]
    fn a_password_containing_at_signs_is_hidden_whole() {
        let url = DatabaseUrl::new("postgres://u:a@b@host/db");
        assert_eq!(url.to_string(), "postgres://u:***@host/db");
    }
}
