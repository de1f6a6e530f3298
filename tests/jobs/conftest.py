"""A real job worker process for the module, on the test hub's database."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from support import start_worker


@pytest.fixture(scope="module")
def worker(settings: Any) -> Iterator[subprocess.Popen[bytes]]:
    p = start_worker(settings)
    yield p
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
