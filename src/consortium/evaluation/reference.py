"""Reference statistics of the preprocessed training inputs, stored with a model so monitoring can
compare live traffic against them (drift). Tabular: a histogram per feature (bin edges + counts,
plus mean/std); images: pixel mean/std, per-channel means and a histogram of pixel values.

>>> import numpy as np
>>> s = reference_stats(np.arange(20, dtype="float32").reshape(10, 2), ["a", "b"], bins=5)
>>> s["kind"], s["features"][0]["name"], sum(s["features"][0]["counts"])
('tabular', 'a', 10)
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _hist(values: np.ndarray, bins: int) -> dict[str, Any]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"bin_edges": [], "counts": []}
    lo, hi = float(values.min()), float(values.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    return {"bin_edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def reference_stats(
    X: np.ndarray, feature_names: list[str] | None = None, *, bins: int = 20
) -> dict[str, Any]:
    """Histograms of model inputs ``X`` ((N, F) tabular or (N, C, H, W) images)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 2:
        names = feature_names or [f"f{i}" for i in range(X.shape[1])]
        feats = [
            {
                "name": names[i],
                "mean": float(X[:, i].mean()),
                "std": float(X[:, i].std()),
                **_hist(X[:, i], bins),
            }
            for i in range(X.shape[1])
        ]
        return {"kind": "tabular", "n": int(X.shape[0]), "bins": bins, "features": feats}
    per_channel = np.moveaxis(X, 1, -1).reshape(-1, X.shape[1])
    return {
        "kind": "image",
        "n": int(X.shape[0]),
        "shape": list(X.shape[1:]),
        "bins": bins,
        "pixel_mean": float(X.mean()),
        "pixel_std": float(X.std()),
        "channel_mean": per_channel.mean(0).tolist(),
        "channel_std": per_channel.std(0).tolist(),
        "pixel_histogram": _hist(X.ravel(), bins),
    }
