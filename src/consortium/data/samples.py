"""Datasets bundled with scikit-learn, as ``DataFrameSet``s, and their partitioning across organizations.

Nothing is downloaded: scikit-learn ships these files.

>>> d = load_sample("digits"); d.kind, d.images.shape
('image', (1797, 1, 8, 8))
>>> parts = partition(load_sample("breast_cancer"), 3, skew="iid", seed=0)
>>> sum(p.n_rows for p in parts)
569
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from consortium.data.frame import DataFrameSet
from consortium.errors import InvalidInput, NotFound

SAMPLES = {
    "digits": "8x8 grey images of hand-written digits, 10 classes (1,797 rows)",
    "breast_cancer": "Wisconsin breast cancer, 30 numeric features, malignant/benign (569 rows)",
    "iris": "iris flowers, 4 features, 3 classes (150 rows)",
    "wine": "wine cultivars, 13 features, 3 classes (178 rows)",
    "diabetes": "diabetes progression, 10 features, regression target (442 rows)",
}


def load_sample(name: str) -> DataFrameSet:
    from sklearn import datasets

    if name == "digits":
        b = datasets.load_digits()
        images = b.images.astype(np.uint8)  # values 0..16
        return DataFrameSet.from_images(images, b.target.astype(np.int64),
                                        [str(c) for c in b.target_names])
    loaders = {"breast_cancer": datasets.load_breast_cancer, "iris": datasets.load_iris,
               "wine": datasets.load_wine, "diabetes": datasets.load_diabetes}
    if name not in loaders:
        raise NotFound(f"no sample dataset {name!r}", hint=f"choose one of: {', '.join(SAMPLES)}")
    b = loaders[name]()
    frame = pd.DataFrame(b.data, columns=[str(c).replace(" ", "_") for c in b.feature_names])
    frame["target"] = b.target
    d = DataFrameSet.from_frame(frame, target="target")
    if hasattr(b, "target_names"):
        d.class_names = [str(c) for c in b.target_names]
    return d


def partition(data: DataFrameSet, n: int, *, skew: Literal["iid", "label"] = "iid",
              seed: int = 0, alpha: float = 0.5) -> list[DataFrameSet]:
    """Split rows across ``n`` organizations: ``iid`` shuffles evenly; ``label`` draws each
    class's share per organization from a Dirichlet(alpha), so each holds a skewed class mix."""
    if n < 1 or n > data.n_rows:
        raise InvalidInput(f"partitions must be between 1 and {data.n_rows}; got {n}")
    rng = np.random.default_rng(seed)
    if skew == "iid":
        order = rng.permutation(data.n_rows)
        return [data.subset(np.sort(chunk)) for chunk in np.array_split(order, n)]
    if skew != "label":
        raise InvalidInput(f"unknown skew {skew!r}", hint="use 'iid' or 'label'")
    y = data.target_values()
    buckets: list[list[int]] = [[] for _ in range(n)]
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        shares = rng.dirichlet([alpha] * n)
        cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(int)
        for b, chunk in enumerate(np.split(idx, cuts)):
            buckets[b].extend(chunk.tolist())
    # every organization keeps at least a few rows so it can train at all
    for b in range(n):
        if len(buckets[b]) < 2:
            donor = max(range(n), key=lambda k: len(buckets[k]))
            buckets[b].extend(buckets[donor][-2:])
            del buckets[donor][-2:]
    return [data.subset(np.sort(np.array(b, dtype=int))) for b in buckets]
