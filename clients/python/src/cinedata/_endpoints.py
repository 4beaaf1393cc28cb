"""Every endpoint of the API, written once for :class:`~cinedata.Client` and
:class:`~cinedata.AsyncClient`.

An endpoint is a plain function of the method's arguments that builds the request (a
:class:`~cinedata._core.Call`), decorated with what its answer is: :func:`one` model,
:func:`rows` of a model, :func:`pages` of a model, or :func:`each` (one request per item).
The decorator turns it into a descriptor that becomes, on the client class it is reached
through, an ordinary method (the client's ``_send`` is a function) or a coroutine method
(``_send`` is a coroutine function), with the function's name, docstring and signature, so
``help()``, ``inspect.signature`` and IDEs show the real method. For type checkers the
``__get__`` overloads give the same: ``Client().movie`` is ``(movie_id: int) -> MovieDetail``,
``AsyncClient().movie`` is ``(movie_id: int) -> Coroutine[..., MovieDetail]``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine, Iterable, Iterator
from types import MethodType
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    ParamSpec,
    Protocol,
    TypeVar,
    get_args,
    get_origin,
    overload,
)

import httpx

from . import _core as core
from ._core import M
from .models import (
    Analytics,
    ExperimentKind,
    ExperimentList,
    ExperimentRecord,
    ExperimentReport,
    ExperimentSummary,
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
)

if TYPE_CHECKING:
    from typing_extensions import Self

    from .async_client import AsyncPages
    from .client import Pages

P = ParamSpec("P")
R = TypeVar("R")


class SyncSender(Protocol):
    """A client whose ``_send`` returns the answer: its endpoints are methods."""

    def _send(self, call: core.Call) -> httpx.Response: ...


class AsyncSender(Protocol):
    """A client whose ``_send`` is awaited: its endpoints are coroutine methods."""

    def _send(self, call: core.Call) -> Coroutine[Any, Any, httpx.Response]: ...


def _type_name(kind: Any) -> str:
    """``Rows[Movie]`` for ``Rows[Movie]``: the return annotation as the source would spell it."""
    args = get_args(kind)
    name: str = (get_origin(kind) or kind).__name__
    return f"{name}[{', '.join(arg.__name__ for arg in args)}]" if args else name


class _Method(Generic[P]):
    """What the endpoint descriptors share: building the method once per client class (the
    class that defines ``_send``), with the endpoint function's name, docstring and signature."""

    def __init__(self, request: Callable[Concatenate[Any, P], Any], async_doc: str | None = None) -> None:
        self._request = request
        self._async_doc = async_doc
        self._methods: dict[type[Any], Callable[..., Any]] = {}

    def _build(self, is_async: bool) -> Callable[..., Any]:
        """The method's body: ``(client, *args, **kwargs)``."""
        raise NotImplementedError

    def _returns(self, home: type[Any]) -> Any:
        """The method's return type on the client class ``home``."""
        raise NotImplementedError

    def _get(self, client: object, owner: type[Any]) -> Any:
        """``__get__``: the method of ``owner``'s client class, bound to ``client`` if given."""
        home = next((cls for cls in owner.__mro__ if "_send" in vars(cls)), None)
        if home is None:
            return self  # reached through the shared base class: not a method yet
        method = self._methods.get(home)
        if method is None:
            method = self._methods[home] = self._method(home)
        return method if client is None else MethodType(method, client)

    def _method(self, home: type[Any]) -> Callable[..., Any]:
        is_async = inspect.iscoroutinefunction(home._send)
        method = functools.update_wrapper(self._build(is_async), self._request)
        returns = self._returns(home)
        method.__qualname__ = f"{home.__qualname__}.{method.__name__}"
        method.__module__ = home.__module__
        # help() shows the return type as the source spells it; get_type_hints() gets the type itself.
        method.__annotations__ = {**self._request.__annotations__, "return": returns}
        signature = inspect.signature(self._request).replace(return_annotation=_type_name(returns))
        method.__signature__ = signature  # type: ignore[attr-defined]
        if is_async and self._async_doc:
            method.__doc__ = self._async_doc
        return method


class Endpoint(_Method[P], Generic[P, R]):
    """An endpoint that answers ``R``: a method of a sync client, a coroutine method of an async one."""

    def __init__(
        self,
        request: Callable[Concatenate[Any, P], Any],
        read: Callable[[httpx.Response], Any],
        returns: Any,
    ) -> None:
        super().__init__(request)
        self._read = read
        self._type = returns

    @overload
    def __get__(self, client: None, owner: type[SyncSender]) -> Callable[Concatenate[SyncSender, P], R]: ...
    @overload
    def __get__(
        self, client: None, owner: type[AsyncSender]
    ) -> Callable[Concatenate[AsyncSender, P], Coroutine[Any, Any, R]]: ...
    @overload
    def __get__(self, client: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, client: SyncSender, owner: type[Any]) -> Callable[P, R]: ...
    @overload
    def __get__(self, client: AsyncSender, owner: type[Any]) -> Callable[P, Coroutine[Any, Any, R]]: ...
    def __get__(self, client: object, owner: type[Any]) -> Any:
        return self._get(client, owner)

    def _returns(self, home: type[Any]) -> Any:
        return self._type

    def _build(self, is_async: bool) -> Callable[..., Any]:
        request, read = self._request, self._read

        def method(client: SyncSender, *args: Any, **kwargs: Any) -> Any:
            return read(client._send(request(client, *args, **kwargs)))

        async def async_method(client: AsyncSender, *args: Any, **kwargs: Any) -> Any:
            return read(await client._send(request(client, *args, **kwargs)))

        return async_method if is_async else method


class Each(Endpoint[P, R]):
    """An endpoint that sends one request per item, one after the other, and answers the list
    of their answers; the error that stops it has the answers before it (``accepted``)."""

    def _build(self, is_async: bool) -> Callable[..., Any]:
        request, read = self._request, self._read

        def method(client: SyncSender, *args: Any, **kwargs: Any) -> list[Any]:
            accepted: list[Any] = []
            with core.attaching(accepted):
                for call in request(client, *args, **kwargs):
                    accepted.append(read(client._send(call)))
            return accepted

        async def async_method(client: AsyncSender, *args: Any, **kwargs: Any) -> list[Any]:
            accepted: list[Any] = []
            with core.attaching(accepted):
                for call in request(client, *args, **kwargs):
                    accepted.append(read(await client._send(call)))
            return accepted

        return async_method if is_async else method


class Paged(_Method[P], Generic[P, M]):
    """An endpoint that walks a listing page by page: the client's page walker (``_Pages``:
    :class:`~cinedata.Pages` or :class:`~cinedata.AsyncPages`) over the function's listing."""

    def __init__(
        self, request: Callable[Concatenate[Any, P], core.Listing], model: type[M], async_doc: str | None
    ) -> None:
        super().__init__(request, async_doc)
        self._model = model

    @overload
    def __get__(self, client: None, owner: type[SyncSender]) -> Callable[Concatenate[SyncSender, P], Pages[M]]: ...
    @overload
    def __get__(
        self, client: None, owner: type[AsyncSender]
    ) -> Callable[Concatenate[AsyncSender, P], AsyncPages[M]]: ...
    @overload
    def __get__(self, client: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, client: SyncSender, owner: type[Any]) -> Callable[P, Pages[M]]: ...
    @overload
    def __get__(self, client: AsyncSender, owner: type[Any]) -> Callable[P, AsyncPages[M]]: ...
    def __get__(self, client: object, owner: type[Any]) -> Any:
        return self._get(client, owner)

    def _returns(self, home: type[Any]) -> Any:
        return home._Pages[self._model]

    def _build(self, is_async: bool) -> Callable[..., Any]:
        request, model = self._request, self._model

        def method(client: Any, *args: Any, **kwargs: Any) -> Any:
            listing: core.Listing = request(client, *args, **kwargs)
            return client._Pages(client._send, listing.page, model, listing.page_size)

        return method


def one(model: type[M]) -> Callable[[Callable[Concatenate[Any, P], core.Call]], Endpoint[P, M]]:
    """An endpoint answering one ``model``."""

    def endpoint(request: Callable[Concatenate[Any, P], core.Call]) -> Endpoint[P, M]:
        return Endpoint(request, lambda response: core.model_of(response, model), model)

    return endpoint


def rows(model: type[M]) -> Callable[[Callable[Concatenate[Any, P], core.Call]], Endpoint[P, Rows[M]]]:
    """An endpoint answering a list of ``model`` (one page of a listing, or a chart)."""

    def endpoint(request: Callable[Concatenate[Any, P], core.Call]) -> Endpoint[P, Rows[M]]:
        returns = Rows[model]  # type: ignore[valid-type]
        return Endpoint(request, lambda response: core.rows_of(response, model), returns)

    return endpoint


def each(model: type[M]) -> Callable[[Callable[Concatenate[Any, P], Iterable[core.Call]]], Endpoint[P, list[M]]]:
    """An endpoint sending each of the function's calls in turn, answering the list of ``model``."""

    def endpoint(request: Callable[Concatenate[Any, P], Iterable[core.Call]]) -> Endpoint[P, list[M]]:
        return Each(request, lambda response: core.model_of(response, model), list[model])  # type: ignore[valid-type]

    return endpoint


def pages(
    model: type[M], async_doc: str | None = None
) -> Callable[[Callable[Concatenate[Any, P], core.Listing]], Paged[P, M]]:
    """An endpoint walking all the pages of a listing of ``model``; ``async_doc`` is the
    docstring on :class:`~cinedata.AsyncClient` where it has to differ."""

    def endpoint(request: Callable[Concatenate[Any, P], core.Listing]) -> Paged[P, M]:
        return Paged(request, model, async_doc)

    return endpoint


#: The constructor's arguments, as both clients' docstrings list them.
CLIENT_ARGS = """
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
"""


class BaseClient:
    """What :class:`~cinedata.Client` and :class:`~cinedata.AsyncClient` share: the settings and
    every endpoint. A client adds its httpx client (``_connect``), ``_send``, its page walker
    ``_Pages``, closing and the context manager."""

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
        self._connect()

    def _connect(self) -> None:
        """Opens the client's httpx client (``self._http``)."""
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        """The service's URL."""
        return self._settings.base_url

    # --- catalogue -----------------------------------------------------------------------------

    @one(Health)
    def health(self) -> core.Call:
        """``GET /``: status "ok", the service's version and its database kind."""
        return core.health()

    @rows(Movie)
    def movies(
        self, *, title: str | None = None, genre: str | None = None, skip: int = 0, limit: int = 100
    ) -> core.Call:
        """``GET /movies``: one page of movies by movieId.

        Args:
            title: Case-insensitive substring of the title.
            genre: Case-insensitive genre name (``comedy``).
            skip: Rows to skip.
            limit: Rows to return, 1 to 1000.
        """
        return core.movies(title, genre, skip, limit)

    @pages(Movie, async_doc="""Every movie matching the filters, page by page (see :class:`AsyncPages`).""")
    def iter_movies(
        self, *, title: str | None = None, genre: str | None = None, page_size: int = core.MAX_PAGE
    ) -> core.Listing:
        """Every movie matching the filters, page by page (see :class:`Pages`)."""
        return core.Listing(lambda skip, limit: core.movies(title, genre, skip, limit), page_size)

    @one(MovieDetail)
    def movie(self, movie_id: int) -> core.Call:
        """``GET /movies/{movieId}``: the movie with every rating, tag and its link.

        Raises:
            NotFound: No such movie.
        """
        return core.movie(movie_id)

    @rows(Rating)
    def ratings(
        self,
        *,
        user_id: int | None = None,
        movie_id: int | None = None,
        min_rating: float | None = None,
        skip: int = 0,
        limit: int = 100,
    ) -> core.Call:
        """``GET /ratings``: one page of ratings by (userId, movieId), optionally of one user
        or movie, at or above ``min_rating``."""
        return core.ratings(user_id, movie_id, min_rating, skip, limit)

    @pages(
        Rating,
        async_doc="""Every rating matching the filters, page by page (``async for``)::

            frame = await api.iter_ratings().to_pandas()   # all of them, one DataFrame
        """,
    )
    def iter_ratings(
        self,
        *,
        user_id: int | None = None,
        movie_id: int | None = None,
        min_rating: float | None = None,
        page_size: int = core.MAX_PAGE,
    ) -> core.Listing:
        """Every rating matching the filters, page by page::

            frame = api.iter_ratings().to_pandas()   # all of them, one DataFrame
        """
        return core.Listing(lambda skip, limit: core.ratings(user_id, movie_id, min_rating, skip, limit), page_size)

    @one(Rating)
    def rating(self, user_id: int, movie_id: int) -> core.Call:
        """``GET /ratings/{userId}/{movieId}``.

        Raises:
            NotFound: The user has not rated the movie (or the rating is not stored yet).
        """
        return core.rating(user_id, movie_id)

    @rows(Tag)
    def tags(
        self, *, user_id: int | None = None, movie_id: int | None = None, skip: int = 0, limit: int = 100
    ) -> core.Call:
        """``GET /tags``: one page of tags by (userId, movieId, tag)."""
        return core.tags(user_id, movie_id, skip, limit)

    @pages(Tag)
    def iter_tags(
        self, *, user_id: int | None = None, movie_id: int | None = None, page_size: int = core.MAX_PAGE
    ) -> core.Listing:
        """Every tag matching the filters, page by page."""
        return core.Listing(lambda skip, limit: core.tags(user_id, movie_id, skip, limit), page_size)

    @one(Tag)
    def tag(self, user_id: int, movie_id: int, tag: str) -> core.Call:
        """``GET /tags/{userId}/{movieId}/{tag}``: one tag, matched exactly (any text; the SDK
        percent-encodes it)."""
        return core.tag(user_id, movie_id, tag)

    @rows(Link)
    def links(self, *, skip: int = 0, limit: int = 100) -> core.Call:
        """``GET /links``: one page of IMDb/TMDb ids by movieId."""
        return core.links(skip, limit)

    @pages(Link)
    def iter_links(self, *, page_size: int = core.MAX_PAGE) -> core.Listing:
        """Every link, page by page."""
        return core.Listing(core.links, page_size)

    @one(Link)
    def link(self, movie_id: int) -> core.Call:
        """``GET /links/{movieId}``."""
        return core.link(movie_id)

    # --- analytics and charts ------------------------------------------------------------------

    @one(Analytics)
    def analytics(self) -> core.Call:
        """``GET /analytics``: counts, the rating distribution, ratings per year, genres, the
        most- and best-rated movies (cached by the server for a few seconds)."""
        return core.analytics()

    @rows(MonthStats)
    def ratings_per_month(self) -> core.Call:
        """``GET /charts/ratings-per-month``: ratings and their mean per calendar month."""
        return core.ratings_per_month()

    @rows(RatingBucket)
    def rating_histogram(self) -> core.Call:
        """``GET /charts/rating-histogram``: ratings per star value."""
        return core.rating_histogram()

    @one(GenreCharts)
    def genre_charts(self) -> core.Call:
        """``GET /charts/genres``: popularity and mean per genre, overall and per year."""
        return core.genre_charts()

    @one(TopMovies)
    def top_movies(self, *, n: int | None = None, min_ratings: int | None = None) -> core.Call:
        """``GET /charts/top-movies``: the ``n`` most-rated movies (default 10) and the ``n``
        best-rated among those with at least ``min_ratings`` ratings (default 50)."""
        return core.top_movies(n, min_ratings)

    @one(MovieCharts)
    def movie_charts(self, movie_id: int) -> core.Call:
        """``GET /charts/movies/{movieId}``: one movie's histogram and ratings per year."""
        return core.movie_charts(movie_id)

    # --- recommendations and the model ---------------------------------------------------------

    @one(UserRecommendations)
    def recommendations(
        self,
        user_id: int,
        *,
        n: int | None = None,
        genre: str | None = None,
        exclude: Iterable[int] | None = None,
        explain: bool = False,
    ) -> core.Call:
        """``GET /users/{userId}/recommendations``, computed live from the user's ratings.

        Args:
            n: Movies to return, 1 to 100 (default 10).
            genre: Only movies of this genre (case-insensitive).
            exclude: Movie ids never to return.
            explain: Add, per movie, the liked movies that most drove its score (``because``).
        """
        return core.recommendations(user_id, n, genre, exclude, explain)

    @one(SimilarMovies)
    def similar(self, movie_id: int, *, n: int | None = None) -> core.Call:
        """``GET /movies/{movieId}/similar``: collaborative once the movie has a few ratings,
        content-based (genres, tags) before."""
        return core.similar(movie_id, n)

    @one(UserProfile)
    def profile(self, user_id: int) -> core.Call:
        """``GET /users/{userId}/profile``: rating count and mean, favourite genres, top rated.

        Raises:
            NotFound: The live model has no rating by this user.
        """
        return core.profile(user_id)

    @one(Predictions)
    def predictions(self, user_id: int, movie_ids: int | Iterable[int]) -> core.Call:
        """``GET /users/{userId}/predictions?movieId=...``: the live model's predicted stars.

        Raises:
            NotFound: One of the movies is not in the catalogue.
        """
        return core.predictions(user_id, movie_ids)

    @one(ModelInfo)
    def model(self) -> core.Call:
        """``GET /model``: version, algorithm, training, holdout metrics, events applied."""
        return core.model()

    @one(RetrainStarted)
    def retrain(self) -> core.Call:
        """``POST /model/retrain``: starts a full retrain (API key when the service has one).

        Not retried (except when the connection could not be made at all).

        Raises:
            Conflict: A retrain is already running.
            Unauthorized: The service has an API key and it was not given.
        """
        return core.retrain()

    @rows(ExperimentRecord)
    def experiments(
        self,
        *,
        protocol: str | None = None,
        model: str | None = None,
        kind: ExperimentKind | None = None,
        limit: int | None = None,
    ) -> core.Call:
        """``GET /model/experiments``: experiment records (``evaluate`` runs and retrains),
        newest first; ``to_pandas()`` flattens ``metrics``, ``params`` and ``data`` into
        dotted columns."""
        return core.experiments(protocol, model, kind, limit)

    # --- A/B experiments -----------------------------------------------------------------------

    @one(ExperimentList)
    def ab_experiments(self) -> core.Call:
        """``GET /experiments``: every A/B experiment with its status and configuration
        (``to_pandas()``: one row each, ``config`` in dotted columns).

        Not to be confused with :meth:`experiments`, the offline evaluation and retrain records.
        """
        return core.ab_experiments()

    @one(ExperimentReport)
    def ab_experiment(self, name: str) -> core.Call:
        """``GET /experiments/{name}``: an A/B experiment's configuration, status, change
        history and outcomes per variant: users shown lists, users who liked a shown movie
        within the window (hit rate), position-weighted gain, and the difference to the control
        with its 95% interval and p-value (``report.to_pandas()``: one row per variant).

        Raises:
            NotFound: No such experiment.
            InvalidRequest: Not a valid experiment name.
        """
        return core.ab_experiment(name)

    @one(ExperimentSummary)
    def put_ab_experiment(self, name: str, config: core.ConfigLike) -> core.Call:
        """``PUT /experiments/{name}``: creates the experiment as a draft, or changes its
        configuration (a running one goes on with the new shares and models at once). Needs
        the API key when the service has one; recorded in the experiment's history.

        Not retried (except when the connection could not be made at all), like every write.

        Args:
            name: 1 to 64 letters, digits, ``-``, ``_`` or ``.``.
            config: An :class:`~cinedata.ExperimentConfig`, or a dict of its fields
                (``{"variants": [{"name": "a", "model": "ease", "share": 1}], "holdout": 0.1}``;
                wire or snake_case names). Unknown keys raise ValueError before anything is sent.

        Raises:
            InvalidRequest: An invalid name or configuration (``detail`` says what).
            Unauthorized: The service has an API key and it was not given.
        """
        return core.put_ab_experiment(name, config)

    @one(ExperimentSummary)
    def start_ab_experiment(self, name: str) -> core.Call:
        """``POST /experiments/{name}/start``: starts (or resumes) the experiment: from now on
        each user's lists come from their variant's model, and say so (``experiment`` and
        ``variant`` of :meth:`recommendations`). One experiment runs at a time. Needs the API
        key when the service has one; not retried once sent.

        Raises:
            NotFound: No such experiment.
            Conflict: Another experiment is running (stop it first).
            Unauthorized: The service has an API key and it was not given.
        """
        return core.start_ab_experiment(name)

    @one(ExperimentSummary)
    def stop_ab_experiment(self, name: str) -> core.Call:
        """``POST /experiments/{name}/stop``: stops the experiment: lists come from the served
        model again; its outcomes stay readable. Needs the API key when the service has one;
        not retried once sent.

        Raises:
            NotFound: No such experiment.
            Unauthorized: The service has an API key and it was not given.
        """
        return core.stop_ab_experiment(name)

    # --- writes --------------------------------------------------------------------------------

    @one(RatingAccepted)
    def rate(self, user_id: int, movie_id: int, rating: float, timestamp: int | None = None) -> core.Call:
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
        return core.rate(NewRating(user_id=user_id, movie_id=movie_id, rating=rating, timestamp=timestamp))

    @each(RatingAccepted)
    def rate_many(self, ratings: Iterable[core.RatingLike]) -> Iterator[core.Call]:
        """Posts ratings one after the other with :meth:`rate`'s rules (never retried once
        sent), stopping at the first error.

        Each item is a :class:`~cinedata.NewRating`, a dict (``userId``/``user_id``, ...) or a
        tuple ``(user_id, movie_id, rating[, timestamp])``. The error raised has an
        ``accepted`` attribute: the answers of the ratings posted before it.
        """
        return (core.rate(core.new_rating(item)) for item in ratings)
