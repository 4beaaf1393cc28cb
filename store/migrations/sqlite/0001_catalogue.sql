-- The MovieLens catalogue. Ids are MovieLens ids; timestamps are Unix seconds.
CREATE TABLE movies (
    movie_id INTEGER PRIMARY KEY,
    title    TEXT NOT NULL,
    -- Lowercased by the application (full Unicode; SQLite's lower() folds ASCII only), for
    -- case-insensitive title search.
    title_key TEXT NOT NULL,
    -- movies.csv's `|`-separated genres, kept for listing without a join.
    genres   TEXT NOT NULL
);

-- Genres normalised for fast, case-insensitive genre filters.
CREATE TABLE movie_genres (
    movie_id INTEGER NOT NULL REFERENCES movies (movie_id) ON DELETE CASCADE,
    genre    TEXT NOT NULL,
    PRIMARY KEY (movie_id, genre)
) WITHOUT ROWID;
CREATE INDEX movie_genres_by_genre ON movie_genres (lower(genre), movie_id);

-- One rating per (user, movie): a re-rating replaces the older one.
CREATE TABLE ratings (
    user_id   INTEGER NOT NULL,
    movie_id  INTEGER NOT NULL REFERENCES movies (movie_id),
    rating    REAL NOT NULL,
    timestamp INTEGER NOT NULL,
    PRIMARY KEY (user_id, movie_id)
) WITHOUT ROWID;
CREATE INDEX ratings_by_movie ON ratings (movie_id);

CREATE TABLE tags (
    user_id   INTEGER NOT NULL,
    movie_id  INTEGER NOT NULL REFERENCES movies (movie_id),
    tag       TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    PRIMARY KEY (user_id, movie_id, tag)
) WITHOUT ROWID;
CREATE INDEX tags_by_movie ON tags (movie_id);

CREATE TABLE links (
    movie_id INTEGER PRIMARY KEY REFERENCES movies (movie_id),
    -- A string: IMDb ids keep their leading zeros.
    imdb_id  TEXT NOT NULL,
    tmdb_id  INTEGER
);
