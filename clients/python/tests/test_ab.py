"""A/B experiments through the SDK, against the demo: configured as a draft, started (every list
then says its user's variant, the same each time), a liked shown movie scored as a hit in the
outcomes, stopped; the API's refusals as typed errors; and what a stub shows of the requests.

A running experiment changes every list, so each test that starts one stops it in a
``finally``; names are unique, so reruns against the same service never meet an old one."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import pytest

import cinedata
from conftest import WRITER_USERS, Answer, Demo, Stub, error, poll

#: Two arms and a holdout; the fixed salt makes the split the same whatever the name.
CONFIG: dict[str, Any] = {
    "variants": [
        {"name": "control", "model": "served", "share": 1},
        {"name": "popular", "model": "popularity", "share": 1},
    ],
    "holdout": 0.2,
    "salt": "cinedata-sdk-tests",
}

SUMMARY = (
    '{"name": "exp", "status": "draft", "updatedAt": 1, '
    '"config": {"variants": [{"name": "a", "model": "ease", "share": 1}], "holdout": 0, "windowDays": 7}}'
)


def unique() -> str:
    return f"sdk-{secrets.token_hex(4)}"


def no_experiment_running(api: cinedata.Client) -> None:
    running = [e.name for e in api.ab_experiments().experiments if e.status == "running"]
    if running:
        pytest.skip(f"the service under test already runs experiment {running[0]!r}")


def test_an_experiment_is_configured_as_a_draft_and_changed(api: cinedata.Client) -> None:
    name = unique()
    created = api.put_ab_experiment(name, CONFIG)
    assert (created.name, created.status) == (name, "draft")
    assert [(v.name, v.model, v.share) for v in created.config.variants] == [
        ("control", "served", 1.0),
        ("popular", "popularity", 1.0),
    ]
    assert (created.config.holdout, created.config.window_days, created.config.control) == (0.2, 7.0, None)

    # A model works as well as a dict; the change is recorded, the status kept.
    config = created.config.model_copy(update={"window_days": 3.0, "control": "popular"})
    changed = api.put_ab_experiment(name, config)
    assert changed.status == "draft" and changed.config == config
    assert changed.updated_at >= created.updated_at

    listing = api.ab_experiments()
    mine = [e for e in listing.experiments if e.name == name]
    assert mine == [changed]
    frame = listing.to_pandas()
    assert {"name", "status", "updatedAt", "config.variants", "config.holdout", "config.windowDays"} <= set(
        frame.columns
    )
    assert frame.set_index("name").loc[name, "config.windowDays"] == 3.0

    report = api.ab_experiment(name)
    assert (report.name, report.status, report.control) == (name, "draft", "popular")
    assert [c.action for c in report.history] == ["created", "changed"]
    assert report.history[1].config == config
    assert [o.variant for o in report.outcomes] == ["control", "popular", "holdout"]
    assert all(o.users == 0 and o.hit_rate is None and o.vs_control is None for o in report.outcomes)
    outcomes = report.to_pandas()
    assert list(outcomes.columns) == [
        "variant",
        "model",
        "impressions",
        "hitImpressions",
        "users",
        "hitUsers",
        "hitRate",
        "gain",
        "vsControl.hitRate",
        "vsControl.low",
        "vsControl.high",
        "vsControl.pValue",
    ]
    assert outcomes["users"].sum() == 0
    assert list(report.history.to_pandas()["action"]) == ["created", "changed"]


def test_a_running_experiment_splits_users_stickily_and_scores_a_hit(api: cinedata.Client) -> None:
    no_experiment_running(api)
    name, other = unique(), unique()
    api.put_ab_experiment(name, CONFIG)
    try:
        started = api.start_ab_experiment(name)
        assert started.status == "running"
        assert api.start_ab_experiment(name).status == "running", "starting it again changes nothing"
        # One experiment at a time.
        api.put_ab_experiment(other, CONFIG)
        with pytest.raises(cinedata.Conflict) as caught:
            api.start_ab_experiment(other)
        assert caught.value.status == 409 and name in caught.value.detail

        # Every list says its variant, the same each time; popularity users get trending lists.
        seen = set()
        for user in range(1, 61):
            recs = api.recommendations(user, n=5)
            assert recs.experiment == name and recs.variant in {"control", "popular", "holdout"}, user
            assert recs.strategy == ("trending" if recs.variant == "popular" else "personal"), user
            assert api.recommendations(user, n=5).variant == recs.variant, f"user {user}: sticky"
            seen.add(recs.variant)
        assert seen == {"control", "popular", "holdout"}

        # A new user likes the first movie they were shown: a hit for their variant only. A
        # hit counts within the window after the list in stream time (the newest rating
        # learned: the replay's last, in 2018), so the like is timestamped a minute after it
        # (not now, which would also put 2026 into the analytics of test_analytics.py).
        newest = int(api.iter_ratings().to_pandas()["timestamp"].max())
        user = WRITER_USERS[20]
        shown = api.recommendations(user)
        assert shown.variant is not None and shown.items
        variant = shown.variant
        api.rate(user, shown.items[0].movie_id, 5.0, timestamp=newest + 60)
        report = poll(
            f"a hit for {variant} and every user's impressions in the outcomes",
            lambda: (
                (r := api.ab_experiment(name)).outcome(variant).hit_users >= 1
                and sum(o.users for o in r.outcomes) >= 61
                and r
            ),
            deadline=60,
        )
        assert report.status == "running" and report.computed_at > 0
        assert sum(o.hit_users for o in report.outcomes) == 1
        assert all(o.impressions >= o.users >= 1 for o in report.outcomes)
        mine = report.outcome(variant)
        assert mine.hit_impressions >= 1
        assert mine.hit_rate == pytest.approx(mine.hit_impressions / mine.impressions)
        assert report.outcome("control").vs_control is None
        difference = report.outcome("popular").vs_control
        assert difference is not None and difference.low <= difference.hit_rate <= difference.high
        assert 0.0 <= difference.p_value <= 1.0
        frame = report.to_pandas().set_index("variant")
        assert frame.loc[variant, "hitUsers"] == 1 and frame["users"].sum() == sum(o.users for o in report.outcomes)
        assert frame.loc["popular", "vsControl.low"] == pytest.approx(difference.low)
        with pytest.raises(KeyError):
            report.outcome("no-such-variant")
    finally:
        stopped = api.stop_ab_experiment(name)
    assert stopped.status == "stopped"
    assert api.recommendations(2).experiment is None
    assert api.recommendations(2).variant is None
    report = api.ab_experiment(name)
    assert report.status == "stopped" and report.outcome(variant).hit_users == 1, "the outcomes stay"
    assert [c.action for c in report.history] == ["created", "started", "stopped"]
    assert api.stop_ab_experiment(name).status == "stopped"


def test_the_apis_refusals_are_typed_errors(api: cinedata.Client) -> None:
    missing = unique()
    with pytest.raises(cinedata.NotFound) as caught:
        api.ab_experiment(missing)
    assert missing in caught.value.detail and caught.value.url.endswith(f"/experiments/{missing}")
    with pytest.raises(cinedata.NotFound):
        api.start_ab_experiment(missing)
    with pytest.raises(cinedata.NotFound):
        api.stop_ab_experiment(missing)
    with pytest.raises(cinedata.InvalidRequest) as invalid:
        api.ab_experiment("not a name!")
    assert invalid.value.status == 422 and "experiment name" in invalid.value.detail
    with pytest.raises(cinedata.InvalidRequest, match="holdout"):
        api.put_ab_experiment(missing, {**CONFIG, "holdout": 0.6})
    with pytest.raises(cinedata.InvalidRequest, match="variants"):
        api.put_ab_experiment(missing, {"variants": []})
    with pytest.raises(cinedata.NotFound):
        api.ab_experiment(missing)  # nothing was created


def test_the_sdk_refuses_bad_arguments_before_sending(stub: Callable[..., Stub]) -> None:
    server = stub(Answer(body=SUMMARY))
    with cinedata.Client(server.url) as api:
        with pytest.raises(ValueError, match="windowdays"):
            api.put_ab_experiment("exp", {**CONFIG, "windowdays": 3})
        with pytest.raises(ValueError, match="weight"):
            api.put_ab_experiment("exp", {"variants": [{"name": "a", "model": "ease", "share": 1, "weight": 2}]})
        with pytest.raises(ValueError, match="model"):
            api.put_ab_experiment("exp", {"variants": [{"name": "a", "model": "nope", "share": 1}]})
        with pytest.raises(TypeError, match="name must be a str"):
            api.ab_experiment(5)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="empty"):
            api.start_ab_experiment("")
        with pytest.raises(TypeError, match="ExperimentConfig or a dict"):
            api.put_ab_experiment("exp", [("variants", [])])  # type: ignore[arg-type]
    assert server.requests == []


def test_the_name_is_one_path_segment_and_the_body_the_config(stub: Callable[..., Stub]) -> None:
    server = stub(Answer(body=SUMMARY))
    with cinedata.Client(server.url) as api:
        summary = api.put_ab_experiment("a/b c", {"variants": [{"name": "a", "model": "ease", "share": 1}]})
        assert summary.config.variants[0].model == "ease"
        api.start_ab_experiment("..")
        api.stop_ab_experiment("v1.2")
    assert server.requests == [
        ("PUT", "/experiments/a%2Fb%20c"),
        ("POST", "/experiments/%2E%2E/start"),
        ("POST", "/experiments/v1.2/stop"),
    ]
    assert json.loads(server.bodies[0]) == {
        "variants": [{"name": "a", "model": "ease", "share": 1.0}],
        "holdout": 0.0,
        "windowDays": 7.0,
    }
    assert server.bodies[1:] == [b"", b""]


def test_admin_calls_are_writes_never_sent_twice(stub: Callable[..., Stub]) -> None:
    busy = stub(error(503, "store busy"))
    with cinedata.Client(busy.url, backoff=0.01) as api:
        with pytest.raises(cinedata.Unavailable, match="store busy"):
            api.put_ab_experiment("exp", CONFIG)
        with pytest.raises(cinedata.Unavailable):
            api.start_ab_experiment("exp")
        with pytest.raises(cinedata.Unavailable):
            api.ab_experiment("exp")  # a read: retried
    assert busy.requests[:2] == [("PUT", "/experiments/exp"), ("POST", "/experiments/exp/start")]
    assert busy.requests[2:] == [("GET", "/experiments/exp")] * 4


def test_changes_need_the_key_reads_do_not(demo: Demo) -> None:
    if demo.api_key is None:
        pytest.skip("the service under test has no API key")
    name = unique()
    with cinedata.Client(demo.url, api_key="") as anonymous:
        with pytest.raises(cinedata.Unauthorized):
            anonymous.start_ab_experiment(name)
        with pytest.raises(cinedata.Unauthorized):
            anonymous.stop_ab_experiment(name)
        # Last before a read: refused before its body is read, the PUT may leave the server
        # closing the connection, and a write is not re-sent on the next one.
        with pytest.raises(cinedata.Unauthorized) as caught:
            anonymous.put_ab_experiment(name, CONFIG)
        assert caught.value.status == 401 and caught.value.url.endswith(f"/experiments/{name}")
        assert all(e.name != name for e in anonymous.ab_experiments().experiments)


@pytest.mark.asyncio
async def test_the_async_client_configures_and_reads_experiments(demo: Demo) -> None:
    name = unique()
    async with cinedata.AsyncClient(demo.url, api_key=demo.api_key) as api:
        config = cinedata.ExperimentConfig(
            variants=[cinedata.VariantConfig(name="only", model="ease", share=1)], window_days=1
        )
        created = await api.put_ab_experiment(name, config)
        assert created.status == "draft" and created.config == config
        report = await api.ab_experiment(name)
        assert report.control == "only" and [o.variant for o in report.outcomes] == ["only"]
        assert any(e.name == name for e in (await api.ab_experiments()).experiments)
