"""`rate` and `rate_many` against the demo: a posted rating reaches the store and changes the
live recommendations."""

from __future__ import annotations

import pytest

import cinedata
from conftest import WRITER_USERS, Demo, poll


def test_a_rating_is_stored_with_its_timestamp(api: cinedata.Client) -> None:
    user = WRITER_USERS[0]
    accepted = api.rate(user, 2, 4.5, timestamp=1_700_000_000)
    assert accepted.event_id
    stored = poll(f"GET /ratings/{user}/2", lambda: api.rating(user, 2))
    assert stored == cinedata.Rating(user_id=user, movie_id=2, rating=4.5, timestamp=1_700_000_000)


def test_a_first_liked_movie_turns_trending_into_personal(api: cinedata.Client) -> None:
    user = WRITER_USERS[1]
    assert api.recommendations(user).strategy == "trending"
    api.rate(user, 1, 5.0)
    recs = poll(
        "personal recommendations after the first rating",
        lambda: (r := api.recommendations(user, explain=True)).strategy == "personal" and r,
    )
    assert 1 not in {m.movie_id for m in recs.items}
    assert any(b.movie_id == 1 for m in recs.items for b in (m.because or []))
    assert poll("the profile", lambda: api.profile(user)).rating_count == 1


def test_rate_many_posts_each_and_accepts_dicts_tuples_and_models(api: cinedata.Client) -> None:
    user = WRITER_USERS[2]
    accepted = api.rate_many(
        [
            (user, 1, 3.0),
            {"userId": user, "movieId": 2, "rating": 3.5},
            cinedata.NewRating(user_id=user, movie_id=3, rating=4.0, timestamp=1_600_000_000),
        ]
    )
    assert len(accepted) == 3 and len({a.event_id for a in accepted}) == 3
    stored = poll("three ratings", lambda: len(rows := api.ratings(user_id=user)) == 3 and rows)
    assert [(r.movie_id, r.rating) for r in stored] == [(1, 3.0), (2, 3.5), (3, 4.0)]
    assert stored[2].timestamp == 1_600_000_000


def test_rate_many_stops_at_the_first_refusal_and_says_what_went_through(api: cinedata.Client) -> None:
    user = WRITER_USERS[3]
    with pytest.raises(cinedata.InvalidRequest) as caught:
        api.rate_many([(user, 1, 4.0), (user, 2, 7.0), (user, 3, 4.0)])
    assert caught.value.status == 422 and "rating" in caught.value.detail
    assert len(caught.value.accepted) == 1  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="tuple"):
        api.rate_many([(user, 1)])


def test_bad_ratings_get_the_servers_reason(api: cinedata.Client) -> None:
    with pytest.raises(cinedata.InvalidRequest) as caught:
        api.rate(WRITER_USERS[4], 999_999_999, 4.0)
    assert "999999999" in caught.value.detail and caught.value.url.endswith("/ratings")
    with pytest.raises(cinedata.InvalidRequest, match="timestamp"):
        api.rate(WRITER_USERS[4], 1, 4.0, timestamp=4_000_000_000)
    with pytest.raises(cinedata.InvalidRequest):
        api.rate(WRITER_USERS[4], 1, 4.2)


def test_writes_without_the_key_are_unauthorized(demo: Demo) -> None:
    if demo.api_key is None:
        pytest.skip("the service under test has no API key")
    with cinedata.Client(demo.url, api_key="") as anonymous:
        with pytest.raises(cinedata.Unauthorized) as caught:
            anonymous.rate(WRITER_USERS[5], 1, 4.0)
        assert caught.value.status == 401 and caught.value.detail == "missing or wrong API key"
        with pytest.raises(cinedata.NotFound):
            anonymous.rating(WRITER_USERS[5], 1)
