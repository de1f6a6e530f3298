"""Job kinds and the functions that run them, imported lazily (the hub never imports torch)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from consortium.errors import InvalidInput

KINDS: dict[str, str] = {
    "train": "consortium.jobs.train:run",
    "federated": "consortium.jobs.federated:run",
}


def handler(kind: str) -> Callable[[Any], dict[str, Any]]:
    if kind not in KINDS:
        raise InvalidInput(f"unknown job kind {kind!r}", hint=f"use one of: {', '.join(KINDS)}")
    module, func = KINDS[kind].split(":")
    run: Callable[[Any], dict[str, Any]] = getattr(importlib.import_module(module), func)
    return run
