"""Typed errors and the retry rules: the real server's 404 and 422, and local stubs for what a
healthy server does not do on demand (503s, garbage, silence)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

import cinedata
from cinedata import _core as core
from conftest import Answer, Demo, Stub, error


def test_a_missing_movie_is_not_found_with_the_servers_detail(api: cinedata.Client) -> None:
    with pytest.raises(cinedata.NotFound) as caught:
        api.movie(999_999_999)
    e = caught.value
    assert e.status == 404 and e.detail == "movie 999999999 not found"
    assert e.url == f"{api.base_url}/movies/999999999" and e.method == "GET"
    assert str(e) == f"GET {api.base_url}/movies/999999999: 404 movie 999999999 not found"
    with pytest.raises(cinedata.NotFound, match="no rating by user 1 for movie 2"):
        api.rating(1, 2)
    with pytest.raises(cinedata.NotFound, match="no link for movie 999999999"):
        api.link(999_999_999)
    assert isinstance(e, cinedata.CineDataError)


def test_a_bad_parameter_is_an_invalid_request_naming_the_url(api: cinedata.Client) -> None:
    with pytest.raises(cinedata.InvalidRequest) as caught:
        api.movies(limit=1001)
    e = caught.value
    assert e.status == 422 and e.detail == "limit must be between 1 and 1000, got 1001"
    assert "/movies?" in e.url and "limit=1001" in e.url
    with pytest.raises(cinedata.InvalidRequest, match="min_rating must be between 0 and 5"):
        api.ratings(min_rating=6)
    with pytest.raises(cinedata.InvalidRequest, match="skip must be >= 0"):
        api.tags(skip=-1)


def test_a_wrong_base_path_is_not_found(demo: Demo) -> None:
    with cinedata.Client(demo.url + "/v2") as wrong:
        with pytest.raises(cinedata.NotFound) as caught:
            wrong.movie(1)
    assert caught.value.url == f"{demo.url}/v2/movies/1"


def test_a_server_that_is_down_is_unavailable_naming_the_url(closed_port_url: str) -> None:
    started = time.monotonic()
    with cinedata.Client(closed_port_url, retries=2, backoff=0.05) as down:
        with pytest.raises(cinedata.Unavailable) as caught:
            down.movies(genre="comedy")
    e = caught.value
    assert e.status is None and e.url == f"{closed_port_url}/movies?genre=comedy&skip=0&limit=100"
    assert "could not connect (after 3 attempts)" in e.detail
    assert closed_port_url in str(e)
    assert time.monotonic() - started < 5


def test_a_timeout_is_unavailable_after_the_retries(stub: Callable[..., Stub]) -> None:
    slow = stub(Answer(body="{}", delay=2.0))
    with cinedata.Client(slow.url, timeout=0.3, retries=1, backoff=0.01) as api:
        started = time.monotonic()
        with pytest.raises(cinedata.Unavailable) as caught:
            api.model()
    assert "timed out waiting for the answer (after 2 attempts)" in caught.value.detail
    assert caught.value.url == f"{slow.url}/model"
    assert len(slow.requests) == 2
    assert time.monotonic() - started < 1.9  # gave up on each attempt, not waited for the answers


def test_a_rating_that_times_out_is_not_sent_again(stub: Callable[..., Stub]) -> None:
    slow = stub(Answer(status=202, body='{"eventId": "x"}', delay=2.0))
    with cinedata.Client(slow.url, timeout=0.3, retries=3, backoff=0.01) as api:
        with pytest.raises(cinedata.Unavailable, match="may or may not have been applied"):
            api.rate(1, 1, 4.0)
    assert slow.requests == [("POST", "/ratings")]


def test_malformed_json_is_a_clear_error(stub: Callable[..., Stub]) -> None:
    garbage = stub(Answer(body="<html>not json{"))
    with cinedata.Client(garbage.url) as api:
        with pytest.raises(cinedata.MalformedResponse) as caught:
            api.health()
    assert "the answer is not JSON" in caught.value.detail and "<html>not json{" in caught.value.detail
    assert caught.value.url == f"{garbage.url}/"

    wrong_shape = stub(Answer(body='[{"movieId": "one", "title": "x"}]'))
    with cinedata.Client(wrong_shape.url) as api:
        with pytest.raises(cinedata.MalformedResponse, match=r"not a valid list of Movie: 0.movieId"):
            api.movies()
        # The DataFrame path validates the rows without building models: the same errors.
        with pytest.raises(cinedata.MalformedResponse, match=r"not a valid list of Movie: 0.movieId"):
            api.iter_movies().to_pandas()
    with cinedata.Client(garbage.url) as api:
        with pytest.raises(cinedata.MalformedResponse, match="the answer is not JSON") as caught:
            api.iter_ratings().to_pandas()
    assert caught.value.url == f"{garbage.url}/ratings?skip=0&limit=1000"


def test_other_server_errors_are_server_errors_and_not_retried(stub: Callable[..., Stub]) -> None:
    failing = stub(error(500, "internal error"))
    with cinedata.Client(failing.url, backoff=0.01) as api:
        with pytest.raises(cinedata.ServerError) as caught:
            api.analytics()
    assert caught.value.status == 500 and caught.value.detail == "internal error"
    assert len(failing.requests) == 1

    plain = stub(Answer(status=413, body="too big", headers={"content-type": "text/plain"}))
    with cinedata.Client(plain.url) as api:
        with pytest.raises(cinedata.ClientError, match="413 too big"):
            api.analytics()


def test_503_is_retried_until_it_succeeds(stub: Callable[..., Stub]) -> None:
    flaky = stub(
        error(503, "warming up"),
        error(503, "warming up"),
        Answer(body='{"status": "ok", "version": "1.2.3", "database": "sqlite"}'),
    )
    with cinedata.Client(flaky.url, retries=3, backoff=0.01) as api:
        assert api.health() == cinedata.Health(status="ok", version="1.2.3", database="sqlite")
    assert len(flaky.requests) == 3


def test_503_after_every_retry_is_unavailable_with_the_detail(stub: Callable[..., Stub]) -> None:
    down = stub(error(503, "too many connections", **{"retry-after": "0"}))
    with cinedata.Client(down.url, retries=2, backoff=0.01) as api:
        with pytest.raises(cinedata.Unavailable) as caught:
            api.movie(1)
    assert caught.value.status == 503
    assert caught.value.detail == "too many connections (after 3 attempts)"
    assert len(down.requests) == 3


def test_4xx_is_never_retried(stub: Callable[..., Stub]) -> None:
    refusing = stub(error(422, "limit must be between 1 and 1000, got 0"), Answer(body="[]"))
    with cinedata.Client(refusing.url, retries=3, backoff=0.01) as api:
        with pytest.raises(cinedata.InvalidRequest, match="limit must be between"):
            api.movies(limit=0)
    assert len(refusing.requests) == 1


def test_a_rating_answered_503_is_not_retried(stub: Callable[..., Stub]) -> None:
    no_broker = stub(error(503, "no Kafka brokers configured"), Answer(status=202, body='{"eventId": "x"}'))
    with cinedata.Client(no_broker.url, retries=3, backoff=0.01) as api:
        with pytest.raises(cinedata.Unavailable, match="no Kafka brokers configured"):
            api.rate(1, 1, 4.0)
    assert no_broker.requests == [("POST", "/ratings")]


def test_the_retry_rules() -> None:
    read, write = core.Call("GET", "/movies"), core.Call("POST", "/ratings", write=True)
    request = httpx.Request("POST", "http://x/ratings")
    refused = httpx.ConnectError("refused", request=request)
    lost = httpx.ReadTimeout("no answer", request=request)
    reset = httpx.RemoteProtocolError("closed", request=request)
    assert core.may_retry(read, refused) and core.may_retry(read, lost) and core.may_retry(read, reset)
    assert core.may_retry(write, refused) and core.may_retry(write, httpx.ConnectTimeout("", request=request))
    assert not core.may_retry(write, lost) and not core.may_retry(write, reset)


def test_bad_settings_are_refused_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="base_url must be an http"):
        cinedata.Client("localhost:8000")
    with pytest.raises(ValueError, match="timeout must be positive"):
        cinedata.Client("http://localhost:8000", timeout=0)
    with pytest.raises(ValueError, match="page_size must be between 1 and 1000"):
        cinedata.Client("http://localhost:8000").iter_ratings(page_size=5000)
    monkeypatch.setenv("CINEDATA_URL", "http://example.test:9/")
    monkeypatch.setenv("CINEDATA_API_KEY", "k")
    with cinedata.Client() as from_env:
        assert from_env.base_url == "http://example.test:9"
        assert from_env._http.headers["x-api-key"] == "k"
