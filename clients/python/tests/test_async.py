"""AsyncClient: the same API awaited, against the demo and a stub."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

import cinedata
from conftest import USERS, WRITER_USERS, Answer, Demo, Stub, error


@pytest.mark.asyncio
async def test_the_async_client_reads_the_catalogue_concurrently(demo: Demo) -> None:
    async with cinedata.AsyncClient(demo.url, api_key=demo.api_key) as api:
        movie, link, recs, model = await asyncio.gather(
            api.movie(1), api.link(1), api.recommendations(1, n=3, explain=True), api.model()
        )
        assert movie.title == "Toy Story (1995)" and link.tmdb_id == 862
        assert recs.strategy == "personal" and len(recs.items) == 3
        assert recs.model_version == model.version

        ratings = [r async for r in api.iter_ratings(user_id=610, page_size=500)]
        assert len(ratings) == 1_302 and {r.user_id for r in ratings} == {610}
        pages = [len(p) async for p in api.iter_ratings(user_id=610, page_size=500).pages()]
        assert pages == [500, 500, 302]
        frame = await api.iter_tags().to_pandas()
        assert len(frame) == 3_683
        genres = {g.genre for g in (await api.analytics()).genres}
        assert len(genres) == 19 and "IMAX" in genres and "(no genres listed)" not in genres
        assert (await api.ratings_per_month()).to_pandas()["count"].sum() >= 100_836


@pytest.mark.asyncio
async def test_async_errors_and_writes(demo: Demo) -> None:
    async with cinedata.AsyncClient(demo.url, api_key=demo.api_key) as api:
        with pytest.raises(cinedata.NotFound, match="movie 999999999 not found"):
            await api.movie(999_999_999)
        with pytest.raises(cinedata.InvalidRequest, match="limit must be between"):
            await api.links(limit=0)
        user = WRITER_USERS[10]
        accepted = await api.rate(user, 4, 2.5)
        assert accepted.event_id
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            try:
                stored = await api.rating(user, 4)
                break
            except cinedata.NotFound:
                assert asyncio.get_running_loop().time() < deadline, "the posted rating was not stored in 30 s"
                await asyncio.sleep(0.1)
        assert stored.rating == 2.5 and stored.user_id > USERS


@pytest.mark.asyncio
async def test_async_retries_503_but_not_4xx_or_writes(stub: Callable[..., Stub]) -> None:
    flaky = stub(error(503, "busy"), Answer(body='{"version": 7}'))
    async with cinedata.AsyncClient(flaky.url, backoff=0.01) as api:
        with pytest.raises(cinedata.MalformedResponse, match="not a valid ModelInfo"):
            await api.model()
    assert len(flaky.requests) == 2

    refusing = stub(error(404, "movie 5 not found"))
    async with cinedata.AsyncClient(refusing.url, backoff=0.01) as api:
        with pytest.raises(cinedata.NotFound):
            await api.movie(5)
        with pytest.raises(cinedata.NotFound):
            await api.rate(1, 5, 4.0)
    assert len(refusing.requests) == 2

    busy = stub(error(503, "busy"))
    async with cinedata.AsyncClient(busy.url, backoff=0.01) as api:
        with pytest.raises(cinedata.Unavailable, match="busy"):
            await api.rate_many([(1, 1, 4.0), (1, 2, 4.0)])
    assert busy.requests == [("POST", "/ratings")]


@pytest.mark.asyncio
async def test_async_server_down(closed_port_url: str) -> None:
    async with cinedata.AsyncClient(closed_port_url, retries=1, backoff=0.01) as api:
        with pytest.raises(cinedata.Unavailable) as caught:
            await api.health()
    assert caught.value.url == f"{closed_port_url}/" and "after 2 attempts" in caught.value.detail
