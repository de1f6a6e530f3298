"""Schema and statistics of a table, computed batch by batch so memory does not grow with the file.

The profiler sees Arrow record batches. CSV columns arrive as strings and get their type inferred
per batch and merged over the file (integer < float, anything else mixed -> string); Parquet
columns arrive typed. It records per column: type, missing count, numeric min/max/mean; and for
the target column its class balance (up to ``MAX_CLASSES`` distinct values, else numeric stats).

Nothing that identifies a row is kept: no sample values except the target's class labels.

>>> import pyarrow as pa
>>> p = TableProfiler(["x", "y"], target="y", typed=False)
>>> p.add(pa.record_batch([pa.array(["1", None, "3"]), pa.array(["a", "b", "a"])], names=["x", "y"]))
>>> s = p.result(); s["columns"][0]["type"], s["columns"][0]["missing"], s["classes"]
('integer', 1, {'a': 2, 'b': 1})
>>> s["columns"][0]["distinct"], s["columns"][0]["histogram"]
(2, {'start': 1.0, 'width': 1.0, 'counts': [1, 0, 1]})
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from consortium.errors import InvalidInput

MAX_CLASSES = 100
MAX_DISTINCT = 1000  # distinct values counted exactly up to this many per column (bounded memory)
BINS = 32  # at most this many histogram bins per column
NUMERIC = ("integer", "float")


def _pool() -> pa.MemoryPool:
    """jemalloc where the wheel has it: it hands freed pages back to the system sooner than the
    default mimalloc pool, which kept about 20 MB more resident while a large CSV streamed through."""
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # a build without jemalloc (e.g. Windows wheels)
        return pa.default_memory_pool()


POOL = _pool()


@dataclass
class _Column:
    name: str
    type: str | None = None  # None while every value seen was missing
    missing: int = 0
    count: int = 0
    min: float | None = None
    max: float | None = None
    total: float = 0.0
    values: set[Any] | None = field(default_factory=set)  # None once more than MAX_DISTINCT
    width: float = 0.0  # histogram bin width (a power of two); 0 before the first number
    bins: Counter[int] = field(default_factory=Counter)  # bin k counts values in [k*width, (k+1)*width)

    def add_distinct(self, arr: pa.Array) -> None:
        if self.values is None:
            return
        unique = pc.unique(arr, memory_pool=POOL)
        if len(unique) > MAX_DISTINCT + 1:  # more than the cap (one may be the null): none of them kept
            self.values = None
            return
        self.values.update(v for v in unique.to_pylist() if v is not None)
        if len(self.values) > MAX_DISTINCT:
            self.values = None

    def add_histogram(self, arr: pa.Array, lo: float, hi: float) -> None:
        x = pc.cast(pc.drop_null(arr, memory_pool=POOL), pa.float64(), memory_pool=POOL).to_numpy(zero_copy_only=False)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            x = x[np.isfinite(x)]
            if not len(x):
                return
            lo, hi = float(x.min()), float(x.max())
        if not self.width:
            span = hi - lo
            self.width = 2.0 ** math.ceil(math.log2(span / BINS)) if span > 0 else 1.0
            if self.type == "integer":
                self.width = max(self.width, 1.0)
        lo_k, hi_k = math.floor(lo / self.width), math.floor(hi / self.width)  # the batch's min and max bins
        while (max(hi_k, *self.bins) - min(lo_k, *self.bins) if self.bins else hi_k - lo_k) >= BINS:
            self.width *= 2  # coarser: neighbouring bins merge
            lo_k, hi_k = math.floor(lo / self.width), math.floor(hi / self.width)
            merged: Counter[int] = Counter()
            for k, n in self.bins.items():
                merged[k // 2] += n
            self.bins = merged
        keys = np.floor(x / self.width).astype(np.int64)
        counts = np.bincount(keys - lo_k, minlength=hi_k - lo_k + 1)
        for i in np.flatnonzero(counts).tolist():
            self.bins[lo_k + i] += int(counts[i])

    def merge_type(self, t: str) -> None:
        if self.type is None or self.type == t:
            self.type = t
        elif {self.type, t} == {"integer", "float"}:
            self.type = "float"
        else:
            self.type = "string"

    def add_numbers(self, arr: pa.Array) -> None:
        n = len(arr) - arr.null_count
        if n == 0:
            return
        mm = pc.min_max(arr, memory_pool=POOL).as_py()
        lo, hi = float(mm["min"]), float(mm["max"])
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)
        self.total += float(pc.sum(pc.cast(arr, pa.float64(), memory_pool=POOL),
                                   memory_pool=POOL).as_py() or 0.0)
        self.count += n
        self.add_histogram(arr, lo, hi)

    def view(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type or "empty", "missing": self.missing}
        if self.type in NUMERIC and self.count:
            out.update(min=self.min, max=self.max, mean=self.total / self.count)
            if self.bins:
                first, last = min(self.bins), max(self.bins)
                out["histogram"] = {"start": first * self.width, "width": self.width,
                                    "counts": [self.bins.get(k, 0) for k in range(first, last + 1)]}
        if self.values is None:
            out["distinct_over"] = MAX_DISTINCT
        else:
            out["distinct"] = len(self.values)
        return out


def _arrow_kind(t: pa.DataType) -> str:
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        return "string"
    if pa.types.is_null(t):
        return "empty"
    return str(t)


def _infer(arr: pa.Array, current: str | None) -> tuple[str, pa.Array | None]:
    """The narrowest type every non-missing string in ``arr`` parses as, and the parsed array."""
    if len(arr) == arr.null_count:
        return "empty", None
    tries = [("integer", pa.int64()), ("float", pa.float64()), ("boolean", pa.bool_())]
    if current == "string":
        return "string", None
    if current == "float":
        tries = tries[1:2]
    elif current == "boolean":
        tries = tries[2:]
    for name, t in tries:
        try:
            return name, pc.cast(arr, t, memory_pool=POOL)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return "string", None


@dataclass
class TableProfiler:
    names: list[str]
    target: str | None = None
    typed: bool = True  # False: columns are strings to infer (CSV)
    rows: int = 0
    columns: list[_Column] = field(default_factory=list)
    classes: Counter[str] | None = None

    def __post_init__(self) -> None:
        check_columns(self.names, self.target)
        self.columns = [_Column(n) for n in self.names]
        self.classes = Counter() if self.target is not None else None

    def add(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        for col, arr in zip(self.columns, batch.columns, strict=True):
            col.missing += arr.null_count
            if self.typed:
                kind, parsed = _arrow_kind(arr.type), arr
            else:
                kind, parsed = _infer(arr, col.type)
            if kind != "empty":
                col.merge_type(kind)
            if col.type in NUMERIC and kind in NUMERIC and parsed is not None:
                col.add_numbers(parsed)
            col.add_distinct(parsed if parsed is not None else arr)
            if col.name == self.target and self.classes is not None:
                counts = pc.value_counts(pc.drop_null(arr, memory_pool=POOL), memory_pool=POOL)
                for item in counts.to_pylist():
                    self.classes[_label(item["values"])] += int(item["counts"])
                if len(self.classes) > MAX_CLASSES:
                    self.classes = None  # a continuous target: keep only its numeric statistics

    def result(self) -> dict[str, Any]:
        if self.rows == 0:
            raise InvalidInput("the file has a header but no rows", hint="upload a file with data rows")
        out: dict[str, Any] = {"kind": "tabular", "rows": self.rows,
                               "columns": [c.view() for c in self.columns], "target": self.target}
        if self.target is not None:
            out["classes"] = dict(sorted(self.classes.items())) if self.classes is not None else None
            tcol = next(c for c in self.columns if c.name == self.target)
            out["target_missing"] = tcol.missing
        return out


def _label(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def check_columns(names: list[str], target: str | None) -> None:
    """Column names must be present and unique, and the target must be one of them."""
    seen: set[str] = set()
    for i, n in enumerate(names, start=1):
        if not n.strip():
            raise InvalidInput(f"column {i} of the header has no name", hint="give every column a name")
        if n in seen:
            raise InvalidInput(f"column {n!r} appears twice in the header", hint="rename one of them")
        seen.add(n)
    if target is not None and target not in seen:
        shown = ", ".join(names[:30]) + (", ..." if len(names) > 30 else "")
        raise InvalidInput(f"target column {target!r} is not in the data",
                           hint=f"columns are: {shown}")


def arrow_type(kind: str) -> pa.DataType:
    """The Arrow type a profiled column type loads as."""
    return {"integer": pa.int64(), "float": pa.float64(), "boolean": pa.bool_(),
            "empty": pa.float64()}.get(kind, pa.string())
