"""The root README's "From Python" example, run as it is written, against the demo."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import REPO, Demo


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    section = re.search(r"^## From Python\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, 'README.md has no "## From Python" section'
    blocks = re.findall(r"^```python\n(.*?)^```", section.group(1), re.S | re.M)
    assert len(blocks) == 1, "the section has one ```python block"
    return str(blocks[0])


def test_the_readme_example_runs_against_the_demo(demo: Demo) -> None:
    code = readme_example()
    assert len(code.strip().splitlines()) == 5, code
    env = {**os.environ, "CINEDATA_URL": demo.url}
    env.pop("CINEDATA_API_KEY", None)
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "Toy Story (1995)", run.stdout
    assert any(re.fullmatch(r"\d{6} ratings", line) for line in lines), run.stdout
