"""Class probabilities from a classifier's raw outputs: the one formula training, serving and
federation share.

A classifier with K >= 2 outputs answers their softmax; one with a single output (binary
cross-entropy: one logit) answers two columns ``[1 - p, p]``, ``p`` being its sigmoid, so every
classifier gives one probability per class. The formula is written once, over the three
operations it needs (``Ops``): ``NUMPY`` runs it on arrays (``training.trainer.predict_proba``,
which federated evaluation uses too), and the ONNX export head runs it on torch tensors, so that it
is traced into the exported graph (``training.export.WithHead``). Serving applies the same
two-column rule to a model whose single output already is a probability (``binary_pair``).

No torch here: serving imports this module, and it must not load torch.

>>> import numpy as np
>>> probabilities(np.array([[0.0, 0.0], [0.0, np.log(3.0)]]))
array([[0.5 , 0.5 ],
       [0.25, 0.75]])
>>> probabilities(np.array([[0.0]]))
array([[0.5, 0.5]])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, Self, TypeVar

import numpy as np


class Array(Protocol):
    """What the formula asks of an array besides ``Ops``: its shape, and ``1.0 - a``."""

    @property
    def shape(self) -> Any: ...

    def __rsub__(self, other: float, /) -> Self: ...


A = TypeVar("A", bound=Array)  # numpy.ndarray or torch.Tensor, rows on axis 0, classes on axis 1


@dataclass(frozen=True)
class Ops(Generic[A]):
    """The operations the formula needs, for one array library."""

    sigmoid: Callable[[A], A]
    softmax: Callable[[A], A]  # over the classes (axis 1)
    concat: Callable[[list[A]], A]  # side by side (axis 1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(x.dtype)  # float64: no overflow to 0/0


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    p: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return p


def _concat(xs: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(xs, axis=1)


NUMPY: Ops[Any] = Ops(_sigmoid, _softmax, _concat)


def binary_pair(p: A, ops: Ops[A]) -> A:
    """(N, 1) probabilities of the positive class -> (N, 2) ``[1 - p, p]``."""
    return ops.concat([1.0 - p, p])


def probabilities(logits: A, ops: Ops[A] = NUMPY) -> A:
    """(N, K) logits -> (N, max(K, 2)) class probabilities: softmax, or the sigmoid pair for one logit."""
    if logits.shape[1] == 1:
        return binary_pair(ops.sigmoid(logits), ops)
    return ops.softmax(logits)
