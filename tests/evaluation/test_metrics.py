"""Metrics against hand-computed values; plots are real PNGs."""

from __future__ import annotations

import numpy as np
import pytest

from consortium.errors import InvalidInput
from consortium.evaluation import compute_metrics, confusion, plots, summarize_folds


def test_binary_metrics_by_hand() -> None:
    y = np.array([0, 0, 1, 1, 1])
    proba1 = np.array([0.1, 0.6, 0.7, 0.8, 0.4])
    m = compute_metrics("classification", y, np.stack([1 - proba1, proba1], 1), ["neg", "pos"])
    assert m["accuracy"] == pytest.approx(3 / 5)
    # positives ranked above negatives in 5 of 6 pairs
    assert m["roc_auc"] == pytest.approx(5 / 6)
    # class pos: precision 2/3 recall 2/3; class neg: precision 1/2 recall 1/2
    assert m["precision_macro"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    expected_ll = -np.mean(np.log([0.9, 0.4, 0.7, 0.8, 0.4]))
    assert m["log_loss"] == pytest.approx(expected_ll)


def test_multiclass_ovr_auc_and_missing_class() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 20)
    proba = rng.dirichlet([1, 1, 1], 60)
    proba[np.arange(60), y] += 1.0
    proba /= proba.sum(1, keepdims=True)
    m = compute_metrics("classification", y, proba, ["a", "b", "c"])
    assert m["accuracy"] == 1.0 and m["roc_auc"] == 1.0
    partial = compute_metrics("classification", y[:40], proba[:40], ["a", "b", "c"])
    assert partial["roc_auc"] is None and partial["accuracy"] == 1.0
    labels_only = compute_metrics("classification", y, proba.argmax(1), ["a", "b", "c"])
    assert labels_only["roc_auc"] is None and labels_only["f1_macro"] == 1.0


def test_regression_and_selection() -> None:
    m = compute_metrics("regression", np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]))
    assert m == pytest.approx({"mse": 4 / 3, "mae": 2 / 3, "r2": 1 - 4 / 2})
    assert compute_metrics("regression", np.array([1.0, 2.0]), np.array([1.0, 2.0]), metrics=["mae"]) == {
        "mae": 0.0
    }
    with pytest.raises(InvalidInput, match="do not apply"):
        compute_metrics("regression", np.array([1.0, 2.0]), np.array([1.0, 2.0]), metrics=["accuracy"])


def test_confusion_and_fold_summary() -> None:
    assert confusion(np.array([0, 1, 1, 2]), np.array([0, 2, 1, 2]), 3) == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    s = summarize_folds([{"accuracy": 0.8, "roc_auc": None}, {"accuracy": 0.9, "roc_auc": 0.95}])
    assert s["accuracy"] == {"mean": 0.85, "std": 0.05} and s["roc_auc"] == {"mean": 0.95, "std": 0.0}


def test_plots_are_png() -> None:
    y = np.array([0, 1, 2, 1])
    proba = np.eye(3)[[0, 1, 2, 2]] * 0.9 + 0.1 / 3
    for png in (
        plots.loss_curve([{"epoch": 1, "loss": 1.0}]),
        plots.confusion_matrix([[1, 0], [2, 3]], ["a", "b"]),
        plots.roc(y, proba, ["a", "b", "c"]),
        plots.predicted_vs_true(np.arange(4.0), np.arange(4.0)),
    ):
        assert png.startswith(b"\x89PNG") and len(png) > 1000
