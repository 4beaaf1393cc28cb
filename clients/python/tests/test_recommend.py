"""Recommendations, similar movies, profiles, predictions, the model and its experiment
records, against the demo's live model."""

from __future__ import annotations

import pytest

import cinedata
from conftest import Demo


def test_recommendations_are_personal_explained_and_never_rated(api: cinedata.Client) -> None:
    recs = api.recommendations(1, explain=True)
    assert recs.user_id == 1 and recs.strategy == "personal"
    assert len(recs.items) == 10
    rated = {r.movie_id for r in api.ratings(user_id=1, limit=1000)}
    assert not rated & {m.movie_id for m in recs.items}
    scores = [m.score for m in recs.items]
    assert scores == sorted(scores, reverse=True)
    for item in recs.items:
        assert item.because, f"{item.title} has no reason"
        assert all(b.movie_id in rated and b.rating >= 4.0 for b in item.because)

    frame = recs.to_pandas()
    assert list(frame.columns) == ["movieId", "title", "genres", "score", "because"]
    assert len(frame) == 10 and isinstance(frame.because.iloc[0], list)
    assert recs.model_version == api.model().version


def test_recommendation_options_n_genre_exclude(api: cinedata.Client) -> None:
    first = api.recommendations(1, n=5)
    assert len(first.items) == 5 and first.items[0].because is None
    top = first.items[0].movie_id
    without = api.recommendations(1, n=5, exclude=[top])
    assert top not in {m.movie_id for m in without.items}
    horror = api.recommendations(1, n=20, genre="horror")
    assert len(horror.items) == 20
    assert all("Horror" in m.genres.split("|") for m in horror.items)


def test_recommendation_options_are_validated(api: cinedata.Client) -> None:
    with pytest.raises(cinedata.InvalidRequest) as caught:
        api.recommendations(1, n=101)
    assert caught.value.status == 422
    assert caught.value.detail == "n must be between 1 and 100, got 101"
    with pytest.raises(cinedata.InvalidRequest, match="no movie has the genre"):
        api.recommendations(1, genre="no such genre")
    with pytest.raises(TypeError, match="exclude must be an int"):
        api.recommendations(1, exclude=["1"])  # type: ignore[list-item]


def test_a_user_without_ratings_gets_trending_movies(api: cinedata.Client) -> None:
    recs = api.recommendations(999_999, n=3)
    assert recs.strategy == "trending" and len(recs.items) == 3


def test_similar_movies(api: cinedata.Client) -> None:
    similar = api.similar(1, n=5)
    assert similar.movie_id == 1 and similar.strategy == "collaborative"
    assert len(similar.items) == 5 and 1 not in {m.movie_id for m in similar.items}
    assert len(similar.to_pandas()) == 5
    with pytest.raises(cinedata.NotFound, match="movie 999999999 not found"):
        api.similar(999_999_999)


def test_a_users_profile(api: cinedata.Client) -> None:
    profile = api.profile(1)
    assert profile.rating_count == 232
    assert profile.mean_rating == pytest.approx(4.36638, abs=1e-4)
    assert 1 <= len(profile.favourite_genres) <= 5
    assert len(profile.top_rated) == 10 and all(m.rating == 5.0 for m in profile.top_rated)
    assert list(profile.favourite_genres.to_pandas().columns) == ["genre", "count", "meanRating"]
    with pytest.raises(cinedata.NotFound, match="user 999998 has no ratings"):
        api.profile(999_998)


def test_predictions_in_the_order_asked(api: cinedata.Client) -> None:
    predictions = api.predictions(1, [3114, 1, 2])
    assert [p.movie_id for p in predictions.items] == [3114, 1, 2]
    assert predictions.items[1].rated == 4.0 and predictions.items[2].rated is None
    assert all(0.5 <= p.predicted_rating <= 5.0 for p in predictions.items)
    frame = predictions.to_pandas()
    assert list(frame.columns) == ["movieId", "title", "predictedRating", "rated"]
    assert api.predictions(1, 1).items[0].title == "Toy Story (1995)"
    with pytest.raises(cinedata.NotFound, match="movie 999999999 not found"):
        api.predictions(1, [1, 999_999_999])
    with pytest.raises(cinedata.InvalidRequest, match="movieId is required"):
        api.predictions(1, [])


def test_the_model_after_the_replay(api: cinedata.Client) -> None:
    model = api.model()
    assert model.version >= 1 and model.trained_at is not None
    assert model.training_ratings >= 100_836 and model.events_applied >= 100_836
    assert model.holdout is not None and 0.5 < model.holdout.rmse < 1.2
    assert model.holdout.ndcg_at_10 is not None and model.holdout.ndcg_at_10 > 0
    assert model.last_retrain is not None and model.last_retrain.accepted


def test_the_experiment_records_include_the_replay_retrain(api: cinedata.Client) -> None:
    records = api.experiments(kind="retrain")
    assert records, "the replay retrain is recorded"
    latest = records[0]
    assert latest.kind == "retrain" and latest.data.ratings >= 100_836
    assert isinstance(latest.metrics, dict) and "rmse" in latest.metrics
    frame = records.to_pandas()
    assert {"kind", "model", "metrics.rmse", "data.ratings", "fit_seconds"} <= set(frame.columns)
    assert frame["metrics.rmse"].iloc[0] == pytest.approx(latest.metrics["rmse"])
    assert api.experiments(kind="evaluate") == []
    with pytest.raises(cinedata.InvalidRequest, match="kind"):
        api.experiments(kind="nonsense")  # type: ignore[arg-type]


def test_retrain_needs_the_key(demo: Demo) -> None:
    if demo.api_key is None:
        pytest.skip("the service under test has no API key")
    with cinedata.Client(demo.url, api_key="wrong") as stranger:
        with pytest.raises(cinedata.Unauthorized) as caught:
            stranger.retrain()
    assert caught.value.status == 401 and "/model/retrain" in caught.value.url
