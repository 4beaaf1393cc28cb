"""What a type checker sees of both clients; checked by test_typing.py with ``mypy --strict``
(not run). Each endpoint kind once per client, and calls that must be refused: their
``type: ignore`` would be an unused ignore (an error under --strict) if they were accepted."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from typing_extensions import assert_type

from cinedata import (
    AsyncClient,
    AsyncPages,
    Client,
    ExperimentConfig,
    ExperimentList,
    ExperimentReport,
    ExperimentSummary,
    Movie,
    MovieDetail,
    Pages,
    Rating,
    RatingAccepted,
    Rows,
    UserRecommendations,
)


def sync_client(api: Client) -> None:
    assert_type(api.movie(1), MovieDetail)
    assert_type(api.movies(title="toy", limit=5), Rows[Movie])
    assert_type(api.iter_movies(), Pages[Movie])
    assert_type(api.iter_ratings(user_id=1).collect(), Rows[Rating])
    assert_type(api.recommendations(1, n=5, exclude=[2], explain=True), UserRecommendations)
    assert_type(api.rate_many([(1, 2, 4.5)]), list[RatingAccepted])
    assert_type(Client.movie(api, 1), MovieDetail)
    assert_type(api.ab_experiments(), ExperimentList)
    assert_type(api.ab_experiment("exp"), ExperimentReport)
    assert_type(api.ab_experiment("exp").outcomes[0].hit_rate, float | None)
    config = ExperimentConfig(variants=[], holdout=0.1, window_days=3)
    assert_type(api.put_ab_experiment("exp", config), ExperimentSummary)
    assert_type(api.put_ab_experiment("exp", {"variants": []}), ExperimentSummary)
    assert_type(api.start_ab_experiment("exp"), ExperimentSummary)
    api.movie("1")  # type: ignore[arg-type]
    api.ab_experiment(1)  # type: ignore[arg-type]
    api.put_ab_experiment("exp", [])  # type: ignore[arg-type]
    api.movies("toy")  # type: ignore[misc]
    api.iter_ratings(page_size="all")  # type: ignore[arg-type]


async def async_client(api: AsyncClient) -> None:
    coroutine = assert_type(api.movie(1), Coroutine[Any, Any, MovieDetail])
    assert_type(await coroutine, MovieDetail)
    assert_type(await api.movies(title="toy", limit=5), Rows[Movie])
    assert_type(api.iter_ratings(), AsyncPages[Rating])
    assert_type(await api.iter_ratings(user_id=1).collect(), Rows[Rating])
    assert_type(await api.rate_many([(1, 2, 4.5)]), list[RatingAccepted])
    assert_type(await AsyncClient.movie(api, 1), MovieDetail)
    assert_type(await api.ab_experiment("exp"), ExperimentReport)
    assert_type(await api.stop_ab_experiment("exp"), ExperimentSummary)
    async for rating in api.iter_ratings():
        assert_type(rating, Rating)
    await api.movie("1")  # type: ignore[arg-type]
    api.movie(1)  # type: ignore[unused-coroutine]
