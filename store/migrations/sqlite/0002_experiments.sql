-- Experiment records: one model's result under one protocol on one data snapshot, written by
-- `evaluate` (kind 'evaluate') and by each production retrain (kind 'retrain').
-- JSON columns hold JSON text; times are Unix seconds.
CREATE TABLE experiments (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL CHECK (kind IN ('evaluate', 'retrain')),
    protocol         TEXT NOT NULL,
    model            TEXT NOT NULL,
    params           TEXT NOT NULL,
    -- The data snapshot: where the ratings came from, their fingerprint and counts.
    data_path        TEXT NOT NULL,
    data_fingerprint TEXT NOT NULL,
    data_ratings     INTEGER NOT NULL,
    data_users       INTEGER NOT NULL,
    data_movies      INTEGER NOT NULL,
    metrics          TEXT NOT NULL,
    folds            TEXT NOT NULL,
    fit_seconds      REAL NOT NULL,
    predict_seconds  REAL NOT NULL,
    git_revision     TEXT NOT NULL,
    host             TEXT NOT NULL,
    started_at       INTEGER NOT NULL,
    created_at       INTEGER NOT NULL
);
CREATE INDEX experiments_by_time ON experiments (created_at, id);
CREATE INDEX experiments_by_protocol_model ON experiments (protocol, model, created_at);
CREATE INDEX experiments_by_fingerprint ON experiments (data_fingerprint);
