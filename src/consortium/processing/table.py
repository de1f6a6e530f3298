"""The working form that processing steps transform: a numeric block plus categorical columns.

Both paths build a ``Table`` and run the same steps on it, which is what keeps training features
and serving features identical: training from a ``DataFrameSet``, serving from raw rows or pixel
arrays. numpy only (no pandas, no torch) once built, so serving stays fast.

>>> import numpy as np
>>> t = Table(num=np.zeros((2, 3)), names=["a", "b", "c"], cat={}, image=False)
>>> t.take(np.array([True, False])).num.shape
(1, 3)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from consortium.errors import InvalidInput


@dataclass
class Table:
    num: np.ndarray  # tabular: (N, F) float64; image: (N, C, H, W) float32
    names: list[str]  # tabular: names of the numeric columns, in order; image: []
    cat: dict[str, np.ndarray]  # tabular: categorical columns as object arrays (N,)
    image: bool
    y: np.ndarray | None = None  # targets, kept aligned when rows are dropped
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.num.shape[0])

    def take(self, keep: np.ndarray) -> Table:
        """Rows where ``keep`` is true (or at these positions)."""
        return Table(
            num=self.num[keep],
            names=self.names,
            cat={k: v[keep] for k, v in self.cat.items()},
            image=self.image,
            y=None if self.y is None else self.y[keep],
            extra=self.extra,
        )


def is_missing(values: np.ndarray) -> np.ndarray:
    """Missing mask for a numeric or object array (NaN, None, empty string)."""
    if values.dtype.kind == "f":
        nan: np.ndarray = np.isnan(values)
        return nan
    if values.dtype.kind == "O":
        return np.array(
            [v is None or v == "" or (isinstance(v, float) and v != v) for v in values], dtype=bool
        )
    return np.zeros(values.shape, dtype=bool)


def image_batch(raw: Any, shape: tuple[int, int, int]) -> np.ndarray:
    """Pixel arrays -> (N, C, H, W) float32: accepts one (H, W) / (C, H, W) image, a batch of
    them, (H, W, C) channels-last, or flat rows of C*H*W values."""
    c, h, w = shape
    x = np.asarray(raw, dtype=np.float32)
    if x.ndim == 2 and x.shape == (h, w) and c == 1:
        return x[None, None]
    if x.ndim == 2 and x.shape[1] == c * h * w:
        return x.reshape(-1, c, h, w)
    if x.ndim == 1 and x.shape[0] == c * h * w:
        return x.reshape(1, c, h, w)
    if x.ndim == 3:
        if x.shape == (c, h, w):
            return x[None]
        if x.shape == (h, w, c):
            return np.ascontiguousarray(np.transpose(x, (2, 0, 1)))[None]
        if c == 1 and x.shape[1:] == (h, w):
            return x[:, None]
    if x.ndim == 4:
        if x.shape[1:] == (c, h, w):
            return x
        if x.shape[1:] == (h, w, c):
            return np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))
    raise InvalidInput(
        f"images must have shape ({h}, {w}), ({c}, {h}, {w}), a batch of those, or flat "
        f"rows of {c * h * w} values; got {x.shape}"
    )


def table_from_rows(
    raw: Any, *, input_columns: list[str], numeric: list[str], categorical: list[str]
) -> Table:
    """Serving rows -> ``Table``: lists of values in ``input_columns`` order, or dicts by name."""
    if isinstance(raw, np.ndarray):
        rows: Any = raw if raw.ndim == 2 else raw.reshape(1, -1)
    elif isinstance(raw, dict):
        rows = [raw]
    else:
        rows = list(raw)
        if rows and not isinstance(rows[0], (list, tuple, dict, np.ndarray)):
            rows = [rows]  # a single flat row
    if len(rows) == 0:
        raise InvalidInput("no rows to predict", hint="send at least one row")
    n_cols = len(input_columns)
    if isinstance(rows[0], dict):
        known = set(input_columns)
        for i, r in enumerate(rows):
            unknown = [k for k in r if k not in known]
            if unknown:
                raise InvalidInput(
                    f"row {i} has unknown column(s) {unknown[:5]}",
                    hint=f"the model takes: {', '.join(input_columns[:30])}",
                )
        rows = [[r.get(c) for c in input_columns] for r in rows]
    for i, r in enumerate(rows[:1] if not categorical else rows):
        if len(r) != n_cols:
            raise InvalidInput(
                f"row {i} has {len(r)} values; the model takes {n_cols}",
                hint=f"in this order: {', '.join(input_columns[:30])}",
            )
    if not categorical:
        try:
            num = np.array(rows, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInput(
                "rows must hold numbers (or null for missing)",
                hint=f"columns: {', '.join(input_columns[:30])}",
            ) from None
        if num.ndim != 2 or num.shape[1] != n_cols:
            raise InvalidInput(f"every row must have {n_cols} values; got shape {num.shape}")
        return Table(num=num, names=list(numeric), cat={}, image=False)
    obj = np.empty((len(rows), n_cols), dtype=object)
    obj[:] = rows
    pos = {c: i for i, c in enumerate(input_columns)}
    num_cols = obj[:, [pos[c] for c in numeric]]
    try:
        num = np.array(num_cols.tolist(), dtype=np.float64).reshape(len(rows), len(numeric))
    except (TypeError, ValueError):
        raise InvalidInput(f"numeric columns {numeric[:10]} must hold numbers (or null)") from None
    cat = {c: obj[:, pos[c]] for c in categorical}
    return Table(num=num, names=list(numeric), cat=cat, image=False)


def table_from_images(raw: Any, shape: tuple[int, int, int]) -> Table:
    return Table(num=image_batch(raw, shape), names=[], cat={}, image=True)
