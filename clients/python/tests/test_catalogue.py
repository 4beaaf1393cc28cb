"""The catalogue endpoints against the demo, with ml-latest-small's real values."""

from __future__ import annotations

import pandas as pd
import pytest

import cinedata
from conftest import MOVIES, RATINGS, TAGS, USERS


def test_health_says_ok_with_the_database_kind(api: cinedata.Client) -> None:
    health = api.health()
    assert health.status == "ok"
    assert health.database == "sqlite"
    assert health.version.count(".") == 2


def test_movies_are_listed_by_id_and_filtered_by_title_and_genre(api: cinedata.Client) -> None:
    first = api.movies(limit=3)
    assert [m.movie_id for m in first] == [1, 2, 3]
    assert first[0] == cinedata.Movie(
        movie_id=1, title="Toy Story (1995)", genres="Adventure|Animation|Children|Comedy|Fantasy"
    )
    second = api.movies(skip=1, limit=2)
    assert [m.movie_id for m in second] == [2, 3]

    toy_stories = api.movies(title="toy story")
    assert [m.movie_id for m in toy_stories] == [1, 3114, 78499]
    assert all("toy story" in m.title.lower() for m in toy_stories)

    comedies = api.iter_movies(genre="comedy").collect()
    assert len(comedies) == 3_756
    assert all("Comedy" in m.genres.split("|") for m in comedies)


def test_every_movie_is_walked_page_by_page(api: cinedata.Client) -> None:
    pages = list(api.iter_movies(page_size=1000).pages())
    assert [len(p) for p in pages] == [1000] * 9 + [742]
    ids = [m.movie_id for p in pages for m in p]
    assert len(ids) == MOVIES == len(set(ids))
    assert ids == sorted(ids) and ids[-1] == 193_609


def test_a_movie_comes_with_its_ratings_tags_and_link(api: cinedata.Client) -> None:
    movie = api.movie(1)
    assert movie.title == "Toy Story (1995)"
    original = [r for r in movie.ratings if r.user_id <= USERS]  # tests write as users > 1,000,000
    assert len(original) == 215
    assert sum(r.rating for r in original) / 215 == pytest.approx(3.92093, abs=1e-5)
    assert cinedata.Rating(user_id=1, movie_id=1, rating=4.0, timestamp=964_982_703) in movie.ratings
    assert {t.tag for t in movie.tags} >= {"pixar", "fun"}
    assert movie.link == cinedata.LinkIds(imdb_id="0114709", tmdb_id=862)

    frame = movie.ratings.to_pandas()
    assert list(frame.columns) == ["userId", "movieId", "rating", "timestamp"]
    assert (frame.movieId == 1).all() and len(frame) == len(movie.ratings)


def test_ratings_are_filtered_by_user_movie_and_minimum(api: cinedata.Client) -> None:
    user1 = api.ratings(user_id=1, limit=1000)
    assert len(user1) == 232
    assert sum(r.rating for r in user1) / 232 == pytest.approx(4.36638, abs=1e-5)
    assert [r.movie_id for r in user1] == sorted(r.movie_id for r in user1)

    assert api.rating(1, 1) == cinedata.Rating(user_id=1, movie_id=1, rating=4.0, timestamp=964_982_703)
    high = api.iter_ratings(min_rating=4.5).to_pandas()
    assert len(high[high.userId <= USERS]) == 21_762
    assert high.rating.min() >= 4.5

    by_movie = api.ratings(movie_id=356, limit=1000)
    assert len([r for r in by_movie if r.user_id <= USERS]) == 329  # Forrest Gump, the most rated


def test_walking_every_rating_gives_the_whole_release_as_one_frame(api: cinedata.Client) -> None:
    frame = api.iter_ratings().to_pandas()
    original = frame[frame.userId <= USERS]
    assert len(original) == RATINGS
    assert list(frame.columns) == ["userId", "movieId", "rating", "timestamp"]
    assert str(frame.userId.dtype) == "int64" and str(frame.rating.dtype) == "float64"
    assert not frame.duplicated(["userId", "movieId"]).any()
    assert original.userId.nunique() == USERS
    assert original.movieId.nunique() == 9_724
    assert original.rating.mean() == pytest.approx(3.501557, abs=1e-6)
    assert original.rating.value_counts()[4.0] == 26_818
    assert pd.to_datetime(original.timestamp, unit="s").dt.year.min() == 1996


def test_tags_and_a_tag_with_spaces(api: cinedata.Client) -> None:
    assert len(api.iter_tags().collect()) == TAGS
    user2 = api.tags(user_id=2)
    assert len(user2) == 9
    assert len(api.tags(movie_id=60756)) == 8
    tag = api.tag(2, 60756, "Highly quotable")
    assert tag == cinedata.Tag(user_id=2, movie_id=60756, tag="Highly quotable", timestamp=1_445_714_996)
    frame = user2.to_pandas()
    assert list(frame.columns) == ["userId", "movieId", "tag", "timestamp"] and len(frame) == 9


def test_a_tag_with_a_slash_or_percent_is_encoded_not_split(api: cinedata.Client) -> None:
    with pytest.raises(cinedata.NotFound) as caught:
        api.tag(2, 60756, "50% a/b?c#d")
    assert "50% a/b?c#d" in caught.value.detail, caught.value.detail


def test_links_keep_imdb_zeros_and_missing_tmdb_ids(api: cinedata.Client) -> None:
    assert api.link(1) == cinedata.Link(movie_id=1, imdb_id="0114709", tmdb_id=862)
    assert api.link(791).tmdb_id is None
    links = api.iter_links().to_pandas()
    assert len(links) == MOVIES
    assert str(links.tmdbId.dtype) == "Int64"  # nullable: the missing ids stay missing
    assert links.tmdbId.isna().sum() == 8
    assert links.set_index("movieId").loc[1, "imdbId"] == "0114709"
    assert api.links(limit=5).to_pandas().movieId.tolist() == [1, 2, 3, 4, 5]
