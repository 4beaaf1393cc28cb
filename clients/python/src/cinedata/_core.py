"""What the sync and async clients share: settings, the request of each endpoint, the retry
rules, walking pages, and turning an answer into models or a typed error. Only the sending
(and the waiting between attempts) differs."""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError
from typing_extensions import NotRequired, Required, TypedDict

from . import errors
from .models import ExperimentConfig, NewRating, Rows, VariantConfig, frame_of

if TYPE_CHECKING:
    import pandas as pd

__version__ = "0.1.0"

M = TypeVar("M", bound=BaseModel)
S = TypeVar("S")

#: The server's largest page (``limit``) for every listing.
MAX_PAGE = 1000
DEFAULT_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Call:
    """One request. ``write`` requests are retried only when the connection was never made."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    write: bool = False


@dataclass(frozen=True)
class Settings:
    """A client's settings, resolved once (arguments, then environment, then defaults)."""

    base_url: str
    api_key: str | None
    timeout: float
    retries: int
    backoff: float

    @classmethod
    def resolve(
        cls,
        base_url: str | None,
        api_key: str | None,
        timeout: float,
        retries: int,
        backoff: float,
    ) -> Settings:
        url = (base_url or os.environ.get("CINEDATA_URL") or DEFAULT_URL).strip().rstrip("/")
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"base_url must be an http:// or https:// URL with a host, got {url!r}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive seconds, got {timeout!r}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries!r}")
        if backoff < 0:
            raise ValueError(f"backoff must be >= 0 seconds, got {backoff!r}")
        key = api_key if api_key is not None else os.environ.get("CINEDATA_API_KEY") or None
        return cls(url, key, float(timeout), int(retries), float(backoff))

    def headers(self) -> dict[str, str]:
        headers = {"user-agent": f"cinedata-python/{__version__}", "accept": "application/json"}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        return headers

    def url(self, call: Call) -> str:
        """The full URL of a call, for error messages when no request object exists."""
        return str(httpx.URL(self.base_url + call.path, params=call.params or None))

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait before retry ``attempt`` (0-based): exponential with jitter, or the
        server's ``Retry-After`` when it sent one (capped at 10 s)."""
        if response is not None:
            after = response.headers.get("retry-after", "")
            if after.strip().isdigit():
                return min(float(after), 10.0)
        base: float = self.backoff * 2.0**attempt
        return min(base * random.uniform(0.5, 1.0), 10.0)


# --- retry rules ---------------------------------------------------------------------------------

#: Transport errors after which the request certainly never reached the server.
NEVER_SENT: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def may_retry(call: Call, error: Exception) -> bool:
    """Reads are retried after any transport error; writes only when the request never left."""
    if isinstance(error, (httpx.UnsupportedProtocol, httpx.LocalProtocolError)):
        return False
    return isinstance(error, NEVER_SENT) or not call.write


def may_retry_status(call: Call, response: httpx.Response) -> bool:
    """A 503 is retried for reads only: a write that got one may have had effects."""
    return response.status_code == 503 and not call.write


def transport_error(call: Call, url: str, error: Exception, attempts: int) -> errors.CineDataError:
    """The typed error for a request that got no answer."""
    tries = f" (after {attempts} attempts)" if attempts > 1 else ""
    if isinstance(error, (httpx.UnsupportedProtocol, httpx.LocalProtocolError)):
        return errors.CineDataError(call.method, url, f"invalid request: {error}")
    if isinstance(error, httpx.TimeoutException):
        what = "timed out" if isinstance(error, NEVER_SENT) else "timed out waiting for the answer"
        detail = f"{what}{tries}: {type(error).__name__}"
    elif isinstance(error, NEVER_SENT):
        detail = f"could not connect{tries}: {error or type(error).__name__}"
    else:
        detail = f"the connection failed{tries}: {error or type(error).__name__}"
    if call.write and not isinstance(error, NEVER_SENT):
        detail += "; the write may or may not have been applied (it is not retried)"
    return errors.Unavailable(call.method, url, detail)


def _has_request(error: httpx.TransportError) -> bool:
    try:
        error.request  # noqa: B018 - raises RuntimeError when unset
    except RuntimeError:
        return False
    return True


class Attempts:
    """The retry rules applied to one call's attempts. The clients only send and sleep (each
    in its own way) for as long as these say to try again."""

    def __init__(self, settings: Settings, call: Call) -> None:
        self._settings = settings
        self._call = call
        self._attempt = 0

    def _again(self, response: httpx.Response | None = None) -> float:
        delay = self._settings.delay(self._attempt, response)
        self._attempt += 1
        return delay

    def after_error(self, error: httpx.TransportError) -> float:
        """Seconds to wait before trying again after ``error``; raises the typed error when the
        call is not to be retried (any more)."""
        call, settings = self._call, self._settings
        if self._attempt < settings.retries and may_retry(call, error):
            return self._again()
        url = str(error.request.url) if _has_request(error) else settings.url(call)
        raise transport_error(call, url, error, self._attempt + 1) from error

    def after_answer(self, response: httpx.Response) -> float | None:
        """Seconds to wait before trying again after ``response``, or ``None`` when it is the
        answer; raises the typed error for any other non-2xx."""
        if self._attempt < self._settings.retries and may_retry_status(self._call, response):
            return self._again(response)
        check(response, self._attempt + 1)
        return None


# --- answers -------------------------------------------------------------------------------------

_STATUS: dict[int, type[errors.CineDataError]] = {
    400: errors.InvalidRequest,
    401: errors.Unauthorized,
    404: errors.NotFound,
    409: errors.Conflict,
    422: errors.InvalidRequest,
    503: errors.Unavailable,
}


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def check(response: httpx.Response, attempts: int = 1) -> None:
    """Raises the typed error for a non-2xx answer, with the API's ``detail``."""
    status = response.status_code
    if 200 <= status < 300:
        return
    request = response.request
    try:
        body = response.json()
        detail = body["detail"] if isinstance(body, dict) and isinstance(body.get("detail"), str) else None
    except ValueError:
        detail = None
    if detail is None:
        detail = _snippet(response.text) or response.reason_phrase or "(empty body)"
    if attempts > 1:
        detail += f" (after {attempts} attempts)"
    kind = _STATUS.get(status) or (errors.ServerError if status >= 500 else errors.ClientError)
    raise kind(request.method, str(request.url), detail, status)


def json_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as e:
        kind = response.headers.get("content-type", "no content type")
        raise errors.MalformedResponse(
            response.request.method,
            str(response.request.url),
            f"the answer is not JSON ({kind}, {e}): {_snippet(response.text)!r}",
            response.status_code,
        ) from e


def _invalid(response: httpx.Response, what: str, error: ValidationError) -> errors.MalformedResponse:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in error.errors()[:5]
    )
    return errors.MalformedResponse(
        response.request.method,
        str(response.request.url),
        f"the answer is not a valid {what}: {problems}",
        response.status_code,
    )


def model_of(response: httpx.Response, model: type[M]) -> M:
    """The answer as ``model``, or :class:`~cinedata.MalformedResponse`."""
    check(response)
    data = json_of(response)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise _invalid(response, model.__name__, e) from e


_ADAPTERS: dict[type[BaseModel], TypeAdapter[Any]] = {}


def rows_of(response: httpx.Response, model: type[M]) -> Rows[M]:
    """The answer as a list of ``model``; the JSON rows are kept for a fast ``to_pandas()``."""
    check(response)
    data = json_of(response)
    adapter = _ADAPTERS.get(model)
    if adapter is None:
        adapter = _ADAPTERS[model] = TypeAdapter(list[model])  # type: ignore[valid-type]
    try:
        items = adapter.validate_python(data)
    except ValidationError as e:
        raise _invalid(response, f"list of {model.__name__}", e) from e
    return Rows(items, model=model, raw=data)


_ROW_ADAPTERS: dict[type[BaseModel], TypeAdapter[list[dict[str, Any]]]] = {}


def _row_adapter(model: type[BaseModel]) -> TypeAdapter[list[dict[str, Any]]]:
    """Validates a JSON list of ``model`` rows into plain dicts keyed by wire name: the same
    checks as the model (types, required fields), parsed in pydantic-core, without building an
    object per row. Only for flat models (the listings)."""
    adapter = _ROW_ADAPTERS.get(model)
    if adapter is None:
        fields = {
            (f.alias or name): (Required[f.annotation] if f.is_required() else NotRequired[f.annotation])
            for name, f in model.model_fields.items()
        }
        row = TypedDict(f"{model.__name__}Row", fields)  # type: ignore[misc]
        adapter = _ROW_ADAPTERS[model] = TypeAdapter(list[row])  # type: ignore[arg-type]
    return adapter


def dicts_of(response: httpx.Response, model: type[BaseModel]) -> list[dict[str, Any]]:
    """The answer as validated JSON rows of ``model`` (for DataFrames of many rows)."""
    check(response)
    try:
        return _row_adapter(model).validate_json(response.content)
    except ValidationError as e:
        if any(err["type"] == "json_invalid" for err in e.errors()):
            json_of(response)  # raises MalformedResponse saying it is not JSON
        raise _invalid(response, f"list of {model.__name__}", e) from e


class Listing(NamedTuple):
    """A listing walked in pages: the call of the page at ``skip`` with ``limit`` rows, and the page size."""

    page: Callable[[int, int], Call]
    page_size: int


class PagesBase(Generic[M, S]):
    """What :class:`~cinedata.Pages` and :class:`~cinedata.AsyncPages` share: which page to ask
    for next, and joining the pages. ``S`` is the client's ``_send`` (sync or async)."""

    def __init__(self, send: S, call: Callable[[int, int], Call], model: type[M], page_size: int) -> None:
        if not 1 <= page_size <= MAX_PAGE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE} (the server's largest page), got {page_size}")
        self._send = send
        self._call = call
        self._model = model
        self._page_size = page_size

    def _calls(self) -> Iterator[Call]:
        """Each page's call in turn; the walk stops after the first short page (full pages
        hold ``page_size`` rows, so the next one starts ``page_size`` further)."""
        return (self._call(skip, self._page_size) for skip in itertools.count(0, self._page_size))

    def _frame(self, pages: Iterable[list[dict[str, Any]]]) -> pd.DataFrame:
        return frame_of([row for page in pages for row in page], self._model)


def concat(pages: Iterable[Rows[M]], model: type[M]) -> Rows[M]:
    """Pages joined into one :class:`Rows` (keeping the JSON rows for ``to_pandas()``)."""
    items: list[M] = []
    raw: list[dict[str, Any]] | None = []
    for page in pages:
        items.extend(page)
        if raw is not None and page._raw is not None:
            raw.extend(page._raw)
        else:
            raw = None
    return Rows(items, model=model, raw=raw)


# --- the endpoints ------------------------------------------------------------------------------


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _id(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    return value


def _ids(name: str, values: int | Iterable[int]) -> str:
    ids = [values] if isinstance(values, int) else list(values)
    return ",".join(str(_id(name, v)) for v in ids)


def health() -> Call:
    return Call("GET", "/")


def movies(title: str | None, genre: str | None, skip: int, limit: int) -> Call:
    return Call("GET", "/movies", _params(title=title, genre=genre, skip=skip, limit=limit))


def movie(movie_id: int) -> Call:
    return Call("GET", f"/movies/{_id('movie_id', movie_id)}")


def ratings(user_id: int | None, movie_id: int | None, min_rating: float | None, skip: int, limit: int) -> Call:
    return Call(
        "GET", "/ratings", _params(user_id=user_id, movie_id=movie_id, min_rating=min_rating, skip=skip, limit=limit)
    )


def rating(user_id: int, movie_id: int) -> Call:
    return Call("GET", f"/ratings/{_id('user_id', user_id)}/{_id('movie_id', movie_id)}")


def tags(user_id: int | None, movie_id: int | None, skip: int, limit: int) -> Call:
    return Call("GET", "/tags", _params(user_id=user_id, movie_id=movie_id, skip=skip, limit=limit))


def tag(user_id: int, movie_id: int, text: str) -> Call:
    return Call("GET", f"/tags/{_id('user_id', user_id)}/{_id('movie_id', movie_id)}/{quote(text, safe='')}")


def links(skip: int, limit: int) -> Call:
    return Call("GET", "/links", _params(skip=skip, limit=limit))


def link(movie_id: int) -> Call:
    return Call("GET", f"/links/{_id('movie_id', movie_id)}")


def analytics() -> Call:
    return Call("GET", "/analytics")


def ratings_per_month() -> Call:
    return Call("GET", "/charts/ratings-per-month")


def rating_histogram() -> Call:
    return Call("GET", "/charts/rating-histogram")


def genre_charts() -> Call:
    return Call("GET", "/charts/genres")


def top_movies(n: int | None, min_ratings: int | None) -> Call:
    return Call("GET", "/charts/top-movies", _params(n=n, min_ratings=min_ratings))


def movie_charts(movie_id: int) -> Call:
    return Call("GET", f"/charts/movies/{_id('movie_id', movie_id)}")


def recommendations(
    user_id: int, n: int | None, genre: str | None, exclude: Iterable[int] | None, explain: bool
) -> Call:
    return Call(
        "GET",
        f"/users/{_id('user_id', user_id)}/recommendations",
        _params(
            n=n,
            genre=genre,
            exclude=_ids("exclude", exclude) if exclude is not None else None,
            explain="true" if explain else None,
        ),
    )


def similar(movie_id: int, n: int | None) -> Call:
    return Call("GET", f"/movies/{_id('movie_id', movie_id)}/similar", _params(n=n))


def profile(user_id: int) -> Call:
    return Call("GET", f"/users/{_id('user_id', user_id)}/profile")


def predictions(user_id: int, movie_ids: int | Iterable[int]) -> Call:
    return Call("GET", f"/users/{_id('user_id', user_id)}/predictions", {"movieId": _ids("movie_ids", movie_ids)})


def model() -> Call:
    return Call("GET", "/model")


def retrain() -> Call:
    return Call("POST", "/model/retrain", write=True)


def experiments(protocol: str | None, model: str | None, kind: str | None, limit: int | None) -> Call:
    return Call("GET", "/model/experiments", _params(protocol=protocol, model=model, kind=kind, limit=limit))


RatingLike = NewRating | dict[str, Any] | tuple[Any, ...]


def new_rating(item: RatingLike) -> NewRating:
    """``rate_many``'s items: a :class:`NewRating`, a dict (``userId`` or ``user_id`` keys) or
    a tuple ``(user_id, movie_id, rating[, timestamp])``."""
    if isinstance(item, NewRating):
        return item
    if isinstance(item, dict):
        return NewRating.model_validate(item)
    if isinstance(item, tuple) and len(item) in (3, 4):
        return NewRating(
            user_id=item[0], movie_id=item[1], rating=item[2], timestamp=item[3] if len(item) == 4 else None
        )
    raise TypeError(
        f"a rating is a NewRating, a dict or a (user_id, movie_id, rating[, timestamp]) tuple, got {item!r}"
    )


@contextmanager
def attaching(accepted: list[Any]) -> Iterator[None]:
    """Gives the error that stops ``rate_many`` the answers of the ratings posted before it
    (``error.accepted``)."""
    try:
        yield
    except Exception as e:
        e.accepted = accepted  # type: ignore[attr-defined]
        raise


def rate(rating: NewRating) -> Call:
    return Call("POST", "/ratings", body=rating.model_dump(by_alias=True, exclude_none=True), write=True)


# --- A/B experiments ----------------------------------------------------------------------------

ConfigLike = ExperimentConfig | Mapping[str, Any]


def _name(value: str) -> str:
    """An experiment's name as one path segment (percent-encoded; the server checks the rest).
    A name of dots only is encoded entirely, so it is not read as ``.``/``..`` of the path."""
    if not isinstance(value, str):
        raise TypeError(f"name must be a str, got {value!r}")
    if not value:
        raise ValueError("an experiment name must not be empty")
    segment = quote(value, safe="")
    return segment.replace(".", "%2E") if set(value) == {"."} else segment


def _known(kind: type[BaseModel], data: Mapping[str, Any]) -> None:
    """Refuses keys ``kind`` does not have (the models ignore unknown keys in answers; in a
    request they would be dropped silently, so a misspelt ``windowDays`` would go unnoticed)."""
    known = {name for name in kind.model_fields} | {f.alias for f in kind.model_fields.values() if f.alias}
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        fields = ", ".join(f.alias or n for n, f in kind.model_fields.items())
        raise ValueError(f"unknown {kind.__name__} field(s) {', '.join(unknown)}; expected {fields}")


def experiment_config(config: ConfigLike) -> ExperimentConfig:
    """``put_ab_experiment``'s configuration: an :class:`ExperimentConfig`, or a mapping with
    its fields (wire or snake_case names; variants as mappings or :class:`VariantConfig`)."""
    if isinstance(config, ExperimentConfig):
        return config
    if not isinstance(config, Mapping):
        raise TypeError(f"an experiment configuration is an ExperimentConfig or a dict, got {config!r}")
    _known(ExperimentConfig, config)
    for variant in config.get("variants") or ():
        if isinstance(variant, Mapping):
            _known(VariantConfig, variant)
    return ExperimentConfig.model_validate(config)


def ab_experiments() -> Call:
    return Call("GET", "/experiments")


def ab_experiment(name: str) -> Call:
    return Call("GET", f"/experiments/{_name(name)}")


def put_ab_experiment(name: str, config: ConfigLike) -> Call:
    body = experiment_config(config).model_dump(by_alias=True, exclude_none=True)
    return Call("PUT", f"/experiments/{_name(name)}", body=body, write=True)


def start_ab_experiment(name: str) -> Call:
    return Call("POST", f"/experiments/{_name(name)}/start", write=True)


def stop_ab_experiment(name: str) -> Call:
    return Call("POST", f"/experiments/{_name(name)}/stop", write=True)
