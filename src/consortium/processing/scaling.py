"""Scaling steps: normalize (standard or min-max, per column or per image channel) and rescale.

>>> import numpy as np
>>> from consortium.processing.table import Table
>>> t = Table(num=np.array([[[[0.0, 8.0]]], [[[16.0, 4.0]]]], dtype=np.float32), names=[], cat={}, image=True)
>>> s = Rescale({}); s.fit(t); s.apply(t, training=False).num.max()
np.float32(1.0)
"""

from __future__ import annotations

import numpy as np

from consortium.processing.steps import Step, broadcast, channel_view
from consortium.processing.table import Table


class Normalize(Step):
    """``standard``: (x - mean) / std; ``minmax``: (x - min) / (max - min). Constant columns keep scale 1."""

    name = "normalize"
    affine = True

    def fit(self, t: Table) -> None:
        x = channel_view(t.num) if t.image else t.num
        x = x.astype(np.float64)
        if self.params.get("method", "standard") == "minmax":
            shift, span = np.nanmin(x, axis=0), np.nanmax(x, axis=0) - np.nanmin(x, axis=0)
        else:
            shift, span = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
        shift = np.nan_to_num(shift)
        span = np.where(np.isfinite(span) & (span > 1e-12), span, 1.0)
        self.fitted = {"shift": shift.tolist(), "scale": span.tolist()}
        self._load()

    def _load(self) -> None:
        self._shift = np.asarray(self.fitted.get("shift", []), dtype=np.float64)
        self._inv = 1.0 / np.asarray(self.fitted.get("scale", []), dtype=np.float64)

    def apply(self, t: Table, *, training: bool) -> Table:
        dtype = t.num.dtype
        shift, inv = broadcast(t, self._shift.astype(dtype)), broadcast(t, self._inv.astype(dtype))
        t.num = (t.num - shift) * inv
        return t


class Rescale(Step):
    """Multiply by ``factor``; without one, divide by the training maximum of |x| (pixels to [0, 1]);
    per column for tables, one factor for images."""

    name = "rescale"
    affine = True

    def fit(self, t: Table) -> None:
        factor = self.params.get("factor")
        if factor is not None:
            f = np.array([float(factor)])
        elif t.image:
            m = float(np.nanmax(np.abs(t.num))) if t.num.size else 1.0
            f = np.array([1.0 / m if m > 0 else 1.0])
        else:
            peak = np.nanmax(np.abs(t.num), axis=0) if t.n else np.ones(len(t.names))  # per column
            f = np.where(np.isfinite(peak) & (peak > 0), 1.0 / np.where(peak > 0, peak, 1.0), 1.0)
        self.fitted = {"factor": f.tolist()}
        self._load()

    def _load(self) -> None:
        self._f = np.asarray(self.fitted.get("factor", [1.0]), dtype=np.float64)

    def apply(self, t: Table, *, training: bool) -> Table:
        f = self._f.astype(t.num.dtype)
        t.num = t.num * (f[0] if f.size == 1 else f)
        return t
