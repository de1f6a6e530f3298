"""Federated feature statistics: the global scaling every node applies, computed from sums.

Home-made on purpose (a few sums per feature): each node sends its row count, per-feature
sums, sums of squares, minima and maxima and its class labels, never rows. The server merges
them into one ``GlobalStats``; the model then starts with a ``Scale`` layer holding the global
offset and divisor, so every node trains on the same input scale and the exported model takes
raw features. Row-local recipe steps (``drop_missing``, ``drop_duplicates``) run at each node;
``impute`` (mean), ``normalize`` (standard or minmax) and ``rescale`` use the global figures.

>>> import numpy as np
>>> a = local_stats(np.array([[0.0], [2.0]]), np.array([0, 1]), "tabular")
>>> b = local_stats(np.array([[4.0]]), np.array([1]), "tabular")
>>> g = merge_stats([a, b]); g.n_rows, round(g.mean[0], 3), g.classes
(3, 2.0, [0, 1])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from consortium.data.frame import DataFrameSet
from consortium.errors import InvalidInput

ROW_LOCAL = {"drop_missing", "drop_duplicates"}
GLOBAL = {"impute", "normalize", "rescale"}


def check_process(process: list[Any]) -> None:
    """Refuse recipe steps a federated job cannot apply with global statistics."""
    for step in process:
        name = step.name if hasattr(step, "name") else next(iter(step))
        if name not in ROW_LOCAL | GLOBAL:
            raise InvalidInput(
                f"invalid recipe at process: step {name!r} is not supported in federated jobs",
                hint=f"use only {', '.join(sorted(ROW_LOCAL | GLOBAL))}")


def to_arrays(data: DataFrameSet, target: str | None, process: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Raw float32 features ``(N, F)`` or ``(N, C, H, W)`` and the target, row-local steps applied."""
    if data.kind == "image":
        images, labels = data.image_arrays()
        return images.astype(np.float32), np.asarray(labels)
    name = target or data.target
    frame = data.table()
    if name is None or name not in frame.columns:
        raise InvalidInput(f"target column {name!r} is not in the node's data",
                           hint=f"columns are: {', '.join(map(str, frame.columns[:20]))}")
    names = [s.name if hasattr(s, "name") else next(iter(s)) for s in process]
    if "drop_missing" in names:
        frame = frame.dropna()
    if "drop_duplicates" in names:
        frame = frame.drop_duplicates()
    features = frame.drop(columns=[name])
    non_numeric = [c for c in features.columns if not np.issubdtype(features[c].dtype, np.number)]
    if non_numeric:
        raise InvalidInput(f"non-numeric feature columns in a federated job: {non_numeric[:5]}",
                           hint="encode them at the node before the job")
    return features.to_numpy(dtype=np.float32), frame[name].to_numpy()


def _axes(kind: str, x: np.ndarray) -> tuple[int, ...]:
    return (0, 2, 3) if kind == "image" else (0,)


def local_stats(x: np.ndarray, y: np.ndarray, kind: str) -> dict[str, Any]:
    """Per-feature (tabular) or per-channel (image) sums of one node, NaN-aware."""
    ax = _axes(kind, x)
    finite = np.isfinite(x)
    xz = np.where(finite, x, 0.0).astype(np.float64)
    big = np.where(finite, x, np.inf)
    small = np.where(finite, x, -np.inf)
    labels = np.unique(y[~np.isnan(y.astype(float))]) if y.dtype.kind == "f" else np.unique(y)
    return {
        "kind": kind, "n_rows": int(x.shape[0]), "shape": list(x.shape[1:]),
        "count": finite.sum(axis=ax).astype(np.float64).tolist(),
        "sum": xz.sum(axis=ax).tolist(), "sumsq": (xz ** 2).sum(axis=ax).tolist(),
        "min": big.min(axis=ax).tolist(), "max": small.max(axis=ax).tolist(),
        "classes": [v.item() if hasattr(v, "item") else v for v in labels],
    }


@dataclass
class GlobalStats:
    kind: str
    n_rows: int
    input_shape: list[int]
    mean: list[float]
    std: list[float]
    min: list[float]
    max: list[float]
    classes: list[Any]
    class_names: list[str] = field(default_factory=list)  # one per class, in ``classes`` order

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GlobalStats:
        return cls(**d)


def merge_stats(parts: list[dict[str, Any]]) -> GlobalStats:
    """Combine node statistics; refuse nodes whose feature shapes disagree."""
    if not parts:
        raise InvalidInput("no node statistics to merge")
    shapes = {tuple(p["shape"]) for p in parts}
    if len(shapes) != 1:
        raise InvalidInput(f"the nodes' datasets have different feature shapes: {sorted(shapes)}",
                           hint="every organization must hold the same columns / image size")
    count = np.sum([p["count"] for p in parts], axis=0)
    s = np.sum([p["sum"] for p in parts], axis=0)
    sq = np.sum([p["sumsq"] for p in parts], axis=0)
    safe = np.maximum(count, 1.0)
    mean = s / safe
    var = np.maximum(sq / safe - mean ** 2, 0.0)
    classes = sorted({c for p in parts for c in p["classes"]}, key=lambda v: (str(type(v)), v))
    return GlobalStats(
        kind=parts[0]["kind"], n_rows=int(sum(p["n_rows"] for p in parts)),
        input_shape=list(parts[0]["shape"]), mean=mean.tolist(), std=np.sqrt(var).tolist(),
        min=np.min([p["min"] for p in parts], axis=0).tolist(),
        max=np.max([p["max"] for p in parts], axis=0).tolist(), classes=classes,
        class_names=_names(classes, [p.get("class_names") or [] for p in parts]))


def _names(classes: list[Any], given: list[list[str]]) -> list[str]:
    """Names of ``classes`` from the nodes' own names for their labels, when every node that
    names them agrees (else the labels as text): the rule hub training applies."""
    from consortium.processing.preprocessor import class_names

    named = {tuple(g) for g in given if g}
    return class_names(classes, list(next(iter(named))) if len(named) == 1 else [])


def scaling(stats: GlobalStats, process: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(offset, divisor, fill) such that the model sees ``(x - offset) / divisor``; ``fill``
    replaces missing values (global means) when the recipe imputes."""
    n = len(stats.mean)
    offset, divisor, fill = np.zeros(n), np.ones(n), None
    for step in process:
        name = step.name if hasattr(step, "name") else next(iter(step))
        params = step.params if hasattr(step, "params") else None
        method = getattr(params, "method", None) or "standard"
        if name == "impute":
            fill = np.asarray(stats.mean)
        elif name == "normalize" and method == "minmax":
            offset = np.asarray(stats.min)
            divisor = np.asarray(stats.max) - offset
        elif name == "normalize":
            offset, divisor = np.asarray(stats.mean), np.asarray(stats.std)
        elif name == "rescale":
            factor = getattr(params, "factor", None)
            divisor = np.full(n, factor if factor else max(np.max(np.abs(stats.max)), 1e-12))
    divisor = np.where(np.abs(divisor) < 1e-12, 1.0, divisor)
    return offset.astype(np.float32), divisor.astype(np.float32), \
        None if fill is None else fill.astype(np.float32)
