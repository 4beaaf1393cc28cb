-- Outcomes read the impressions of one experiment; lists served outside an experiment (most of
-- them, at the request rate) need no entry in that index, so it covers experiment lists only.
-- `experiment = $1` implies `experiment IS NOT NULL`, so those queries still use it.
DROP INDEX impressions_by_experiment;
CREATE INDEX impressions_by_experiment ON impressions (experiment, user_id) WHERE experiment IS NOT NULL;
