"""The fitted processing pipeline: learned on the training split, replayed for eval and serving.

Two paths share the same steps, so the same rows give the same features:

- ``transform(data)`` -> ``(X float32, y)`` for training and evaluation (row filters apply);
- ``transform_inputs(raw)`` -> ``X float32`` for serving: rows as lists (in ``input_columns``
  order) or dicts by column name, or pixel arrays. numpy only: this module never imports torch.

``state()`` is plain JSON (means, scales, categories, feature order, classes) and
``Preprocessor.from_state(state)`` rebuilds the same transform.

>>> from consortium.data.samples import load_sample
>>> data = load_sample("iris")
>>> p = Preprocessor.fit(data, [{"normalize": {"method": "standard"}}], task="classification")
>>> X, y = p.transform(data); X.shape, X.dtype.name, p.class_names
((150, 4), 'float32', ['setosa', 'versicolor', 'virginica'])
>>> q = Preprocessor.from_state(p.state())
>>> bool((q.transform_inputs([data.frame.iloc[0, :4].tolist()]) == X[:1]).all())
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from consortium.data.frame import DataFrameSet
from consortium.errors import InvalidInput
from consortium.processing.kinds import make_step
from consortium.processing.steps import Step
from consortium.processing.table import Table, image_batch, is_missing, table_from_images, table_from_rows

STATE_VERSION = 1


def _steps_from_recipe(process: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """Accept recipe ``ProcessStep`` objects or plain ``{name: params}`` mappings."""
    out = []
    for s in process:
        if isinstance(s, dict):
            if len(s) != 1:
                raise InvalidInput(f"a processing step is a one-key mapping; got {s}")
            name, params = next(iter(s.items()))
            out.append((name, dict(params or {})))
        else:
            out.append((s.name, s.params.model_dump(mode="json")))
    return out


class Preprocessor:
    def __init__(self, state: dict[str, Any]) -> None:
        self._state = state
        self.steps: list[Step] = [make_step(s["step"], s["params"], s["fitted"]) for s in state["steps"]]
        self.kind: str = state["kind"]
        self.input_columns: list[str] = state["input_columns"]
        self.numeric_columns: list[str] = state["numeric_columns"]
        self.categorical_columns: list[str] = state["categorical_columns"]
        self.image_shape: tuple[int, int, int] | None = (
            tuple(state["image_shape"]) if state["image_shape"] else None
        )
        self.feature_names: list[str] = state["feature_names"]
        self.target: str | None = state["target"]
        self.task: str = state["task"]
        self.classes: list[Any] = state["classes"]
        self.class_names: list[str] = state["class_names"]
        self._serving_steps = [s for s in self.steps if not s.drops_rows]
        self._class_index = {c: i for i, c in enumerate(self.classes)}
        self._affine = self._fuse() if self.kind == "image" else None

    # ------------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls,
        train: DataFrameSet,
        process: list[Any],
        *,
        task: str = "classification",
        target: str | None = None,
        classes: list[Any] | None = None,
    ) -> Preprocessor:
        """Fit every step on the training split, in order; ``classes`` fixes the label order."""
        steps = [make_step(n, p) for n, p in _steps_from_recipe(process)]
        if train.kind == "image":
            shape = list(train.image_arrays()[0].shape[1:])
            target = None
            numeric: list[str] = []
            categorical: list[str] = []
            inputs: list[str] = []
        else:
            frame = train.table()
            target = target or train.target
            if target is None or target not in frame.columns:
                raise InvalidInput(f"target column {target!r} is not in the data")
            shape = []
            inputs = [str(c) for c in frame.columns if c != target]
            numeric = [c for c in inputs if frame[c].dtype.kind in "biuf"]
            categorical = [c for c in inputs if c not in numeric]
        y_raw = _target(train, target)
        if task == "classification":
            if classes is None:
                present = y_raw[~is_missing(y_raw)] if y_raw.dtype.kind in "fO" else y_raw
                classes = _sorted_unique(present)
            classes = [_plain(c) for c in classes]
            names = class_names(classes, train.class_names)
        else:
            classes, names = [], []
        proto: dict[str, Any] = {
            "version": STATE_VERSION,
            "kind": train.kind,
            "input_columns": inputs,
            "numeric_columns": numeric,
            "categorical_columns": categorical,
            "image_shape": shape or None,
            "steps": [],
            "feature_names": [],
            "target": target,
            "task": task,
            "classes": classes,
            "class_names": names,
        }
        tmp = cls(proto)
        t = tmp._table(train)
        for step in steps:
            step.fit(t)
            t = step.apply(t, training=True)
        if t.cat:
            col = next(iter(t.cat))
            raise InvalidInput(
                f"column {col!r} is not numeric",
                hint="add a one_hot step to the recipe's process, or drop the column",
            )
        proto["steps"] = [s.state() for s in steps]
        proto["feature_names"] = list(t.names) if not t.image else []
        return cls(proto)

    def state(self) -> dict[str, Any]:
        return self._state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Preprocessor:
        if state.get("version") != STATE_VERSION:
            raise InvalidInput(f"unsupported preprocessing state version {state.get('version')!r}")
        return cls(state)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Model input shape without the batch: (F,) tabular, (C, H, W) images."""
        return tuple(self.image_shape) if self.image_shape else (len(self.feature_names),)

    # ------------------------------------------------------------------------ training / eval
    def transform(self, data: DataFrameSet) -> tuple[np.ndarray, np.ndarray]:
        """Features and encoded targets (class index int64, or float32 for regression)."""
        t = self._table(data)
        t = t.take(~is_missing(t.y)) if t.y is not None and t.y.dtype.kind in "fO" else t
        for step in self.steps:
            t = step.apply(t, training=True)
        X = self._finish(t, serving=False)
        if t.y is None:  # (_table always reads one; a step that lost it is a bug)
            raise InvalidInput("the processed data has no target column left to encode")
        return X, self.encode_targets(t.y)

    def encode_targets(self, y: np.ndarray) -> np.ndarray:
        if self.task != "classification":
            return y.astype(np.float32)
        try:
            return np.array([self._class_index[_plain(v)] for v in y], dtype=np.int64)
        except KeyError as e:
            raise InvalidInput(
                f"label {e.args[0]!r} was not among the training classes {self.classes}"
            ) from None

    # ------------------------------------------------------------------------ serving
    def transform_inputs(self, raw: Any) -> np.ndarray:
        """Raw rows or pixel arrays -> model input (float32). Missing values are imputed by the
        recipe's impute step, or refused with an error that names the row and column."""
        decoded = self.decode_inputs(raw)
        if decoded is not None:
            return self.finish_inputs(decoded)
        t = table_from_rows(raw, input_columns=self.input_columns, numeric=self.numeric_columns,
                            categorical=self.categorical_columns)
        return self._serve(t)

    @property
    def batchable(self) -> bool:
        """True when ``decode_inputs`` takes every well-formed input: images, and tables without
        categorical columns. Serving then decodes each request alone and finishes whole batches."""
        return self.kind == "image" or not self.categorical_columns

    def decode_inputs(self, raw: Any) -> np.ndarray | None:
        """The per-request half of ``transform_inputs``: raw rows or pixels -> a numeric array of
        one layout, (N, C, H, W) float32 images or (N, columns) float64 rows, checked for shape;
        None for rows with categorical columns, which only ``transform_inputs`` takes. Arrays
        decoded from several requests can be concatenated and finished as one batch."""
        if self.kind == "image":
            return image_batch(raw, self._image_shape())
        if self.categorical_columns:
            return None
        return table_from_rows(raw, input_columns=self.input_columns, numeric=self.numeric_columns,
                               categorical=[]).num

    def finish_inputs(self, decoded: np.ndarray) -> np.ndarray:
        """The per-batch half of ``transform_inputs``: decoded arrays (see ``decode_inputs``) ->
        model input. Row numbers in errors count from the first row of ``decoded``."""
        if self.kind == "image":
            if self._affine is not None:  # one multiply-add instead of a pass per step
                X: np.ndarray = decoded * self._affine[0] + self._affine[1]
                if not np.isnan(X).any():
                    return X
            return self._serve(Table(num=decoded, names=[], cat={}, image=True))
        return self._serve(Table(num=decoded, names=list(self.numeric_columns), cat={}, image=False))

    def _serve(self, t: Table) -> np.ndarray:
        for step in self._serving_steps:
            t = step.apply(t, training=False)
        return self._finish(t, serving=True)

    # ------------------------------------------------------------------------ internals
    def _image_shape(self) -> tuple[int, int, int]:
        if self.image_shape is None:
            raise InvalidInput("this image preprocessing has no image_shape",
                               hint="fit it again on image data (train the model again)")
        return self.image_shape

    def _fuse(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(a, b)`` of shape (C, H, W) with serving features = ``a * pixels + b``, when every
        serving step is elementwise affine (rescale, normalize); None otherwise. Equal to the
        step-by-step result to float32 rounding (~1e-7)."""
        if not all(s.affine for s in self._serving_steps):
            return None
        shape = self._image_shape()

        def run(value: float) -> np.ndarray:
            t = table_from_images(np.full((1, *shape), value, np.float32), shape)
            for step in self._serving_steps:
                t = step.apply(t, training=False)
            return np.asarray(t.num[0], dtype=np.float64)

        b = run(0.0)
        return (run(1.0) - b).astype(np.float32), b.astype(np.float32)

    def _table(self, data: DataFrameSet) -> Table:
        if data.kind != self.kind:
            raise InvalidInput(f"this preprocessing was fitted on {self.kind} data, not {data.kind}")
        y = _target(data, self.target)
        if self.kind == "image":
            images = data.image_arrays()[0]
            if self.image_shape and tuple(images.shape[1:]) != tuple(self.image_shape):
                raise InvalidInput(f"images are {images.shape[1:]}, expected {tuple(self.image_shape)}")
            return Table(num=images.astype(np.float32), names=[], cat={}, image=True, y=y)
        frame = data.table()
        missing = [c for c in self.input_columns if c not in frame.columns]
        if missing:
            raise InvalidInput(f"column(s) {missing[:5]} are missing from the data")
        try:
            num = frame[self.numeric_columns].to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInput(f"numeric columns {self.numeric_columns[:10]} hold non-numbers") from None
        cat = {c: frame[c].to_numpy(dtype=object) for c in self.categorical_columns}
        return Table(
            num=num.reshape(len(frame), len(self.numeric_columns)),
            names=list(self.numeric_columns),
            cat=cat,
            image=False,
            y=y,
        )

    def _finish(self, t: Table, *, serving: bool) -> np.ndarray:
        X = np.ascontiguousarray(t.num, dtype=np.float32)
        nan = np.isnan(X)
        if nan.any():
            row, col = (int(v) for v in np.argwhere(nan)[0][:2])
            where = f"column {t.names[col]!r}" if not t.image else f"channel {col}"
            raise InvalidInput(
                f"row {row} has a missing value in {where}",
                hint="send a value" if serving else "add an impute or drop_missing step to the recipe",
            )
        return X


def _target(data: DataFrameSet, target: str | None) -> np.ndarray:
    if data.kind == "image":
        return np.asarray(data.image_arrays()[1])
    frame = data.table()
    return frame[target].to_numpy() if target is not None else np.zeros(len(frame))


def _plain(v: Any) -> Any:
    """numpy scalar -> JSON-friendly python value (ints stay ints)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _sorted_unique(values: np.ndarray) -> list[Any]:
    plain = {_plain(v) for v in values}
    try:
        return sorted(plain)
    except TypeError:
        return sorted(plain, key=str)


def class_names(classes: list[Any], given: list[str]) -> list[str]:
    """Names of ``classes``: ``given[c]`` for integer labels 0..k-1 when the data names them
    (label i is ``given[i]``, as in scikit-learn's datasets), else the labels as text."""
    if given and all(isinstance(c, int) and 0 <= c < len(given) for c in classes):
        return [str(given[c]) for c in classes]
    return [str(c) for c in classes]
