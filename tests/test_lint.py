"""The code stays ruff-clean: ``ruff check`` with the ``[tool.ruff]`` settings of pyproject.toml
finds nothing in src/, tests/ or bench/.

The rule set (pycodestyle, pyflakes, isort, bugbear, pyupgrade, bandit, blind except, RUF006 and
RUF100) and the few per-file exceptions, each with its reason, live in pyproject.toml; a finding
that is right by design carries a ``# noqa: CODE - reason`` on its line. ruff takes well under a
second, so this runs once per test run, without a database fixture.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).with_name("ruff")


def test_ruff_finds_nothing_in_src_tests_and_bench() -> None:
    assert RUFF.exists(), f"ruff is not installed next to {sys.executable}: pip install -r requirements.txt"
    run = subprocess.run([str(RUFF), "check", "--no-cache", "src", "tests", "bench"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, (f"ruff found problems (exit {run.returncode}); `.venv/bin/ruff check --fix` "
                                 f"fixes the safe ones:\n{run.stdout}{run.stderr}")
