"""Tiny ONNX models for the registry and deployment tests (the demo seed's softmax model; milliseconds)."""

from __future__ import annotations

import numpy as np

from consortium.demo import models as demo_models
from consortium.demo.models import softmax_onnx


def tiny_classifier(seed: int = 0, features: int = 4, classes: int = 3) -> bytes:
    rng = np.random.default_rng(seed)
    return softmax_onnx(rng.normal(size=(features, classes)), rng.normal(size=classes))


def constant_classifier(label: int, features: int = 4, classes: int = 3) -> bytes:
    """Always predicts ``label`` with probability ~1 (tells versions apart in switch tests)."""
    b = np.full(classes, -20.0)
    b[label] = 20.0
    return softmax_onnx(np.zeros((features, classes)), b)


def fit_logistic(X: np.ndarray, y: np.ndarray, classes: int, steps: int = 300, lr: float = 0.5) -> tuple[
        np.ndarray, np.ndarray]:
    """Multinomial logistic regression by gradient descent (the demo seed's, fewer steps)."""
    return demo_models.fit_logistic(X, y, classes, steps, lr)
