"""Checking a recipe against the data it will train on: the target column, the task, the model and
augmentation kinds, the metrics, and the labels (a continuous target cannot be classified).

The hub checks what the stored schema shows at submission (``consortium.jobs.checks.fit_schema``);
this runs in the worker, on the rows themselves, before anything is fitted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from consortium.errors import InvalidInput
from consortium.recipe.schema import CLASSIFICATION_METRICS, REGRESSION_METRICS, CNNSpec, Recipe

if TYPE_CHECKING:
    from consortium.data.frame import DataFrameSet


def _looks_like_classes(y: Any) -> bool:
    import numpy as np

    y = np.asarray(y)
    if y.dtype.kind in "OUSb":
        return True
    if y.dtype.kind in "iu":
        return len(np.unique(y)) <= max(20, int(0.05 * len(y)))
    if y.dtype.kind == "f":
        finite = y[np.isfinite(y)]
        return bool(finite.size) and bool(np.all(finite == np.round(finite))) and len(np.unique(finite)) <= 20
    return False


def validate_against(recipe: Recipe, data: DataFrameSet) -> None:
    """Raise ``InvalidInput`` if the recipe cannot train on this data (target, task, model kind)."""
    import numpy as np

    if data.kind == "tabular":
        frame = data.table()
        target = recipe.data.target or data.target
        if target is None or target not in frame.columns:
            cols = ", ".join(map(str, list(frame.columns)[:20]))
            raise InvalidInput(
                f"invalid recipe at data.target: column {target!r} is not in the data",
                hint=f"columns are: {cols}",
            )
        y = frame[target].to_numpy()
        if isinstance(recipe.model, CNNSpec):
            raise InvalidInput(
                "invalid recipe at model.type: a cnn needs image data, this dataset is tabular",
                hint="use type mlp or logistic",
            )
        for step in recipe.augment:
            if step.name != "gaussian_noise":
                raise InvalidInput(
                    f"invalid recipe at augment: {step.name} needs image data",
                    hint="only gaussian_noise applies to tabular data",
                )
    else:
        y = data.target_values()
        if any(s.name == "one_hot" for s in recipe.process):
            raise InvalidInput("invalid recipe at process: one_hot does not apply to images")
    allowed = REGRESSION_METRICS if recipe.resolved_task == "regression" else CLASSIFICATION_METRICS
    wrong = [m for m in recipe.evaluate.metrics or [] if m not in allowed]
    if wrong:
        raise InvalidInput(
            f"invalid recipe at evaluate.metrics: {wrong} do not apply to {recipe.resolved_task}",
            hint=f"choose from: {', '.join(allowed)}",
        )
    if data.n_rows < 10:
        raise InvalidInput(f"the dataset has {data.n_rows} rows; training needs at least 10")
    loss = recipe.resolved_loss
    y_present = y[~_isnan(y)] if y.dtype.kind == "f" else y
    classes = np.unique(y_present.astype(str)) if y_present.dtype.kind == "O" else np.unique(y_present)
    if loss == "mse" and recipe.task != "regression" and _looks_like_classes(y_present):
        raise InvalidInput(
            f"invalid recipe at train.loss: mse on class labels ({len(classes)} distinct values)",
            hint="set task: regression if the target is a quantity, or use loss cross_entropy",
        )
    if recipe.resolved_task == "classification":
        if y_present.dtype.kind == "f" and not _looks_like_classes(y_present):
            raise InvalidInput(
                "invalid recipe at task: the target is continuous but the task is classification",
                hint="set task: regression and loss: mse",
            )
        if len(classes) < 2:
            raise InvalidInput(f"the target has {len(classes)} class; classification needs at least 2")
        if loss == "binary_cross_entropy" and len(classes) > 2:
            raise InvalidInput(
                f"invalid recipe at train.loss: binary_cross_entropy needs 2 classes, the target has "
                f"{len(classes)}",
                hint="use loss cross_entropy",
            )
    elif y_present.dtype.kind not in "iuf":
        raise InvalidInput("invalid recipe at task: regression needs a numeric target")


def _isnan(y: Any) -> Any:
    import numpy as np

    return np.isnan(y.astype(float))
