"""The synchronous client, :class:`Client`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic

import httpx

from . import _core as core
from .models import (
    Analytics,
    ExperimentKind,
    ExperimentRecord,
    GenreCharts,
    Health,
    Link,
    ModelInfo,
    MonthStats,
    Movie,
    MovieCharts,
    MovieDetail,
    NewRating,
    Predictions,
    Rating,
    RatingAccepted,
    RatingBucket,
    RetrainStarted,
    Rows,
    SimilarMovies,
    Tag,
    TopMovies,
    UserProfile,
    UserRecommendations,
    frame_of,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Client", "Pages"]


class Pages(Generic[core.M]):
    """All the rows of a listing, fetched page by page (``skip``/``limit``) as you iterate.

    Iterating yields the rows one by one; :meth:`pages` yields each page; :meth:`collect` and
    :meth:`to_pandas` fetch every page. Each page request has the client's retry rules.
    Rows inserted while walking can shift the pages (the server orders by key, not by
    insertion), so a row may be seen twice or missed during heavy writes.
    """

    def __init__(
        self,
        send: Callable[[core.Call], httpx.Response],
        call: Callable[[int, int], core.Call],
        model: type[core.M],
        page_size: int,
    ) -> None:
        self._send = send
        self._call = call
        self._model = model
        self._page_size = core.page_size(page_size)

    def _walk(self, parse: Callable[[httpx.Response, type[core.M]], Any]) -> Iterator[Any]:
        skip = 0
        while True:
            page = parse(self._send(self._call(skip, self._page_size)), self._model)
            yield page
            if len(page) < self._page_size:
                return
            skip += len(page)

    def pages(self) -> Iterator[Rows[core.M]]:
        """Each page in turn; the last one is shorter than ``page_size`` (possibly empty)."""
        return self._walk(core.rows_of)

    def __iter__(self) -> Iterator[core.M]:
        for page in self.pages():
            yield from page

    def collect(self) -> Rows[core.M]:
        """Every row, as one :class:`~cinedata.Rows`."""
        return core.concat(self.pages(), self._model)

    def to_pandas(self) -> pd.DataFrame:
        """Every row, as one DataFrame (columns named as on the wire: ``userId``, ...).

        The rows are validated as the models are, but go straight into the frame without a
        model object per row (several times faster for 100,000 ratings).
        """
        rows: list[dict[str, Any]] = []
        for page in self._walk(core.dicts_of):
            rows.extend(page)
        return frame_of(rows, self._model)


class Client:
    """A synchronous CineData API client (an :class:`httpx.Client` inside).

    Args:
        base_url: The service's URL, e.g. ``http://127.0.0.1:8000`` (default: the
            ``CINEDATA_URL`` environment variable, else ``http://127.0.0.1:8000``). A path
            prefix is kept (``https://example.org/cinedata``).
        api_key: Sent as ``x-api-key`` (needed for writes when the service has a key;
            default: ``CINEDATA_API_KEY``).
        timeout: Seconds for connecting and for each read or write of a request.
        retries: How many times a read is retried after a connection error, a timeout or a
            503 (with exponential backoff, or the server's ``Retry-After``). 4xx answers are
            never retried; writes are retried only when the connection could not be made.
        backoff: The first retry's delay in seconds; each next one doubles (capped at 10 s).

    Use it as a context manager, or call :meth:`close`::

        with cinedata.Client() as api:
            api.movie(1).title   # 'Toy Story (1995)'

    Every method raises a :class:`~cinedata.CineDataError` subclass naming the URL.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        *,
        retries: int = 3,
        backoff: float = 0.25,
    ) -> None:
        self._settings = core.Settings.resolve(base_url, api_key, timeout, retries, backoff)
        self._http = httpx.Client(
            base_url=self._settings.base_url,
            headers=self._settings.headers(),
            timeout=self._settings.timeout,
        )

    @property
    def base_url(self) -> str:
        """The service's URL."""
        return self._settings.base_url

    def close(self) -> None:
        """Closes the connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"cinedata.Client({self.base_url!r})"

    # --- sending -------------------------------------------------------------------------------

    def _send(self, call: core.Call) -> httpx.Response:
        settings = self._settings
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    call.method, call.path, params=call.params or None, json=call.body
                )
            except httpx.TransportError as e:
                if attempt < settings.retries and core.may_retry(call, e):
                    time.sleep(settings.delay(attempt))
                    attempt += 1
                    continue
                url = str(e.request.url) if _has_request(e) else settings.url(call)
                raise core.transport_error(call, url, e, attempt + 1) from e
            if attempt < settings.retries and core.may_retry_status(call, response):
                response.close()
                time.sleep(settings.delay(attempt, response))
                attempt += 1
                continue
            core.check(response, attempt + 1)
            return response

    def _one(self, call: core.Call, model: type[core.M]) -> core.M:
        return core.model_of(self._send(call), model)

    def _rows(self, call: core.Call, model: type[core.M]) -> Rows[core.M]:
        return core.rows_of(self._send(call), model)

    # --- catalogue -----------------------------------------------------------------------------

    def health(self) -> Health:
        """``GET /``: status "ok", the service's version and its database kind."""
        return self._one(core.health(), Health)

    def movies(
        self, *, title: str | None = None, genre: str | None = None, skip: int = 0, limit: int = 100
    ) -> Rows[Movie]:
        """``GET /movies``: one page of movies by movieId.

        Args:
            title: Case-insensitive substring of the title.
            genre: Case-insensitive genre name (``comedy``).
            skip: Rows to skip.
            limit: Rows to return, 1 to 1000.
        """
        return self._rows(core.movies(title, genre, skip, limit), Movie)

    def iter_movies(
        self, *, title: str | None = None, genre: str | None = None, page_size: int = core.MAX_PAGE
    ) -> Pages[Movie]:
        """Every movie matching the filters, page by page (see :class:`Pages`)."""
        return Pages(self._send, lambda skip, limit: core.movies(title, genre, skip, limit), Movie, page_size)

    def movie(self, movie_id: int) -> MovieDetail:
        """``GET /movies/{movieId}``: the movie with every rating, tag and its link.

        Raises:
            NotFound: No such movie.
        """
        return self._one(core.movie(movie_id), MovieDetail)

    def ratings(
        self,
        *,
        user_id: int | None = None,
        movie_id: int | None = None,
        min_rating: float | None = None,
        skip: int = 0,
        limit: int = 100,
    ) -> Rows[Rating]:
        """``GET /ratings``: one page of ratings by (userId, movieId), optionally of one user
        or movie, at or above ``min_rating``."""
        return self._rows(core.ratings(user_id, movie_id, min_rating, skip, limit), Rating)

    def iter_ratings(
        self,
        *,
        user_id: int | None = None,
        movie_id: int | None = None,
        min_rating: float | None = None,
        page_size: int = core.MAX_PAGE,
    ) -> Pages[Rating]:
        """Every rating matching the filters, page by page::

            frame = api.iter_ratings().to_pandas()   # all of them, one DataFrame
        """
        return Pages(
            self._send, lambda skip, limit: core.ratings(user_id, movie_id, min_rating, skip, limit), Rating, page_size
        )

    def rating(self, user_id: int, movie_id: int) -> Rating:
        """``GET /ratings/{userId}/{movieId}``.

        Raises:
            NotFound: The user has not rated the movie (or the rating is not stored yet).
        """
        return self._one(core.rating(user_id, movie_id), Rating)

    def tags(
        self, *, user_id: int | None = None, movie_id: int | None = None, skip: int = 0, limit: int = 100
    ) -> Rows[Tag]:
        """``GET /tags``: one page of tags by (userId, movieId, tag)."""
        return self._rows(core.tags(user_id, movie_id, skip, limit), Tag)

    def iter_tags(
        self, *, user_id: int | None = None, movie_id: int | None = None, page_size: int = core.MAX_PAGE
    ) -> Pages[Tag]:
        """Every tag matching the filters, page by page."""
        return Pages(self._send, lambda skip, limit: core.tags(user_id, movie_id, skip, limit), Tag, page_size)

    def tag(self, user_id: int, movie_id: int, tag: str) -> Tag:
        """``GET /tags/{userId}/{movieId}/{tag}``: one tag, matched exactly (any text; the SDK
        percent-encodes it)."""
        return self._one(core.tag(user_id, movie_id, tag), Tag)

    def links(self, *, skip: int = 0, limit: int = 100) -> Rows[Link]:
        """``GET /links``: one page of IMDb/TMDb ids by movieId."""
        return self._rows(core.links(skip, limit), Link)

    def iter_links(self, *, page_size: int = core.MAX_PAGE) -> Pages[Link]:
        """Every link, page by page."""
        return Pages(self._send, lambda skip, limit: core.links(skip, limit), Link, page_size)

    def link(self, movie_id: int) -> Link:
        """``GET /links/{movieId}``."""
        return self._one(core.link(movie_id), Link)

    # --- analytics and charts ------------------------------------------------------------------

    def analytics(self) -> Analytics:
        """``GET /analytics``: counts, the rating distribution, ratings per year, genres, the
        most- and best-rated movies (cached by the server for a few seconds)."""
        return self._one(core.analytics(), Analytics)

    def ratings_per_month(self) -> Rows[MonthStats]:
        """``GET /charts/ratings-per-month``: ratings and their mean per calendar month."""
        return self._rows(core.ratings_per_month(), MonthStats)

    def rating_histogram(self) -> Rows[RatingBucket]:
        """``GET /charts/rating-histogram``: ratings per star value."""
        return self._rows(core.rating_histogram(), RatingBucket)

    def genre_charts(self) -> GenreCharts:
        """``GET /charts/genres``: popularity and mean per genre, overall and per year."""
        return self._one(core.genre_charts(), GenreCharts)

    def top_movies(self, *, n: int | None = None, min_ratings: int | None = None) -> TopMovies:
        """``GET /charts/top-movies``: the ``n`` most-rated movies (default 10) and the ``n``
        best-rated among those with at least ``min_ratings`` ratings (default 50)."""
        return self._one(core.top_movies(n, min_ratings), TopMovies)

    def movie_charts(self, movie_id: int) -> MovieCharts:
        """``GET /charts/movies/{movieId}``: one movie's histogram and ratings per year."""
        return self._one(core.movie_charts(movie_id), MovieCharts)

    # --- recommendations and the model ---------------------------------------------------------

    def recommendations(
        self,
        user_id: int,
        *,
        n: int | None = None,
        genre: str | None = None,
        exclude: Iterable[int] | None = None,
        explain: bool = False,
    ) -> UserRecommendations:
        """``GET /users/{userId}/recommendations``, computed live from the user's ratings.

        Args:
            n: Movies to return, 1 to 100 (default 10).
            genre: Only movies of this genre (case-insensitive).
            exclude: Movie ids never to return.
            explain: Add, per movie, the liked movies that most drove its score (``because``).
        """
        return self._one(core.recommendations(user_id, n, genre, exclude, explain), UserRecommendations)

    def similar(self, movie_id: int, *, n: int | None = None) -> SimilarMovies:
        """``GET /movies/{movieId}/similar``: collaborative once the movie has a few ratings,
        content-based (genres, tags) before."""
        return self._one(core.similar(movie_id, n), SimilarMovies)

    def profile(self, user_id: int) -> UserProfile:
        """``GET /users/{userId}/profile``: rating count and mean, favourite genres, top rated.

        Raises:
            NotFound: The live model has no rating by this user.
        """
        return self._one(core.profile(user_id), UserProfile)

    def predictions(self, user_id: int, movie_ids: int | Iterable[int]) -> Predictions:
        """``GET /users/{userId}/predictions?movieId=...``: the live model's predicted stars.

        Raises:
            NotFound: One of the movies is not in the catalogue.
        """
        return self._one(core.predictions(user_id, movie_ids), Predictions)

    def model(self) -> ModelInfo:
        """``GET /model``: version, algorithm, training, holdout metrics, events applied."""
        return self._one(core.model(), ModelInfo)

    def retrain(self) -> RetrainStarted:
        """``POST /model/retrain``: starts a full retrain (API key when the service has one).

        Not retried (except when the connection could not be made at all).

        Raises:
            Conflict: A retrain is already running.
            Unauthorized: The service has an API key and it was not given.
        """
        return self._one(core.retrain(), RetrainStarted)

    def experiments(
        self,
        *,
        protocol: str | None = None,
        model: str | None = None,
        kind: ExperimentKind | None = None,
        limit: int | None = None,
    ) -> Rows[ExperimentRecord]:
        """``GET /model/experiments``: experiment records (``evaluate`` runs and retrains),
        newest first; ``to_pandas()`` flattens ``metrics``, ``params`` and ``data`` into
        dotted columns."""
        return self._rows(core.experiments(protocol, model, kind, limit), ExperimentRecord)

    # --- writes --------------------------------------------------------------------------------

    def rate(self, user_id: int, movie_id: int, rating: float, timestamp: int | None = None) -> RatingAccepted:
        """``POST /ratings``: submits a rating to the stream; 202 with its event id once the
        broker acknowledged it. Reads see it once the consumer has stored it (usually within
        a fraction of a second), and the next recommendations already reflect it.

        The API has no idempotency key, so a rating is **never retried** after its request may
        have left: only a connection that could not be made at all is retried. A timeout
        while waiting for the answer raises :class:`~cinedata.Unavailable` saying the rating
        may or may not have been applied; posting it again is harmless for the stored rating
        (the newer timestamp wins) but sends a second event to the live model.

        Args:
            rating: 0.5 to 5.0 in half-star steps.
            timestamp: Unix seconds (default: now, on the server).

        Raises:
            InvalidRequest: Out of scale, unknown movie, bad timestamp (``detail`` says which).
            Unauthorized: The service has an API key and it was not given.
            Unavailable: The service has no broker, or could not be reached.
        """
        body = NewRating(user_id=user_id, movie_id=movie_id, rating=rating, timestamp=timestamp)
        return self._one(core.rate(body), RatingAccepted)

    def rate_many(self, ratings: Iterable[core.RatingLike]) -> list[RatingAccepted]:
        """Posts ratings one after the other with :meth:`rate`'s rules (never retried once
        sent), stopping at the first error.

        Each item is a :class:`~cinedata.NewRating`, a dict (``userId``/``user_id``, ...) or a
        tuple ``(user_id, movie_id, rating[, timestamp])``. The error raised has an
        ``accepted`` attribute: the answers of the ratings posted before it.
        """
        accepted: list[RatingAccepted] = []
        for item in ratings:
            try:
                accepted.append(self._one(core.rate(core.new_rating(item)), RatingAccepted))
            except Exception as e:
                e.accepted = accepted  # type: ignore[attr-defined]
                raise
        return accepted


def _has_request(error: httpx.TransportError) -> bool:
    try:
        error.request  # noqa: B018 - raises RuntimeError when unset
    except RuntimeError:
        return False
    return True
