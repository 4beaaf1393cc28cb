"""Fixtures: a real `serving demo` on ml-latest-small (unless CINEDATA_URL points at one), and
tiny local HTTP stubs for the failures a real server does not produce on demand.

Environment:
    CINEDATA_URL: test this running service instead of starting a demo (it must serve
        ml-latest-small, fully replayed).
    CINEDATA_API_KEY: that service's API key, if it has one.
    CINEDATA_SERVING_BIN: the `serving` binary (default: <repo>/target/debug/serving).
    CINEDATA_ML_SMALL: the ml-latest-small folder (default: <repo>/../shared/data/movielens/
        ml-latest-small).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import cinedata

REPO = Path(__file__).resolve().parents[3]

#: ml-latest-small's sizes, checked by the readiness wait and by the tests.
RATINGS = 100_836
TAGS = 3_683
MOVIES = 9_742
USERS = 610

#: Users the tests write ratings for: far above ml-latest-small's 610, one per test.
WRITER_USERS = range(1_000_001, 1_000_100)

#: How long the demo may take to replay the release and finish its first retrain.
READY_DEADLINE = float(os.environ.get("CINEDATA_READY_DEADLINE", "600"))


def ml_small() -> Path:
    return Path(os.environ.get("CINEDATA_ML_SMALL") or REPO / "../shared/data/movielens/ml-latest-small").resolve()


def serving_bin() -> Path:
    path = Path(os.environ.get("CINEDATA_SERVING_BIN") or REPO / "target/debug/serving")
    if not path.is_file():
        pytest.exit(
            f"the serving binary {path} does not exist: build it with `cargo build -p serving`, or set "
            "CINEDATA_SERVING_BIN (or CINEDATA_URL to test a running service)",
            returncode=2,
        )
    return path


def _die_with_parent() -> None:
    """In the demo's process: receive SIGKILL when the test process dies, so a killed test run
    never leaves a demo behind (Linux; elsewhere a no-op)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class Demo:
    """The service under test."""

    url: str
    api_key: str | None
    process: subprocess.Popen[str] | None = None
    log: Path | None = None

    def log_tail(self, lines: int = 40) -> str:
        if self.log is None or not self.log.exists():
            return "(no log: an external service)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def start_demo(workdir: Path) -> tuple[subprocess.Popen[str], str, Path, str]:
    """`serving demo` with its own SQLite file, journal and API key, on a free port; returns
    the process, its URL (read from the line it prints, "CineData demo: http://..."), its log
    and the key."""
    data = ml_small()
    if not (data / "ratings.csv").is_file():
        pytest.exit(f"ml-latest-small not found at {data}: set CINEDATA_ML_SMALL", returncode=2)
    key = secrets.token_hex(16)
    log = workdir / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINEDATA_")}
    env.update(RUST_LOG="warn", CINEDATA_API_KEY=key)
    command = [
        str(serving_bin()),
        "demo",
        "--data",
        str(data),
        "--listen",
        "127.0.0.1:0",
        "--snapshot-dir",
        "",
        "--database-url",
        f"sqlite://{workdir / 'cinedata.db'}",
        "--journal",
        str(workdir / "ratings.journal"),
        # One retrain, after the replay; none while the tests run.
        "--retrain-every",
        "0",
        "--retrain-interval",
        "0",
    ]
    with log.open("w") as stderr:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            preexec_fn=_die_with_parent,
        )
    found: list[str] = []
    printed = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:  # keeps draining, so the pipe never fills
            if line.startswith("CineData demo: ") and not found:
                found.append(line.removeprefix("CineData demo: ").split()[0])
                printed.set()

    threading.Thread(target=read, daemon=True).start()
    if not printed.wait(120) or process.poll() is not None:
        process.kill()
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise RuntimeError(f"the demo did not print its address within 120 s: {' '.join(command)}\n{tail}")
    return process, found[0], log, key


def wait_until_ready(demo: Demo, own: bool) -> None:
    """Waits until every rating of the release reached the store and the live model, and the
    retrain after the replay is done (the first test of serving/tests/demo.rs)."""
    deadline = time.monotonic() + READY_DEADLINE
    last = "no answer yet"
    with cinedata.Client(demo.url, timeout=10, retries=0) as api:
        while True:
            if demo.process is not None and demo.process.poll() is not None:
                raise RuntimeError(f"the demo exited with {demo.process.returncode}:\n{demo.log_tail()}")
            try:
                model = api.model()
                counts = api.analytics()
                replayed = model.last_retrain is not None and (model.last_retrain.trigger == "replay" or not own)
                if (
                    model.events_applied >= RATINGS
                    and model.training_ratings >= RATINGS
                    and replayed
                    and counts.rating_count >= RATINGS
                    and counts.tag_count == TAGS
                ):
                    return
                last = (
                    f"eventsApplied={model.events_applied} trainingRatings={model.training_ratings} "
                    f"lastRetrain={model.last_retrain and model.last_retrain.trigger} "
                    f"ratings={counts.rating_count} tags={counts.tag_count}"
                )
            except cinedata.CineDataError as e:
                last = str(e)
            if time.monotonic() > deadline:
                raise RuntimeError(f"the demo was not ready after {READY_DEADLINE:.0f} s: {last}\n{demo.log_tail()}")
            time.sleep(0.5)


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The service under test: CINEDATA_URL, or a demo started here and stopped at the end."""
    external = os.environ.get("CINEDATA_URL")
    if external:
        service = Demo(external.rstrip("/"), os.environ.get("CINEDATA_API_KEY") or None)
        wait_until_ready(service, own=False)
        yield service
        return
    workdir = tmp_path_factory.mktemp("demo")
    process, url, log, key = start_demo(workdir)
    service = Demo(url, key, process, log)
    try:
        wait_until_ready(service, own=True)
        yield service
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def api(demo: Demo) -> Iterator[cinedata.Client]:
    """A client of the service under test, with its API key."""
    with cinedata.Client(demo.url, api_key=demo.api_key, timeout=30) as client:
        yield client


def poll(what: str, check: Callable[[], Any], deadline: float = 30.0, every: float = 0.1) -> Any:
    """Calls ``check`` until it returns something truthy, or fails after ``deadline`` seconds
    with the last value or error."""
    end = time.monotonic() + deadline
    last: Any = None
    while True:
        try:
            value = check()
            if value:
                return value
            last = value
        except cinedata.CineDataError as e:
            last = e
        if time.monotonic() > end:
            pytest.fail(f"{what}: not within {deadline:.0f} s; last: {last!r}")
        time.sleep(every)


# --- local stubs ---------------------------------------------------------------------------------


@dataclass
class Answer:
    """One scripted answer of a stub: a status, a body, headers, and a delay before it."""

    status: int = 200
    body: str | bytes = "{}"
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})
    delay: float = 0.0


def error(status: int, detail: str, **headers: str) -> Answer:
    return Answer(status, json.dumps({"detail": detail}), {"content-type": "application/json", **headers})


@dataclass
class Stub:
    """A local HTTP server answering from a script (the last answer repeats); it records the
    requests it got as (method, path), and their bodies."""

    url: str
    answers: list[Answer]
    requests: list[tuple[str, str]]
    bodies: list[bytes] = field(default_factory=list)


@pytest.fixture
def stub() -> Iterator[Callable[..., Stub]]:
    servers: list[ThreadingHTTPServer] = []

    def start(*answers: Answer) -> Stub:
        script = list(answers)
        seen: list[tuple[str, str]] = []
        bodies: list[bytes] = []
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                with lock:
                    answer = script[min(len(seen), len(script) - 1)]
                    seen.append((self.command, self.path))
                    bodies.append(body)
                if answer.delay:
                    time.sleep(answer.delay)
                payload = answer.body.encode() if isinstance(answer.body, str) else answer.body
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            do_GET = _answer
            do_POST = _answer
            do_PUT = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        servers.append(server)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        host, port = server.server_address[:2]
        return Stub(f"http://{host!s}:{port}", script, seen, bodies)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_port_url() -> str:
    """A URL nothing listens on (a port bound and released just now)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def pytest_report_header(config: pytest.Config) -> str:
    return f"cinedata SDK {cinedata.__version__} at {Path(cinedata.__file__).parent}; python {sys.version.split()[0]}"
