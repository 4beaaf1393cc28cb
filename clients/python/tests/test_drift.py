"""The SDK against the running server's own description (`/openapi.json`): every response
model has the component schema's property names and required set, every enum its values,
every schema a success response uses has a model, and every operation has a client method.
A change to the API that the SDK does not follow fails here."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import cinedata
from cinedata.models import RESPONSE_MODELS
from conftest import Demo

#: Each operation of the API and the Client method that calls it.
OPERATIONS = {
    ("get", "/"): "health",
    ("get", "/movies"): "movies",
    ("get", "/movies/{movie_id}"): "movie",
    ("get", "/ratings"): "ratings",
    ("get", "/ratings/{user_id}/{movie_id}"): "rating",
    ("post", "/ratings"): "rate",
    ("get", "/tags"): "tags",
    ("get", "/tags/{user_id}/{movie_id}/{tag}"): "tag",
    ("get", "/links"): "links",
    ("get", "/links/{movie_id}"): "link",
    ("get", "/analytics"): "analytics",
    ("get", "/charts/ratings-per-month"): "ratings_per_month",
    ("get", "/charts/rating-histogram"): "rating_histogram",
    ("get", "/charts/genres"): "genre_charts",
    ("get", "/charts/top-movies"): "top_movies",
    ("get", "/charts/movies/{movie_id}"): "movie_charts",
    ("get", "/users/{user_id}/recommendations"): "recommendations",
    ("get", "/movies/{movie_id}/similar"): "similar",
    ("get", "/users/{user_id}/profile"): "profile",
    ("get", "/users/{user_id}/predictions"): "predictions",
    ("get", "/model"): "model",
    ("post", "/model/retrain"): "retrain",
    ("get", "/model/experiments"): "experiments",
    ("get", "/experiments"): "ab_experiments",
    ("get", "/experiments/{name}"): "ab_experiment",
    ("put", "/experiments/{name}"): "put_ab_experiment",
    ("post", "/experiments/{name}/start"): "start_ab_experiment",
    ("post", "/experiments/{name}/stop"): "stop_ab_experiment",
}

#: Enum schemas and the Literal types that mirror them.
ENUMS = {
    "Strategy": cinedata.models.Strategy,
    "ExperimentKind": cinedata.models.ExperimentKind,
    "VariantModel": cinedata.models.VariantModel,
    "ExperimentStatus": cinedata.models.ExperimentStatus,
}


@pytest.fixture(scope="module")
def document(demo: Demo) -> dict[str, Any]:
    answer = httpx.get(f"{demo.url}/openapi.json", timeout=30)
    answer.raise_for_status()
    doc: dict[str, Any] = answer.json()
    return doc


def wire_names(model: type[BaseModel]) -> tuple[set[str], set[str]]:
    """A model's wire names, and those of its required fields."""
    names = {field.alias or name: field for name, field in model.model_fields.items()}
    return set(names), {n for n, f in names.items() if f.is_required()}


@pytest.mark.parametrize("model", RESPONSE_MODELS, ids=lambda m: m.__name__)
def test_each_model_matches_its_component_schema(document: dict[str, Any], model: type[BaseModel]) -> None:
    schemas = document["components"]["schemas"]
    assert model.__name__ in schemas, f"{model.__name__} is not a schema of /openapi.json any more"
    schema = schemas[model.__name__]
    properties = set(schema.get("properties", {}))
    required = set(schema.get("required", []))
    names, required_names = wire_names(model)
    assert names == properties, (
        f"{model.__name__}: the SDK lacks {sorted(properties - names)}, the API lacks {sorted(names - properties)}"
    )
    assert required_names == required, (
        f"{model.__name__}: required in the API only: {sorted(required - required_names)}, "
        f"in the SDK only: {sorted(required_names - required)}"
    )


def test_the_rating_body_matches_new_rating(document: dict[str, Any]) -> None:
    schema = document["components"]["schemas"]["NewRating"]
    body = cinedata.NewRating(user_id=1, movie_id=2, rating=3.0, timestamp=4).model_dump(by_alias=True)
    assert set(body) == set(schema["properties"])
    assert set(schema["required"]) == {"userId", "movieId", "rating"}


def test_the_experiment_body_is_the_put_operations(document: dict[str, Any]) -> None:
    """``put_ab_experiment`` sends the schema ``PUT /experiments/{name}`` takes, with the
    defaults the API documents."""
    body = document["paths"]["/experiments/{name}"]["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ExperimentConfig"}
    schema = document["components"]["schemas"]["ExperimentConfig"]
    config = cinedata.ExperimentConfig(
        variants=[cinedata.VariantConfig(name="a", model="ease", share=1)], control="a", salt="s"
    )
    sent = config.model_dump(by_alias=True, exclude_none=True)
    assert set(sent) == set(schema["properties"])
    assert set(sent["variants"][0]) == set(document["components"]["schemas"]["VariantConfig"]["properties"])
    assert schema["properties"]["windowDays"].get("default", 7.0) == config.window_days == 7.0
    assert schema["properties"]["holdout"].get("default", 0.0) == config.holdout == 0.0


@pytest.mark.parametrize("name", sorted(ENUMS))
def test_enums_have_the_same_values(document: dict[str, Any], name: str) -> None:
    assert set(document["components"]["schemas"][name]["enum"]) == set(typing.get_args(ENUMS[name]))


def references(node: Any) -> set[str]:
    """Schema names referenced anywhere in ``node``."""
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            found |= references(value)
    elif isinstance(node, list):
        for value in node:
            found |= references(value)
    return found


def test_every_schema_a_success_answer_uses_has_a_model(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    todo = set()
    for operations in document["paths"].values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if status.startswith("2"):
                    todo |= references(response)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        seen.add(name)
        todo |= references(schemas[name]) - seen
    modelled = {m.__name__ for m in RESPONSE_MODELS} | set(ENUMS)
    assert seen - modelled == set(), "schemas the SDK does not model"
    assert {m.__name__ for m in RESPONSE_MODELS} - seen == set(), "models no success answer uses"


def test_every_operation_has_a_client_method(document: dict[str, Any]) -> None:
    operations = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert operations == set(OPERATIONS), (
        f"not in the SDK: {sorted(operations - set(OPERATIONS))}; gone from the API: "
        f"{sorted(set(OPERATIONS) - operations)}"
    )
    for name in OPERATIONS.values():
        assert callable(getattr(cinedata.Client, name)), name
        assert inspect.iscoroutinefunction(getattr(cinedata.AsyncClient, name)), name
        sync = inspect.signature(getattr(cinedata.Client, name))
        assert inspect.signature(getattr(cinedata.AsyncClient, name)).parameters == sync.parameters, name


def test_the_query_parameters_are_the_apis(document: dict[str, Any]) -> None:
    """Each method's query parameters are among the operation's (a renamed parameter would
    otherwise be silently ignored by the server)."""
    recorded: dict[str, set[str]] = {}

    class Recorder(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            recorded[request.url.path] = set(request.url.params)
            return httpx.Response(404, json={"detail": "recorded"})

    api = cinedata.Client("http://sdk.test", retries=0)
    api._http = httpx.Client(base_url="http://sdk.test", transport=Recorder())
    calls: dict[str, Callable[[], object]] = {
        "/movies": lambda: api.movies(title="a", genre="b", skip=1, limit=2),
        "/ratings": lambda: api.ratings(user_id=1, movie_id=2, min_rating=3, skip=1, limit=2),
        "/tags": lambda: api.tags(user_id=1, movie_id=2, skip=1, limit=2),
        "/links": lambda: api.links(skip=1, limit=2),
        "/charts/top-movies": lambda: api.top_movies(n=1, min_ratings=2),
        "/users/{user_id}/recommendations": lambda: api.recommendations(1, n=1, genre="a", exclude=[1], explain=True),
        "/movies/{movie_id}/similar": lambda: api.similar(1, n=1),
        "/users/{user_id}/predictions": lambda: api.predictions(1, [1]),
        "/model/experiments": lambda: api.experiments(protocol="a", model="b", kind="retrain", limit=1),
    }
    for path, call in calls.items():
        recorded.clear()
        with pytest.raises(cinedata.NotFound):
            call()
        (sent,) = recorded.values()
        documented = {
            p["name"] for p in document["paths"][path]["get"].get("parameters", []) if p["in"] == "query"
        }
        assert sent and sent <= documented, f"{path}: {sorted(sent - documented)} are not query parameters"
