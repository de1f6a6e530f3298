"""Seeded, reproducible splits: stratified train/val/test and k-fold (scikit-learn underneath).

Classification targets are stratified (every split keeps the class mix); a class with too few
rows to stratify falls back to a plain shuffled split. The same seed gives the same indices.

>>> import numpy as np
>>> y = np.array([0, 1] * 50)
>>> tr, va, te = train_val_test_split(y, test_size=0.2, val_size=0.1, seed=0)
>>> len(tr), len(va), len(te), float(y[te].mean())
(70, 10, 20, 0.5)
>>> [len(test) for _, test in kfold(y, 5, seed=0)]
[20, 20, 20, 20, 20]
"""

from __future__ import annotations

import numpy as np

from consortium.errors import InvalidInput


def _can_stratify(y: np.ndarray | None, n_parts: int) -> bool:
    if y is None:
        return False
    _, counts = np.unique(y.astype(str) if y.dtype.kind == "O" else y, return_counts=True)
    return len(counts) > 1 and counts.min() >= n_parts


def _split(idx: np.ndarray, y: np.ndarray | None, size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    n_test = max(1, int(round(size * len(idx))))
    strat = y[idx] if y is not None and _can_stratify(y[idx], 2) else None
    if strat is not None and n_test < len(np.unique(strat)):
        strat = None  # fewer test rows than classes: cannot keep every class
    a, b = train_test_split(idx, test_size=n_test, random_state=seed, shuffle=True, stratify=strat)
    return np.sort(a), np.sort(b)


def train_val_test_split(
    y: np.ndarray, *, test_size: float = 0.2, val_size: float = 0.1, seed: int = 0, stratify: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row positions for train, validation and test; ``val_size`` is a share of all rows (0: none)."""
    n = len(y)
    if n < 3:
        raise InvalidInput(f"{n} rows cannot be split into train and test")
    yy = np.asarray(y) if stratify else None
    idx = np.arange(n)
    rest, test = _split(idx, yy, test_size, seed)
    if val_size <= 0:
        return rest, np.array([], dtype=np.int64), test
    train, val = _split(rest, yy, val_size / (1.0 - test_size), seed + 1)
    return train, val, test


def kfold(
    y: np.ndarray, k: int, *, seed: int = 0, stratify: bool = True
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train, test) position pairs covering every row once as test."""
    from sklearn.model_selection import KFold, StratifiedKFold

    n = len(y)
    if k < 2 or k > n:
        raise InvalidInput(f"cv_folds must be between 2 and the number of rows ({n}); got {k}")
    yy = np.asarray(y)
    if stratify and _can_stratify(yy, k):
        skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        return [(a, b) for a, b in skf.split(np.zeros(n), yy.astype(str) if yy.dtype.kind == "O" else yy)]
    kf = KFold(n_splits=k, shuffle=True, random_state=seed)
    return [(a, b) for a, b in kf.split(np.zeros(n))]
