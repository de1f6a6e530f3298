"""Evaluation metrics (scikit-learn underneath), confusion matrices and cross-validation summaries.

>>> import numpy as np
>>> m = compute_metrics("classification", np.array([0, 1, 1, 0]),
...                     np.array([[.9, .1], [.2, .8], [.6, .4], [.7, .3]]), ["a", "b"])
>>> m["accuracy"], m["roc_auc"]
(0.75, 1.0)
>>> summarize_folds([{"accuracy": 0.9}, {"accuracy": 1.0}])["accuracy"]
{'mean': 0.95, 'std': 0.05}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from consortium.errors import InvalidInput

CLASSIFICATION_METRICS = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mse", "mae", "r2")


def compute_metrics(
    task: str,
    y_true: np.ndarray,
    proba_or_pred: np.ndarray,
    class_names: list[str] | None = None,
    metrics: Sequence[str] | None = None,
) -> dict[str, float | None]:
    """Metrics for a task. Classification takes probabilities (N, K) or predicted class indices
    (N,); ROC-AUC and log loss need probabilities and are None when they cannot be computed
    (e.g. a class absent from ``y_true``). Regression takes predictions (N,)."""
    from sklearn import metrics as skm

    y_true = np.asarray(y_true)
    out = np.asarray(proba_or_pred)
    if len(y_true) != len(out):
        raise InvalidInput(f"{len(y_true)} targets but {len(out)} predictions")
    if len(y_true) == 0:
        raise InvalidInput("no rows to evaluate")
    res: dict[str, float | None] = {}
    if task == "regression":
        pred = out.reshape(len(out), -1)[:, 0].astype(np.float64)
        yt = y_true.astype(np.float64)
        res = {
            "mse": float(skm.mean_squared_error(yt, pred)),
            "mae": float(skm.mean_absolute_error(yt, pred)),
            "r2": float(skm.r2_score(yt, pred)) if len(yt) > 1 else None,
        }
    else:
        k = (
            len(class_names)
            if class_names
            else (out.shape[1] if out.ndim == 2 else int(max(y_true.max(), out.max())) + 1)
        )
        labels = list(range(k))
        proba = out.astype(np.float64) if out.ndim == 2 else None
        pred = proba.argmax(1) if proba is not None else out.astype(np.int64)
        res["accuracy"] = float(skm.accuracy_score(y_true, pred))
        p, r, f, _ = skm.precision_recall_fscore_support(
            y_true, pred, labels=labels, average="macro", zero_division=0
        )
        res.update(precision_macro=float(p), recall_macro=float(r), f1_macro=float(f))
        res["roc_auc"] = res["log_loss"] = None
        if proba is not None and len(np.unique(y_true)) == k and k >= 2:
            proba = np.clip(proba, 1e-12, 1.0)
            proba = proba / proba.sum(1, keepdims=True)
            res["roc_auc"] = float(
                skm.roc_auc_score(y_true, proba[:, 1])
                if k == 2
                else skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=labels)
            )
        if proba is not None:
            res["log_loss"] = float(skm.log_loss(y_true, proba, labels=labels))
    if metrics:
        unknown = [m for m in metrics if m not in res]
        if unknown:
            raise InvalidInput(
                f"metric(s) {unknown} do not apply to {task}", hint=f"choose from: {', '.join(res)}"
            )
        res = {m: res[m] for m in metrics}
    return {k: (None if v is not None and not math.isfinite(v) else v) for k, v in res.items()}


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> list[list[int]]:
    """Rows are true classes, columns predicted classes."""
    from sklearn.metrics import confusion_matrix

    rows: list[list[int]] = confusion_matrix(y_true, y_pred, labels=list(range(n_classes))).astype(int).tolist()
    return rows


def summarize_folds(folds: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Mean and (population) standard deviation of each metric across cross-validation folds."""
    names = (
        [k for k in folds[0] if isinstance(folds[0][k], (int, float)) or folds[0][k] is None] if folds else []
    )
    out: dict[str, dict[str, float | None]] = {}
    for name in names:
        vals = np.array([f[name] for f in folds if f.get(name) is not None], dtype=np.float64)
        out[name] = (
            {"mean": round(float(vals.mean()), 10), "std": round(float(vals.std()), 10)}
            if vals.size
            else {"mean": None, "std": None}
        )
    return out
