"""k-fold cross-validation: split the rows into folds, have each fold's model fitted and scored on
the rows it did not see, and summarize the metrics (mean and standard deviation over the folds).

Fitting is the caller's: ``fit_predict`` trains a model on one fold's rows and predicts the held
rows (``consortium.training.pipeline`` passes one that processes, builds and trains as a job
does), so this module imports neither ``training`` nor ``federation``.

>>> import numpy as np
>>> x = np.arange(20.0); y = (x >= 10).astype(int)
>>> def threshold(fold, fit_rows, held_rows):  # class 1 above the midpoint of the fitted class means
...     cut = (x[fit_rows][y[fit_rows] == 0].mean() + x[fit_rows][y[fit_rows] == 1].mean()) / 2
...     p1 = (x[held_rows] > cut).astype(float)
...     return FoldPrediction(y[held_rows], np.stack([1 - p1, p1], axis=1), ["low", "high"])
>>> cv = cross_validate(y, 4, threshold, task="classification", metrics=["accuracy"])
>>> cv["folds"], len(cv["per_fold"]), cv["summary"]["accuracy"]
(4, 4, {'mean': 1.0, 'std': 0.0})
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from consortium.evaluation.metrics import compute_metrics, summarize_folds
from consortium.processing.splits import kfold


@dataclass(frozen=True)
class FoldPrediction:
    """What one fold's model says about the rows it was not fitted on."""

    y_true: np.ndarray  # (N,) encoded targets of the held rows
    scores: np.ndarray  # (N, K) class probabilities, or (N,) predicted values for regression
    class_names: list[str]


# fit_predict(fold index, row positions to fit on, row positions to predict) -> the held rows' prediction
FitPredict = Callable[[int, np.ndarray, np.ndarray], FoldPrediction]


def strat_key(y: np.ndarray) -> np.ndarray:
    """Targets as the splitters can stratify them (object labels as strings)."""
    return y.astype(str) if y.dtype.kind == "O" else y


def cross_validate(
    y: np.ndarray,
    k: int,
    fit_predict: FitPredict,
    *,
    task: str,
    seed: int = 0,
    metrics: Sequence[str] | None = None,
    on_fold: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Score ``fit_predict`` over ``k`` folds of the rows whose targets are ``y`` (stratified for
    classification, seeded by ``seed``). ``on_fold`` gets ``{"fold", "folds", "metrics"}`` after each
    fold. Returns ``{"folds": k, "per_fold": [metrics, ...], "summary": {metric: {mean, std}}}``."""
    folds = kfold(strat_key(y), k, seed=seed, stratify=task == "classification")
    per_fold = []
    for i, (fit_rows, held_rows) in enumerate(folds):
        pred = fit_predict(i, fit_rows, held_rows)
        m = compute_metrics(task, pred.y_true, pred.scores, pred.class_names, metrics)
        per_fold.append(m)
        if on_fold is not None:
            on_fold({"fold": i + 1, "folds": k, "metrics": m})
    return {"folds": k, "per_fold": per_fold, "summary": summarize_folds(per_fold)}
