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
    api.movie("1")  # type: ignore[arg-type]
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
    async for rating in api.iter_ratings():
        assert_type(rating, Rating)
    await api.movie("1")  # type: ignore[arg-type]
    api.movie(1)  # type: ignore[unused-coroutine]
