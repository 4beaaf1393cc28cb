-- Rating summaries: what the charts and `/analytics` read instead of scanning `ratings`.
-- Statement-level triggers keep them in step with `ratings` in the same transaction, from the
-- statement's transition tables (one grouped upsert per table and statement, also for COPY):
-- +1 for a new rating, -1/+1 when a re-rating replaces one. A count that falls to 0 keeps its
-- row; readers skip such rows.

-- Per calendar month (UTC, 'YYYY-MM').
CREATE TABLE rating_months (
    month        TEXT PRIMARY KEY,
    rating_count BIGINT NOT NULL,
    rating_sum   DOUBLE PRECISION NOT NULL
);

-- Per movie and calendar year (UTC): per-movie totals and genre figures add these up.
CREATE TABLE movie_years (
    movie_id     BIGINT NOT NULL,
    year         BIGINT NOT NULL,
    rating_count BIGINT NOT NULL,
    rating_sum   DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (movie_id, year)
);

-- Per movie and rating value: the movie's histogram; summed, the catalogue's distribution.
CREATE TABLE movie_rating_counts (
    movie_id     BIGINT NOT NULL,
    rating       DOUBLE PRECISION NOT NULL,
    rating_count BIGINT NOT NULL,
    PRIMARY KEY (movie_id, rating)
);

-- Per user: the number of users who rated is the rows with a count.
CREATE TABLE user_rating_counts (
    user_id      BIGINT PRIMARY KEY,
    rating_count BIGINT NOT NULL
);

-- Per hour (Unix seconds / 3600): the stream's "now" and its last day without a scan or an
-- index on time. `latest` is the newest timestamp counted in the hour; a re-rating only moves
-- a rating forward in time, so the newest `latest` of the hours with a count is the newest
-- rating. (A removed rating's own time is never above its hour's `latest`, so taking the
-- greatest of every change's time is right for removals too.)
CREATE TABLE rating_hours (
    hour         BIGINT PRIMARY KEY,
    rating_count BIGINT NOT NULL,
    latest       BIGINT NOT NULL
);

-- One signed change of the summaries: a rating counted (+1) or uncounted (-1).
CREATE TYPE rating_change AS (user_id BIGINT, movie_id BIGINT, rating DOUBLE PRECISION, ts BIGINT, n BIGINT);

CREATE FUNCTION summarise_ratings(changes rating_change[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO rating_months AS s (month, rating_count, rating_sum)
    SELECT to_char(to_timestamp(c.ts) AT TIME ZONE 'UTC', 'YYYY-MM'), SUM(c.n), SUM(c.n * c.rating)
    FROM unnest(changes) c GROUP BY 1
    ON CONFLICT (month) DO UPDATE SET rating_count = s.rating_count + excluded.rating_count,
        rating_sum = s.rating_sum + excluded.rating_sum;
    INSERT INTO movie_years AS s (movie_id, year, rating_count, rating_sum)
    SELECT c.movie_id, CAST(EXTRACT(YEAR FROM to_timestamp(c.ts) AT TIME ZONE 'UTC') AS BIGINT),
        SUM(c.n), SUM(c.n * c.rating)
    FROM unnest(changes) c GROUP BY 1, 2
    ON CONFLICT (movie_id, year) DO UPDATE SET rating_count = s.rating_count + excluded.rating_count,
        rating_sum = s.rating_sum + excluded.rating_sum;
    INSERT INTO movie_rating_counts AS s (movie_id, rating, rating_count)
    SELECT c.movie_id, c.rating, SUM(c.n) FROM unnest(changes) c GROUP BY 1, 2
    ON CONFLICT (movie_id, rating) DO UPDATE SET rating_count = s.rating_count + excluded.rating_count;
    INSERT INTO user_rating_counts AS s (user_id, rating_count)
    SELECT c.user_id, SUM(c.n) FROM unnest(changes) c GROUP BY 1
    ON CONFLICT (user_id) DO UPDATE SET rating_count = s.rating_count + excluded.rating_count;
    INSERT INTO rating_hours AS s (hour, rating_count, latest)
    SELECT c.ts / 3600, SUM(c.n), MAX(c.ts)
    FROM unnest(changes) c GROUP BY 1
    ON CONFLICT (hour) DO UPDATE SET rating_count = s.rating_count + excluded.rating_count,
        latest = GREATEST(s.latest, excluded.latest);
$$;

-- Transition tables can't be shared between events, so one small function per event.
CREATE FUNCTION ratings_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM summarise_ratings(ARRAY(
        SELECT ROW(user_id, movie_id, rating, timestamp, 1)::rating_change FROM new_rows));
    RETURN NULL;
END $$;

CREATE FUNCTION ratings_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM summarise_ratings(ARRAY(
        SELECT ROW(user_id, movie_id, rating, timestamp, 1)::rating_change FROM new_rows
        UNION ALL
        SELECT ROW(user_id, movie_id, rating, timestamp, -1)::rating_change FROM old_rows));
    RETURN NULL;
END $$;

CREATE FUNCTION ratings_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM summarise_ratings(ARRAY(
        SELECT ROW(user_id, movie_id, rating, timestamp, -1)::rating_change FROM old_rows));
    RETURN NULL;
END $$;

CREATE TRIGGER ratings_summarise_insert AFTER INSERT ON ratings
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ratings_inserted();
CREATE TRIGGER ratings_summarise_update AFTER UPDATE ON ratings
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ratings_updated();
CREATE TRIGGER ratings_summarise_delete AFTER DELETE ON ratings
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ratings_deleted();

-- A store that already holds ratings starts with its summaries filled in.
INSERT INTO rating_months
SELECT to_char(to_timestamp(timestamp) AT TIME ZONE 'UTC', 'YYYY-MM'), COUNT(*), SUM(rating) FROM ratings GROUP BY 1;
INSERT INTO movie_years
SELECT movie_id, CAST(EXTRACT(YEAR FROM to_timestamp(timestamp) AT TIME ZONE 'UTC') AS BIGINT), COUNT(*), SUM(rating)
FROM ratings GROUP BY 1, 2;
INSERT INTO movie_rating_counts SELECT movie_id, rating, COUNT(*) FROM ratings GROUP BY 1, 2;
INSERT INTO user_rating_counts SELECT user_id, COUNT(*) FROM ratings GROUP BY 1;
INSERT INTO rating_hours SELECT timestamp / 3600, COUNT(*), MAX(timestamp) FROM ratings GROUP BY 1;
