"""The SDK's typed errors. Every one names the request (method and full URL) and, when the
API answered, its status and the ``detail`` of its JSON error body.

::

    CineDataError
    ├── NotFound            404
    ├── InvalidRequest      400, 422 (a bad parameter or body; the detail says which)
    ├── Unauthorized        401 (missing or wrong API key on a write endpoint)
    ├── Conflict            409 (e.g. a retrain is already running)
    ├── Unavailable         503, connection refused, timeouts (after the retries)
    ├── ServerError         any other 5xx
    ├── MalformedResponse   a 2xx whose body is not the JSON the API documents
    └── ClientError         any other 4xx (405, 408, 413, ...)
"""

from __future__ import annotations

__all__ = [
    "ClientError",
    "CineDataError",
    "Conflict",
    "InvalidRequest",
    "MalformedResponse",
    "NotFound",
    "ServerError",
    "Unauthorized",
    "Unavailable",
]


class CineDataError(Exception):
    """Base of every error the SDK raises.

    Attributes:
        method: The HTTP method of the request.
        url: The full URL requested, query string included.
        status: The HTTP status, or None when no answer came (connection refused, timeout).
        detail: The API's ``detail`` (or a description of what went wrong on the way).
    """

    def __init__(self, method: str, url: str, detail: str, status: int | None = None) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.detail = detail
        where = f"{method} {url}"
        super().__init__(f"{where}: {status} {detail}" if status is not None else f"{where}: {detail}")


class NotFound(CineDataError):
    """404: the movie, user, rating, tag or link does not exist."""


class InvalidRequest(CineDataError):
    """400 or 422: a parameter or body the API refuses; ``detail`` says which and why."""


class Unauthorized(CineDataError):
    """401: a write endpoint was called without the service's API key (or with a wrong one)."""


class Conflict(CineDataError):
    """409: the request conflicts with work in progress (a retrain already running)."""


class Unavailable(CineDataError):
    """The service could not answer: 503, connection refused, DNS failure or a timeout,
    after the retries the request was allowed."""


class ServerError(CineDataError):
    """A 5xx other than 503: the service failed (its logs say why)."""


class MalformedResponse(CineDataError):
    """A success status whose body is not valid JSON or not the shape the API documents
    (a proxy's HTML page, a different service on that port, or an SDK/API mismatch)."""


class ClientError(CineDataError):
    """Any other 4xx (405 method not allowed, 408 body timeout, 413 body too large, ...)."""
