"""The contract every processing step follows (the steps by name: ``consortium.processing.kinds``).

A step is fitted once on the training split (``fit``), then replayed on any table (``apply``).
Its fitted parameters are plain JSON (``fitted``), so a preprocessor can be stored with a model
and reloaded at serving time without torch or pandas.

>>> import numpy as np
>>> from consortium.processing.scaling import Normalize
>>> from consortium.processing.table import Table
>>> s = Normalize({"method": "standard"})
>>> t = Table(num=np.array([[1.0], [3.0]]), names=["a"], cat={}, image=False)
>>> s.fit(t); s.apply(t, training=False).num.ravel().tolist()
[-1.0, 1.0]
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from consortium.errors import InvalidInput
from consortium.processing.table import Table


class Step:
    """Base of the processing steps: ``fit`` on train, ``apply`` anywhere, JSON ``fitted`` state."""

    name: ClassVar[str] = ""
    drops_rows: ClassVar[bool] = False  # row filters run in training/eval only, never at serving
    # Elementwise x -> a * x + b at serving (per column or channel): a chain of such steps is
    # fused into one multiply-add for images (``Preprocessor.transform_inputs``).
    affine: ClassVar[bool] = False

    def __init__(self, params: dict[str, Any] | None = None, fitted: dict[str, Any] | None = None) -> None:
        self.params: dict[str, Any] = dict(params or {})
        self.fitted: dict[str, Any] = dict(fitted or {})
        if fitted is not None:
            self._load()

    def fit(self, t: Table) -> None:
        """Learn parameters from the training table (default: nothing to learn)."""
        self._load()

    def apply(self, t: Table, *, training: bool) -> Table:
        raise NotImplementedError

    def _load(self) -> None:
        """Turn ``fitted`` lists into numpy arrays once, so ``apply`` stays cheap."""

    def state(self) -> dict[str, Any]:
        return {"step": self.name, "params": self.params, "fitted": self.fitted}

    # helpers ------------------------------------------------------------------------------
    def _columns(self, t: Table) -> list[int]:
        """Positions of the numeric columns this step applies to (``params.columns`` or all)."""
        wanted = self.params.get("columns")
        if wanted is None:
            return list(range(len(t.names)))
        missing = [c for c in wanted if c not in t.names and c not in t.cat]
        if missing:
            raise InvalidInput(
                f"{self.name}: column(s) {missing} are not in the data",
                hint=f"columns are: {', '.join((t.names + list(t.cat))[:20])}",
            )
        return [t.names.index(c) for c in wanted if c in t.names]


def channel_view(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N*H*W, C): per-channel statistics for images, like columns for tables."""
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def broadcast(t: Table, values: np.ndarray) -> np.ndarray:
    """Per-column values shaped to broadcast against ``t.num`` (per channel for images)."""
    return values.reshape(1, -1, 1, 1) if t.image else values
