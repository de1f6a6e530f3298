"""Per-round progress records of a federated job, and the sinks that receive them.

The ServerApp emits one JSON-serialisable record per event; a sink is any callable taking
that dict. ``JsonlSink`` appends each record as a line to a file that the hub can tail
(``read_progress`` reads it back). Record kinds:

- ``{"kind": "start", "run": ..., "strategy": ..., "rounds": ..., "nodes": [...]}``
- ``{"kind": "round", "round": r, "nodes": {org: {"loss", "accuracy", "num_examples",
  "epsilon"?, "eval_loss", "eval_accuracy"}}, "missing": [org...], "train_loss": ...,
  "global": {"loss", "accuracy", ...} | None, "seconds": ...}``
- ``{"kind": "done", "rounds": r, "seconds": ...}`` or ``{"kind": "error", "message": ...}``

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "progress.jsonl")
>>> sink = JsonlSink(path); sink({"kind": "round", "round": 1})
>>> read_progress(path)
[{'kind': 'round', 'round': 1}]
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

ProgressSink = Callable[[dict[str, Any]], None]


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf become None, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class JsonlSink:
    """Append records to a JSONL file, one flushed line each (safe to tail while running)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, record: dict[str, Any]) -> None:
        line = json.dumps(_clean(record), sort_keys=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


class MultiSink:
    """Forward each record to several sinks (e.g. a JSONL file and a hub callback)."""

    def __init__(self, *sinks: ProgressSink | None) -> None:
        self.sinks = [s for s in sinks if s is not None]

    def __call__(self, record: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink(_clean(record))


def read_progress(path: str | os.PathLike[str], *, start: int = 0) -> list[dict[str, Any]]:
    """Records in the file from line ``start`` on; an unfinished last line is left for later."""
    p = Path(path)
    if not p.exists():
        return []
    out: list[dict[str, Any]] = []
    with p.open("r", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i < start or not line.endswith("\n"):
                continue
            out.append(json.loads(line))
    return out
