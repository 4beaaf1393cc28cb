"""The SDK's types as a user's type checker sees them: ``mypy --strict`` on the package and on
``typing_cases.py``, which asserts each endpoint kind's type on both clients (the overloads in
``_endpoints.py`` decide them, so a mistake there shows only here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SDK = Path(__file__).resolve().parents[1]


def test_mypy_strict_accepts_the_package_and_the_typing_cases(tmp_path: Path) -> None:
    pytest.importorskip("mypy", reason="mypy is not installed (scripts/test.sh installs it into .venv-tools/sdk)")
    mypy = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "mypy")]
    run = subprocess.run([*mypy, "src", "tests/typing_cases.py"], cwd=SDK, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
