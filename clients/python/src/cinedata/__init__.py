"""CineData's Python SDK: the movie catalogue, analytics and live recommendations of a
CineData service, as pydantic models or pandas DataFrames.

::

    import cinedata

    with cinedata.Client("http://127.0.0.1:8000") as api:
        toy_story = api.movie(1)                      # MovieDetail
        ratings = api.iter_ratings().to_pandas()      # every rating, one DataFrame
        recs = api.recommendations(1, explain=True)   # live, with the reasons

:class:`Client` is synchronous, :class:`AsyncClient` the same API awaited. Errors are
:class:`CineDataError` subclasses (see :mod:`cinedata.errors`).
"""

from ._core import __version__
from .async_client import AsyncClient, AsyncPages
from .client import Client, Pages
from .errors import (
    ClientError,
    CineDataError,
    Conflict,
    InvalidRequest,
    MalformedResponse,
    NotFound,
    ServerError,
    Unauthorized,
    Unavailable,
)
from . import models
from .models import *  # noqa: F403

__all__ = [
    "AsyncClient",
    "AsyncPages",
    "CineDataError",
    "Client",
    "ClientError",
    "Conflict",
    "InvalidRequest",
    "MalformedResponse",
    "NotFound",
    "Pages",
    "ServerError",
    "Unauthorized",
    "Unavailable",
    "__version__",
    "models",
]
__all__ += models.__all__
