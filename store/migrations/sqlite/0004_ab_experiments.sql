-- A/B experiments on live traffic (schemas::ab): the current configuration and status of each,
-- every change to it (the log is also how replicas notice a change: its newest id), and the
-- lists serving showed (impressions), written by the consumer group from the impressions topic.
-- Configurations are JSON text; times are Unix seconds.
CREATE TABLE ab_experiments (
    name       TEXT PRIMARY KEY,
    status     TEXT NOT NULL CHECK (status IN ('draft', 'running', 'stopped')),
    config     TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE ab_experiment_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    name   TEXT NOT NULL,
    at     INTEGER NOT NULL,
    action TEXT NOT NULL,
    config TEXT NOT NULL
);
CREATE INDEX ab_experiment_log_by_name ON ab_experiment_log (name, id);

-- One row per shown list, keyed by its event id so a redelivered event is kept once.
-- movie_ids: the shown movies, best first, comma-separated.
CREATE TABLE impressions (
    event_id      TEXT PRIMARY KEY,
    user_id       INTEGER NOT NULL,
    experiment    TEXT,
    variant       TEXT,
    model_version INTEGER NOT NULL,
    strategy      TEXT NOT NULL,
    movie_ids     TEXT NOT NULL,
    stream_time   INTEGER NOT NULL,
    shown_at      INTEGER NOT NULL
);
CREATE INDEX impressions_by_experiment ON impressions (experiment, user_id);
