"""The asynchronous client, :class:`AsyncClient`: the endpoints of
:class:`~cinedata._endpoints.BaseClient` as coroutine methods, sent with an :class:`httpx.AsyncClient`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from . import _core as core
from ._endpoints import CLIENT_ARGS, BaseClient
from .models import Rows

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["AsyncClient", "AsyncPages"]


class AsyncPages(core.PagesBase[core.M, Callable[[core.Call], Coroutine[Any, Any, httpx.Response]]]):
    """All the rows of a listing, fetched page by page as you iterate (``async for``); see
    :class:`~cinedata.Pages`."""

    async def _walk(self, parse: Callable[[httpx.Response, type[core.M]], Any]) -> AsyncIterator[Any]:
        for call in self._calls():
            page = parse(await self._send(call), self._model)
            yield page
            if len(page) < self._page_size:
                return

    def pages(self) -> AsyncIterator[Rows[core.M]]:
        """Each page in turn; the last one is shorter than ``page_size`` (possibly empty)."""
        return self._walk(core.rows_of)

    async def __aiter__(self) -> AsyncIterator[core.M]:
        async for page in self.pages():
            for row in page:
                yield row

    async def collect(self) -> Rows[core.M]:
        """Every row, as one :class:`~cinedata.Rows`."""
        return core.concat([page async for page in self.pages()], self._model)

    async def to_pandas(self) -> pd.DataFrame:
        """Every row, as one DataFrame (see :meth:`cinedata.Pages.to_pandas`)."""
        return self._frame([page async for page in self._walk(core.dicts_of)])


class AsyncClient(BaseClient):
    __doc__ = f"""An asynchronous CineData API client (an :class:`httpx.AsyncClient` inside), with the
    same methods, arguments and rules as :class:`~cinedata.Client`, each awaited.
{CLIENT_ARGS}
    Use it as an async context manager, or call :meth:`aclose`::

        async with cinedata.AsyncClient() as api:
            (await api.movie(1)).title   # 'Toy Story (1995)'

    Every method raises a :class:`~cinedata.CineDataError` subclass naming the URL.
    """

    _Pages = AsyncPages  # what the iter_* endpoints return

    def _connect(self) -> None:
        settings = self._settings
        self._http = httpx.AsyncClient(base_url=settings.base_url, headers=settings.headers(), timeout=settings.timeout)

    async def aclose(self) -> None:
        """Closes the connections."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"cinedata.AsyncClient({self.base_url!r})"

    async def _send(self, call: core.Call) -> httpx.Response:
        attempts = core.Attempts(self._settings, call)
        while True:
            try:
                response = await self._http.request(call.method, call.path, params=call.params or None, json=call.body)
            except httpx.TransportError as e:
                await asyncio.sleep(attempts.after_error(e))  # or raises the typed error
                continue
            delay = attempts.after_answer(response)
            if delay is None:
                return response
            await response.aclose()
            await asyncio.sleep(delay)
