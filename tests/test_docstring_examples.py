"""The examples in the package's docstrings (``>>>``) run and give what they show, so that the
documentation a reader meets in the code stays true."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

import consortium


def _modules_with_examples() -> list[str]:
    out = []
    for m in pkgutil.walk_packages(consortium.__path__, "consortium."):
        if ".migrations" in m.name:  # Alembic's scripts run only inside Alembic
            continue
        spec = importlib.util.find_spec(m.name)
        if spec and spec.origin and spec.origin.endswith(".py") and ">>> " in Path(spec.origin).read_text():
            out.append(m.name)
    return sorted(out)


MODULES = _modules_with_examples()


def test_examples_are_found() -> None:
    assert len(MODULES) > 20, MODULES  # guards against the walk silently finding nothing


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (output above)"
