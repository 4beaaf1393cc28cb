"""The synchronous client, :class:`Client`: the endpoints of :class:`~cinedata._endpoints.BaseClient`
as methods, sent with an :class:`httpx.Client`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from . import _core as core
from ._endpoints import CLIENT_ARGS, BaseClient
from .models import Rows

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Client", "Pages"]


class Pages(core.PagesBase[core.M, Callable[[core.Call], httpx.Response]]):
    """All the rows of a listing, fetched page by page (``skip``/``limit``) as you iterate.

    Iterating yields the rows one by one; :meth:`pages` yields each page; :meth:`collect` and
    :meth:`to_pandas` fetch every page. Each page request has the client's retry rules.
    Rows inserted while walking can shift the pages (the server orders by key, not by
    insertion), so a row may be seen twice or missed during heavy writes.
    """

    def _walk(self, parse: Callable[[httpx.Response, type[core.M]], Any]) -> Iterator[Any]:
        for call in self._calls():
            page = parse(self._send(call), self._model)
            yield page
            if len(page) < self._page_size:
                return

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
        return self._frame(self._walk(core.dicts_of))


class Client(BaseClient):
    __doc__ = f"""A synchronous CineData API client (an :class:`httpx.Client` inside).
{CLIENT_ARGS}
    Use it as a context manager, or call :meth:`close`::

        with cinedata.Client() as api:
            api.movie(1).title   # 'Toy Story (1995)'

    Every method raises a :class:`~cinedata.CineDataError` subclass naming the URL.
    """

    _Pages = Pages  # what the iter_* endpoints return

    def _connect(self) -> None:
        settings = self._settings
        self._http = httpx.Client(base_url=settings.base_url, headers=settings.headers(), timeout=settings.timeout)

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

    def _send(self, call: core.Call) -> httpx.Response:
        attempts = core.Attempts(self._settings, call)
        while True:
            try:
                response = self._http.request(call.method, call.path, params=call.params or None, json=call.body)
            except httpx.TransportError as e:
                time.sleep(attempts.after_error(e))  # or raises the typed error
                continue
            delay = attempts.after_answer(response)
            if delay is None:
                return response
            response.close()
            time.sleep(delay)
