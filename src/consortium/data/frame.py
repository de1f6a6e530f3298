"""The in-memory form of one dataset version, handed from the data stage to the later stages.

Tabular data is a pandas DataFrame that still contains the target column; image data is an
array of shape (N, C, H, W) plus a label vector. Processing, training, evaluation and the
federated client all take a ``DataFrameSet`` and nothing else, so they never touch storage.

>>> import numpy as np
>>> d = DataFrameSet.from_images(np.zeros((4, 8, 8), dtype=np.uint8), np.array([0, 1, 0, 1]))
>>> d.kind, d.images.shape, d.n_rows
('image', (4, 1, 8, 8), 4)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from consortium.errors import InvalidInput

LABEL = "label"


@dataclass
class DataFrameSet:
    kind: Literal["tabular", "image"]
    frame: pd.DataFrame | None = None  # tabular: features and the target column
    images: np.ndarray | None = None  # image: (N, C, H, W), uint8 or float32
    labels: np.ndarray | None = None  # image: (N,)
    target: str | None = None  # tabular: name of the target column, if known
    class_names: list[str] = field(default_factory=list)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, target: str | None = None) -> DataFrameSet:
        if target is not None and target not in frame.columns:
            raise InvalidInput(
                f"target column {target!r} is not in the data",
                hint=f"columns are: {', '.join(map(str, frame.columns[:20]))}",
            )
        return cls(kind="tabular", frame=frame, target=target)

    @classmethod
    def from_images(
        cls, images: np.ndarray, labels: np.ndarray, class_names: list[str] | None = None
    ) -> DataFrameSet:
        images = np.asarray(images)
        if images.ndim == 3:  # (N, H, W) -> (N, 1, H, W)
            images = images[:, None, :, :]
        elif images.ndim == 4 and images.shape[-1] in (1, 3, 4) and images.shape[1] not in (1, 3, 4):
            images = np.transpose(images, (0, 3, 1, 2))  # NHWC -> NCHW
        if images.ndim != 4:
            raise InvalidInput(
                f"images must have shape (N, H, W), (N, H, W, C) or (N, C, H, W); got {images.shape}"
            )
        labels = np.asarray(labels)
        if labels.shape[0] != images.shape[0]:
            raise InvalidInput(f"{images.shape[0]} images but {labels.shape[0]} labels")
        return cls(kind="image", images=images, labels=labels, target=LABEL,
                   class_names=list(class_names or []))

    def table(self) -> pd.DataFrame:
        """The tabular frame (features and the target column); InvalidInput on image data."""
        if self.frame is None:
            raise InvalidInput(f"this step takes tabular data, not {self.kind} data",
                               hint="pick a tabular dataset (CSV or Parquet) for it")
        return self.frame

    def image_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The images ``(N, C, H, W)`` and their labels ``(N,)``; InvalidInput on tabular data."""
        if self.images is None or self.labels is None:
            raise InvalidInput(f"this step takes image data, not {self.kind} data",
                               hint="pick an image dataset for it")
        return self.images, self.labels

    @property
    def n_rows(self) -> int:
        if self.kind == "image":
            return int(self.image_arrays()[0].shape[0])
        return len(self.table())

    def subset(self, index: np.ndarray) -> DataFrameSet:
        """Rows by position (used for splits and federated partitions)."""
        if self.kind == "image":
            images, labels = self.image_arrays()
            return DataFrameSet(kind="image", images=images[index], labels=labels[index],
                                target=self.target, class_names=self.class_names)
        return DataFrameSet(kind="tabular", frame=self.table().iloc[index].reset_index(drop=True),
                            target=self.target, class_names=self.class_names)

    def target_values(self, target: str | None = None) -> np.ndarray:
        if self.kind == "image":
            return self.image_arrays()[1]
        name = target or self.target
        frame = self.table()
        if name is None or name not in frame.columns:
            raise InvalidInput(f"target column {name!r} is not in the data",
                               hint=f"columns are: {', '.join(map(str, frame.columns[:20]))}")
        values: np.ndarray = frame[name].to_numpy()  # pandas ships no types: Any
        return values
