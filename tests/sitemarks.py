"""Markers of a site's rows, and a search for them in a hub's files (a unique module name: tests/
has no packages). A row that reached the hub in any usual form (CSV or JSON text, a float64 array
or a row-major buffer) leaves one of these byte strings in the file that holds it."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np


def row_needles(frame: Any, target: str, rows: int = 4, seed: int = 0) -> list[bytes]:
    """Text and binary forms of three consecutive feature values of ``rows`` random rows."""
    feats = frame.drop(columns=[target]).to_numpy(dtype=np.float64)
    out: list[bytes] = []
    for i in np.random.default_rng(seed).choice(len(feats), size=min(rows, len(feats)), replace=False):
        vals = [float(v) for v in feats[i, 1:4]]
        out += [",".join(map(repr, vals)).encode(), ", ".join(map(repr, vals)).encode(),
                struct.pack("<3d", *vals)]
    return out


def plant(frame: Any, column: str, seed: int, rows: int = 3) -> tuple[Any, list[bytes]]:
    """``frame`` with a random 12-digit value (inside the column's range, never its min or max)
    in ``rows`` rows of ``column``; returns it and the value's text and float64 forms."""
    rng = np.random.default_rng(seed)
    lo, hi = float(frame[column].min()), float(frame[column].max())
    value = float(f"{lo + (hi - lo) * (0.3 + 0.4 * rng.random()):.12g}")
    frame = frame.copy()
    frame.loc[frame.index[1:1 + rows], column] = value
    return frame, [repr(value).encode(), struct.pack("<d", value)]


def found_in(root: Path, needles: list[bytes]) -> list[str]:
    """``path: needle`` for every file under ``root`` (or ``root`` itself, a file) holding one of
    ``needles`` (binary-safe)."""
    hits = []
    files = [Path(root)] if Path(root).is_file() else Path(root).rglob("*")
    for f in sorted(p for p in files if p.is_file() and not p.is_symlink()):
        data = f.read_bytes()
        hits += [f"{f}: {n!r}" for n in needles if n in data]
    return hits
