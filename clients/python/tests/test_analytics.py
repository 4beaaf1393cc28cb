"""Analytics and the chart series against the demo."""

from __future__ import annotations

import pytest

import cinedata
from conftest import MOVIES, RATINGS, TAGS


def test_analytics_counts_the_release(api: cinedata.Client) -> None:
    figures = api.analytics()
    assert figures.movie_count == MOVIES
    assert figures.link_count == MOVIES
    assert figures.tag_count == TAGS
    assert figures.rating_count >= RATINGS  # plus what the write tests posted
    distribution = figures.rating_distribution.to_pandas()
    assert list(distribution.columns) == ["rating", "count"]
    assert distribution.rating.tolist() == [0.5 * i for i in range(1, 11)]
    assert distribution["count"].sum() == figures.rating_count
    years = figures.ratings_per_year.to_pandas()
    assert years.year.min() == 1996 and years.year.max() == 2018
    assert figures.most_rated[0].title == "Forrest Gump (1994)"
    assert figures.min_ratings == 50
    assert "Drama" in {g.genre for g in figures.genres}


def test_the_chart_series_match_the_release(api: cinedata.Client) -> None:
    months = api.ratings_per_month().to_pandas()
    assert list(months.columns) == ["month", "count", "meanRating"]
    assert months.month.iloc[0] == "1996-03"
    assert months["count"].sum() >= RATINGS

    histogram = api.rating_histogram()
    assert [b.rating for b in histogram] == [0.5 * i for i in range(1, 11)]
    assert histogram[0].count >= 1_370

    genres = api.genre_charts()
    by_year = genres.by_year.to_pandas()
    assert set(by_year.columns) == {"genre", "year", "count", "meanRating"}
    drama = genres.genres.to_pandas().set_index("genre").loc["Drama"]
    assert drama.movie_count == 4_361
    assert by_year[by_year.genre == "Drama"]["count"].sum() >= drama.rating_count - 50

    top = api.top_movies(n=3, min_ratings=100)
    assert [m.title for m in top.most_rated] == [
        "Forrest Gump (1994)",
        "Shawshank Redemption, The (1994)",
        "Pulp Fiction (1994)",
    ]
    assert top.min_ratings == 100 and len(top.best_rated) == 3
    assert top.best_rated[0].mean_rating >= top.best_rated[2].mean_rating
    assert list(top.most_rated.to_pandas().columns) == ["movieId", "title", "rating_count", "mean_rating"]

    toy = api.movie_charts(1)
    assert toy.rating_count >= 215
    assert sum(b.count for b in toy.histogram) == toy.rating_count
    assert toy.per_year.to_pandas()["count"].sum() == toy.rating_count


def test_chart_parameters_are_validated_by_the_server(api: cinedata.Client) -> None:
    with pytest.raises(cinedata.InvalidRequest, match="n must be between 1 and 100"):
        api.top_movies(n=0)
    with pytest.raises(cinedata.NotFound, match="movie 999999999 not found"):
        api.movie_charts(999_999_999)
