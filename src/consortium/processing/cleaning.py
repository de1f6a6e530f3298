"""Cleaning steps: drop_missing, drop_duplicates (training only), impute, clip_outliers.

>>> import numpy as np
>>> from consortium.processing.table import Table
>>> t = Table(num=np.array([[1.0], [np.nan], [3.0]]), names=["a"], cat={}, image=False)
>>> s = Impute({"strategy": "mean"}); s.fit(t); s.apply(t, training=False).num.ravel().tolist()
[1.0, 2.0, 3.0]
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from consortium.processing.steps import Step, broadcast, channel_view
from consortium.processing.table import Table, is_missing


class DropMissing(Step):
    """Drop rows with a missing value (in ``columns`` or anywhere). Training/eval only."""

    name = "drop_missing"
    drops_rows = True

    def apply(self, t: Table, *, training: bool) -> Table:
        if not training:
            return t
        if t.image:
            bad = np.isnan(t.num.reshape(t.n, -1)).any(axis=1)
        else:
            idx = self._columns(t)
            bad = np.isnan(t.num[:, idx]).any(axis=1) if idx else np.zeros(t.n, dtype=bool)
            wanted = self.params.get("columns")
            for name, col in t.cat.items():
                if wanted is None or name in wanted:
                    bad |= is_missing(col)
        return t.take(~bad)


class DropDuplicates(Step):
    """Drop repeated rows (features only), keeping the first. Training/eval only."""

    name = "drop_duplicates"
    drops_rows = True

    def apply(self, t: Table, *, training: bool) -> Table:
        if not training or t.n == 0:
            return t
        flat = t.num.reshape(t.n, -1)
        keys = [flat[i].tobytes() + b"|".join(str(c[i]).encode() for c in t.cat.values()) for i in range(t.n)]
        seen: set[bytes] = set()
        keep = np.zeros(t.n, dtype=bool)
        for i, k in enumerate(keys):
            if k not in seen:
                seen.add(k)
                keep[i] = True
        return t.take(keep)


def _mode(values: list[Any]) -> Any:
    return Counter(values).most_common(1)[0][0] if values else None


class Impute(Step):
    """Fill missing values: numeric by mean/median/most_frequent/constant, categorical by mode."""

    name = "impute"

    def fit(self, t: Table) -> None:
        strategy = self.params.get("strategy", "mean")
        const = self.params.get("fill_value")
        if t.image:
            fill = (
                np.nan_to_num(np.nanmean(channel_view(t.num), axis=0))
                if strategy != "constant"
                else np.full(t.num.shape[1], float(const or 0.0))
            )
            self.fitted = {"num_index": list(range(t.num.shape[1])), "num_fill": fill.tolist(), "cat": {}}
            self._load()
            return
        idx = self._columns(t)
        fills: list[float] = []
        for i in idx:
            col = t.num[:, i]
            col = col[~np.isnan(col)]
            if strategy == "constant":
                v = float(const) if const is not None else 0.0
            elif col.size == 0:
                v = 0.0
            elif strategy == "mean":
                v = float(col.mean())
            elif strategy == "median":
                v = float(np.median(col))
            else:
                vals, counts = np.unique(col, return_counts=True)
                v = float(vals[np.argmax(counts)])
            fills.append(v)
        wanted = self.params.get("columns")
        cat = {}
        for name, col in t.cat.items():
            if wanted is None or name in wanted:
                present = [v for v, m in zip(col, is_missing(col), strict=False) if not m]
                cat[name] = str(const) if strategy == "constant" and const is not None else _mode(present)
        self.fitted = {
            "num_index": idx,
            "num_names": [t.names[i] for i in idx],
            "num_fill": fills,
            "cat": cat,
        }
        self._load()

    def _load(self) -> None:
        self._idx = np.asarray(self.fitted.get("num_index", []), dtype=np.int64)
        self._fill = np.asarray(self.fitted.get("num_fill", []), dtype=np.float64)

    def apply(self, t: Table, *, training: bool) -> Table:
        if t.image:
            nan = np.isnan(t.num)
            if nan.any():
                t.num = np.where(nan, broadcast(t, self._fill.astype(t.num.dtype)), t.num)
            return t
        if self._idx.size:
            block = t.num[:, self._idx]
            nan = np.isnan(block)
            if nan.any():
                t.num = t.num.copy()
                t.num[:, self._idx] = np.where(nan, self._fill, block)
        for name, value in self.fitted.get("cat", {}).items():
            if name in t.cat:
                col = t.cat[name]
                miss = is_missing(col)
                if miss.any():
                    col = col.copy()
                    col[miss] = value
                    t.cat = {**t.cat, name: col}
        return t


class ClipOutliers(Step):
    """Clip numeric values to training quantiles (``lower``/``upper``) or to mean +- z*std."""

    name = "clip_outliers"

    def fit(self, t: Table) -> None:
        x = channel_view(t.num) if t.image else t.num
        if self.params.get("method", "quantile") == "z":
            z = float(self.params.get("z", 3.0))
            mean, std = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
            lo, hi = mean - z * std, mean + z * std
        else:
            lo = np.nanquantile(x, float(self.params.get("lower", 0.01)), axis=0)
            hi = np.nanquantile(x, float(self.params.get("upper", 0.99)), axis=0)
        self.fitted = {
            "low": np.nan_to_num(lo, nan=-np.inf).tolist(),
            "high": np.nan_to_num(hi, nan=np.inf).tolist(),
        }
        self._load()

    def _load(self) -> None:
        self._lo = np.asarray(self.fitted.get("low", []), dtype=np.float64)
        self._hi = np.asarray(self.fitted.get("high", []), dtype=np.float64)

    def apply(self, t: Table, *, training: bool) -> Table:
        dtype = t.num.dtype
        t.num = np.clip(t.num, broadcast(t, self._lo), broadcast(t, self._hi)).astype(dtype, copy=False)
        return t
