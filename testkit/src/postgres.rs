//! A fresh PostgreSQL database per test.
//!
//! The server comes from `CINEDATA_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). When it is unreachable the tests that need it
//! panic, saying so: they fail rather than skip.

use sqlx::{Connection, PgConnection};

pub use crate::unique_name;

/// The server used when `CINEDATA_TEST_POSTGRES_URL` is not set.
pub const DEFAULT_SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The test server's URL: `CINEDATA_TEST_POSTGRES_URL`, else [`DEFAULT_SERVER_URL`]. Test
/// databases are created beside the database it names.
pub fn server_url() -> String {
    std::env::var("CINEDATA_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_SERVER_URL.to_owned())
}

/// Replaces the database name (the path) of a PostgreSQL URL, keeping any query string.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{server}/{database}?{q}"),
        None => format!("{server}/{database}"),
    }
}

/// Connects to `url`.
///
/// # Panics
/// When PostgreSQL cannot be reached, with the URL, the error and how to start it.
pub async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is unreachable at {url} ({e}). These tests run against PostgreSQL: start it \
             (scripts/test.sh does) or point CINEDATA_TEST_POSTGRES_URL at a server."
        )
    })
}

/// Runs one SQL statement (no parameters) on `conn`.
pub async fn execute(conn: &mut PgConnection, sql: String) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(conn).await.map(|_| ())
}

/// Drops database `name` through `admin_url` (a URL of another database on the same server),
/// ending the connections still open on it. Best effort, and blocking: it runs on its own
/// thread and runtime, so it can be called from `Drop`, inside a runtime or not.
pub fn drop_database(admin_url: &str, name: &str) {
    let (admin_url, name) = (admin_url.to_owned(), name.to_owned());
    let dropper = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async move {
            if let Ok(mut conn) = PgConnection::connect(&admin_url).await {
                let _ = execute(&mut conn, format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                let _ = conn.close().await;
            }
        });
    });
    let _ = dropper.join();
}

/// An empty database of its own on the test server, dropped (`WITH (FORCE)`) on drop.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates `{prefix}_{unique}` on [`server_url`], connected to the database that URL names.
    ///
    /// # Panics
    /// When PostgreSQL is unreachable or the database cannot be created.
    pub async fn create(prefix: &str) -> Self {
        Self::create_via(&server_url(), prefix).await
    }

    /// Creates `{prefix}_{unique}` while connected to `admin_url`, which also drops it later.
    ///
    /// # Panics
    /// When PostgreSQL is unreachable or the database cannot be created.
    pub async fn create_via(admin_url: &str, prefix: &str) -> Self {
        Self::create_as(admin_url, prefix, None).await
    }

    /// Creates `{prefix}_{unique}` on [`server_url`] as a copy of database `template`
    /// (`CREATE DATABASE ... TEMPLATE`): a per-test database with data in it, without loading
    /// the data each time. PostgreSQL refuses the copy while another session is connected to
    /// `template`; callers that build the template serialise building and copying.
    ///
    /// # Panics
    /// When PostgreSQL is unreachable or the database cannot be created.
    pub async fn from_template(template: &str, prefix: &str) -> Self {
        Self::create_as(&server_url(), prefix, Some(template)).await
    }

    async fn create_as(admin_url: &str, prefix: &str, template: Option<&str>) -> Self {
        let mut conn = connect(admin_url).await;
        let name = unique_name(prefix);
        let (sql, from) = match template {
            Some(t) => (format!("CREATE DATABASE {name} TEMPLATE {t}"), format!(" from {t}")),
            None => (format!("CREATE DATABASE {name}"), String::new()),
        };
        execute(&mut conn, sql).await.unwrap_or_else(|e| panic!("creating database {name}{from}: {e}"));
        let _ = conn.close().await;
        let url = with_database(admin_url, &name);
        Self { admin_url: admin_url.to_owned(), name, url }
    }

    /// The new database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The new database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL it was created (and will be dropped) through.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        drop_database(&self.admin_url, &self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_database_name() {
        assert_eq!(with_database("postgres://u@h:5432/test", "x"), "postgres://u@h:5432/x");
        assert_eq!(with_database("postgres://u@h/test?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }

    async fn exists(name: &str) -> bool {
        let mut conn = connect(&server_url()).await;
        let found = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await
            .expect("looking up a database");
        let _ = conn.close().await;
        found
    }

    #[tokio::test]
    async fn a_test_database_is_created_empty_and_dropped_even_with_connections_open() {
        let db = TestDatabase::create("testkit_db").await;
        let name = db.name().to_owned();
        assert!(name.starts_with("testkit_db_"), "{name}");
        assert_eq!(db.url(), with_database(&server_url(), &name));
        assert!(exists(&name).await, "{name} was not created");
        let mut open = PgConnection::connect(db.url()).await.expect("the new database accepts connections");
        let tables: i64 =
            sqlx::query_scalar("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
                .fetch_one(&mut open)
                .await
                .expect("counting tables");
        assert_eq!(tables, 0);
        drop(db);
        assert!(!exists(&name).await, "{name} is still there after the drop");
        assert!(open.ping().await.is_err(), "the open connection survived the drop");
    }

    #[tokio::test]
    async fn a_database_from_a_template_holds_the_templates_tables_and_is_dropped() {
        let template = TestDatabase::create("testkit_tpl").await;
        let mut conn = PgConnection::connect(template.url()).await.expect("the template accepts connections");
        execute(&mut conn, "CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2)".to_owned()).await.expect("filling");
        conn.close().await.expect("closing");

        let db = TestDatabase::from_template(template.name(), "testkit_copy").await;
        let name = db.name().to_owned();
        assert!(name.starts_with("testkit_copy_"), "{name}");
        let mut open = PgConnection::connect(db.url()).await.expect("the copy accepts connections");
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM t").fetch_one(&mut open).await.expect("counting");
        assert_eq!(rows, 2);
        open.close().await.expect("closing");
        drop(db);
        assert!(!exists(&name).await, "{name} is still there after the drop");
        assert!(exists(template.name()).await, "the template is kept");
    }
}
