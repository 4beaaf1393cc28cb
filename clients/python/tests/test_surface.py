"""Client and AsyncClient are one API: the same methods with the same signatures and
docstrings (the endpoints are written once, in ``_endpoints.py``), each one a real method for
``help()``, ``inspect`` and IDEs; sync on Client, awaited on AsyncClient."""

from __future__ import annotations

import inspect
import pydoc
import typing
from collections.abc import Callable
from inspect import Parameter

import pytest

import cinedata
from conftest import Answer, Stub, error

#: The methods that differ by design: closing, and the context managers.
SYNC_ONLY = {"close"}
ASYNC_ONLY = {"aclose"}

#: Endpoints whose docstring shows the async use on AsyncClient.
ASYNC_DOCS = {"iter_movies", "iter_ratings"}


def public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def test_both_clients_have_the_same_methods_and_signatures() -> None:
    endpoints = public(cinedata.Client) - SYNC_ONLY - {"base_url"}
    assert public(cinedata.AsyncClient) - ASYNC_ONLY - {"base_url"} == endpoints
    assert len(endpoints) == 33
    for name in sorted(endpoints):
        sync, awaited = getattr(cinedata.Client, name), getattr(cinedata.AsyncClient, name)
        signature, async_signature = inspect.signature(sync), inspect.signature(awaited)
        assert async_signature.parameters == signature.parameters, name
        assert next(iter(signature.parameters)) == "self", name
        kinds = {p.kind for p in signature.parameters.values()}
        assert Parameter.VAR_POSITIONAL not in kinds and Parameter.VAR_KEYWORD not in kinds, name
        returns = str(signature.return_annotation)
        assert async_signature.return_annotation == ("Async" + returns if name.startswith("iter_") else returns), name
        assert not inspect.iscoroutinefunction(sync), name
        assert inspect.iscoroutinefunction(awaited) == (not name.startswith("iter_")), name
        assert sync.__doc__ and sync.__doc__.startswith(("``", "Every", "Posts")), name
        if name not in ASYNC_DOCS:
            assert awaited.__doc__ == sync.__doc__, name
        assert (sync.__name__, sync.__qualname__, sync.__module__) == (name, f"Client.{name}", "cinedata.client")
        assert (awaited.__qualname__, awaited.__module__) == (f"AsyncClient.{name}", "cinedata.async_client")
    assert inspect.signature(cinedata.AsyncClient) == inspect.signature(cinedata.Client)


def test_methods_show_their_real_signature_and_docstring() -> None:
    api, aapi = cinedata.Client("http://sdk.test"), cinedata.AsyncClient("http://sdk.test")
    assert str(inspect.signature(api.movie)) == "(movie_id: 'int') -> 'MovieDetail'"
    assert str(inspect.signature(aapi.movie)) == "(movie_id: 'int') -> 'MovieDetail'"
    assert str(inspect.signature(cinedata.Client.rating)) == "(self, user_id: 'int', movie_id: 'int') -> 'Rating'"
    assert str(inspect.signature(api.recommendations)) == (
        "(user_id: 'int', *, n: 'int | None' = None, genre: 'str | None' = None, "
        "exclude: 'Iterable[int] | None' = None, explain: 'bool' = False) -> 'UserRecommendations'"
    )
    assert str(inspect.signature(api.iter_ratings)).endswith("page_size: 'int' = 1000) -> 'Pages[Rating]'")
    assert str(inspect.signature(aapi.iter_ratings)).endswith("page_size: 'int' = 1000) -> 'AsyncPages[Rating]'")
    assert str(inspect.signature(aapi.rate_many)) == "(ratings: 'Iterable[core.RatingLike]') -> 'list[RatingAccepted]'"
    assert typing.get_type_hints(cinedata.AsyncClient.iter_tags)["return"] == cinedata.AsyncPages[cinedata.Tag]
    assert typing.get_type_hints(cinedata.Client.movies)["return"] == cinedata.Rows[cinedata.Movie]

    page = pydoc.plain(pydoc.render_doc(api.movie))
    assert "movie(movie_id: 'int') -> 'MovieDetail' method of cinedata.client.Client instance" in page
    assert "NotFound: No such movie." in page
    assert "await api.iter_ratings().to_pandas()" in (aapi.iter_ratings.__doc__ or "")
    assert "await" not in (api.iter_ratings.__doc__ or "")
    assert repr(api.movie).startswith("<bound method Client.movie of cinedata.Client('http://sdk.test')>")
    assert "Args:" in (cinedata.AsyncClient.__doc__ or "") and "backoff:" in (cinedata.Client.__doc__ or "")


def test_bad_arguments_fail_before_anything_is_sent() -> None:
    api = cinedata.Client("http://sdk.test")
    with pytest.raises(TypeError):
        api.movie(1, 2)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        api.movies("toy")  # type: ignore[misc]
    with pytest.raises(TypeError, match="movie_id must be an int"):
        api.movie("1")  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_rate_many_keeps_the_accepted_ratings_on_both_clients(stub: Callable[..., Stub]) -> None:
    script = (Answer(202, '{"eventId": "e1"}'), error(400, "rating must be between 0.5 and 5"))
    items = [(1, 1, 4.0), (1, 2, 9.0), (1, 3, 4.0)]
    with cinedata.Client(stub(*script).url) as api, pytest.raises(cinedata.InvalidRequest) as caught:
        api.rate_many(items)
    async with cinedata.AsyncClient(stub(*script).url) as aapi:
        with pytest.raises(cinedata.InvalidRequest) as async_caught:
            await aapi.rate_many(items)
    for e in (caught.value, async_caught.value):
        assert [a.event_id for a in e.accepted] == ["e1"]  # type: ignore[attr-defined]
    with cinedata.Client(stub(*script).url) as api, pytest.raises(TypeError) as bad:
        api.rate_many([(1, 1, 4.0), "five stars"])  # type: ignore[list-item]
    assert [a.event_id for a in bad.value.accepted] == ["e1"]  # type: ignore[attr-defined]
