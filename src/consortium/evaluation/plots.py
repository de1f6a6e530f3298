"""Report plots as PNG bytes (matplotlib, Agg backend): loss curves, confusion matrix, ROC curves,
predicted-vs-true for regression, a tuning search's reward over children.

>>> png = loss_curve([{"epoch": 1, "loss": 1.0, "val_loss": 1.1}, {"epoch": 2, "loss": 0.5, "val_loss": 0.7}])
>>> png[:4]
b'\\x89PNG'
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np


def _figure(w: float = 4.5, h: float = 3.5) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=100)


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def loss_curve(history: list[dict[str, Any]]) -> bytes:
    fig = _figure()
    ax = fig.subplots()
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["loss"] for h in history], marker="o", label="train loss")
    if history and "val_loss" in history[0]:
        ax.plot(epochs, [h["val_loss"] for h in history], marker="o", label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    return _png(fig)


def search_curve(rewards: list[float | None], label: str = "reward") -> bytes:
    """A tuning search: each child's reward (dots; pruned children included) and the best so far."""
    fig = _figure()
    ax = fig.subplots()
    xs = [i + 1 for i, r in enumerate(rewards) if r is not None]
    ys = [float(r) for r in rewards if r is not None]
    best = list(np.maximum.accumulate(ys)) if ys else []
    ax.plot(xs, ys, "o", alpha=0.6, label=f"child's {label}")
    ax.step(xs, best, where="post", label="best so far")
    ax.xaxis.get_major_locator().set_params(integer=True)  # children are whole numbers
    ax.set_xlabel("child")
    ax.set_ylabel(label)
    ax.legend()
    ax.grid(alpha=0.3)
    return _png(fig)


def confusion_matrix(cm: list[list[int]], class_names: list[str]) -> bytes:
    k = len(cm)
    fig = _figure(max(3.5, 0.45 * k + 2), max(3.0, 0.45 * k + 1.5))
    ax = fig.subplots()
    a = np.asarray(cm)
    im = ax.imshow(a, cmap="Blues")
    fig.colorbar(im, ax=ax)
    ax.set_xticks(range(k), class_names, rotation=45 if k > 4 else 0)
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                str(a[i, j]),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if a[i, j] > a.max() / 2 else "black",
            )
    return _png(fig)


def roc(y_true: np.ndarray, proba: np.ndarray, class_names: list[str]) -> bytes:
    """ROC curve (binary) or one-vs-rest curves (multiclass)."""
    from sklearn.metrics import auc, roc_curve

    fig = _figure()
    ax = fig.subplots()
    classes = [1] if proba.shape[1] == 2 else list(range(proba.shape[1]))
    for c in classes:
        positives = y_true == c
        if positives.all() or not positives.any():
            continue
        fpr, tpr, _ = roc_curve(positives, proba[:, c])
        ax.plot(fpr, tpr, label=f"{class_names[c]} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=6)
    return _png(fig)


def predicted_vs_true(y_true: np.ndarray, pred: np.ndarray) -> bytes:
    fig = _figure()
    ax = fig.subplots()
    ax.scatter(y_true, pred, s=8, alpha=0.6)
    lo, hi = float(min(y_true.min(), pred.min())), float(max(y_true.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], linestyle="--", color="grey")
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    return _png(fig)
