"""The package type-checks: mypy, with the ``[tool.mypy]`` settings of pyproject.toml, finds no
error in src/consortium.

It runs mypy from the repository root as the developer would (``.venv/bin/mypy``), once per run:
it takes no database fixture, so it is not repeated per backend. Its cache (``.mypy_cache``,
git-ignored) makes a rerun after small edits take seconds instead of half a minute.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MYPY = Path(sys.executable).with_name("mypy")


def test_mypy_finds_no_error_in_the_package() -> None:
    assert MYPY.exists(), f"mypy is not installed next to {sys.executable}: pip install -r requirements.txt"
    run = subprocess.run([str(MYPY)], cwd=ROOT, capture_output=True, text=True, timeout=540, check=False)
    assert run.returncode == 0, f"mypy failed (exit {run.returncode}):\n{run.stdout}{run.stderr}"
