-- Rating summaries: what the charts and `/analytics` read instead of scanning `ratings`.
-- The writers (`Store::upsert_ratings` and the importer's bulk path) keep them in step in the
-- same transaction as the rating rows: +1 for a new rating, -1/+1 when a re-rating replaces
-- one. A count that falls to 0 keeps its row; readers skip such rows.
-- (Row triggers would do the same, but cost SQLite ~8-25 us per rating each, 3-8x the insert.)

-- Per calendar month (UTC, 'YYYY-MM').
CREATE TABLE rating_months (
    month        TEXT PRIMARY KEY,
    rating_count INTEGER NOT NULL,
    rating_sum   REAL NOT NULL
) WITHOUT ROWID;

-- Per movie and calendar year (UTC): per-movie totals and genre figures add these up.
CREATE TABLE movie_years (
    movie_id     INTEGER NOT NULL,
    year         INTEGER NOT NULL,
    rating_count INTEGER NOT NULL,
    rating_sum   REAL NOT NULL,
    PRIMARY KEY (movie_id, year)
) WITHOUT ROWID;

-- Per movie and rating value: the movie's histogram; summed, the catalogue's distribution.
CREATE TABLE movie_rating_counts (
    movie_id     INTEGER NOT NULL,
    rating       REAL NOT NULL,
    rating_count INTEGER NOT NULL,
    PRIMARY KEY (movie_id, rating)
) WITHOUT ROWID;

-- Per user: the number of users who rated is the rows with a count.
CREATE TABLE user_rating_counts (
    user_id      INTEGER PRIMARY KEY,
    rating_count INTEGER NOT NULL
);

-- Per hour (Unix seconds / 3600): the stream's "now" and its last day without a scan or an
-- index on time. `latest` is the newest timestamp counted in the hour; a re-rating only moves
-- a rating forward in time, so the newest `latest` of the hours with a count is the newest
-- rating. (A removed rating's own time is never above its hour's `latest`, so taking the
-- greatest of every change's time is right for removals too.)
CREATE TABLE rating_hours (
    hour         INTEGER PRIMARY KEY,
    rating_count INTEGER NOT NULL,
    latest       INTEGER NOT NULL
);

-- A store that already holds ratings starts with its summaries filled in.
INSERT INTO rating_months
SELECT strftime('%Y-%m', timestamp, 'unixepoch'), COUNT(*), SUM(rating) FROM ratings GROUP BY 1;
INSERT INTO movie_years
SELECT movie_id, CAST(strftime('%Y', timestamp, 'unixepoch') AS INTEGER), COUNT(*), SUM(rating)
FROM ratings GROUP BY 1, 2;
INSERT INTO movie_rating_counts SELECT movie_id, rating, COUNT(*) FROM ratings GROUP BY 1, 2;
INSERT INTO user_rating_counts SELECT user_id, COUNT(*) FROM ratings GROUP BY 1;
INSERT INTO rating_hours SELECT timestamp / 3600, COUNT(*), MAX(timestamp) FROM ratings GROUP BY 1;
