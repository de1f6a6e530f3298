"""One training job, end to end: split -> fit processing on train -> (tune) -> train -> evaluate on
test -> cross-validate -> export ONNX. Pure library code: takes a recipe and a ``DataFrameSet``,
returns a ``TrainingResult``; the job runner stores it.

>>> from consortium.data.samples import load_sample
>>> recipe = {"name": "iris", "data": {"target": "target"}, "process": [{"normalize": {}}],
...           "model": {"type": "logistic"}, "train": {"lr": 0.1, "epochs": 20}}
>>> res = run_training(recipe, load_sample("iris"))
>>> res.task, res.class_names, res.metrics["accuracy"] > 0.8, res.onnx[:2] != b""
('classification', ['setosa', 'versicolor', 'virginica'], True, True)
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from consortium.data.frame import DataFrameSet
from consortium.errors import InvalidInput
from consortium.evaluation import plots
from consortium.evaluation.metrics import compute_metrics, confusion, summarize_folds
from consortium.evaluation.reference import reference_stats
from consortium.processing.preprocessor import Preprocessor
from consortium.processing.splits import kfold, train_val_test_split
from consortium.recipe import Recipe, parse_recipe, validate_against

Progress = Callable[[dict[str, Any]], None]


@dataclass
class TrainingResult:
    """Everything a training run produced. All fields but the bytes are JSON-serializable;
    ``summary()`` gives them without the bytes."""

    onnx: bytes
    torch_state: bytes  # torch.save(state_dict)
    model_spec: dict[str, Any]
    input_shape: tuple[int, ...]
    n_outputs: int
    signature: dict[str, Any]
    preprocessing: dict[str, Any]  # Preprocessor.state()
    task: str
    class_names: list[str]
    metrics: dict[str, Any]  # on the test split
    history: list[dict[str, Any]]
    recipe: dict[str, Any]  # the recipe actually trained (best tuned values applied)
    reference_stats: dict[str, Any]
    confusion_matrix: list[list[int]] | None = None
    cv: dict[str, Any] | None = None  # {"folds": k, "per_fold": [...], "summary": {metric: {mean, std}}}
    tuning: dict[str, Any] | None = None
    plots: dict[str, bytes] = field(default_factory=dict)
    split_sizes: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    onnx_max_abs_diff: float | None = None

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("onnx", "torch_state", "plots"):
            d.pop(k)
        d["input_shape"] = list(self.input_shape)
        d["plots"] = sorted(self.plots)
        return d

    def load_model(self) -> Any:
        """The trained torch module (eval mode), rebuilt from spec + state."""
        return load_torch_model(self.model_spec, self.torch_state, self.input_shape, self.n_outputs)

    def preprocessor(self) -> Preprocessor:
        return Preprocessor.from_state(self.preprocessing)


def load_torch_model(
    spec: dict[str, Any], state: bytes | dict[str, Any], input_shape: tuple[int, ...], n_outputs: int
) -> Any:
    import torch

    from consortium.training.models import build_model

    model = build_model(spec, tuple(input_shape), n_outputs)
    sd = torch.load(io.BytesIO(state), weights_only=True) if isinstance(state, (bytes, bytearray)) else state
    model.load_state_dict(sd)
    return model.eval()


def _emit(cb: Progress | None, stage: str, **info: Any) -> None:
    if cb is not None:
        cb({"stage": stage, **info})


def _check_stop(should_stop: Callable[[], bool] | None) -> None:
    from consortium.training.trainer import TrainingCancelled

    if should_stop is not None and should_stop():
        raise TrainingCancelled("training was cancelled")


def run_training(
    recipe: Recipe | dict[str, Any] | str,
    data: DataFrameSet,
    *,
    on_progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainingResult:
    """Run the recipe on ``data``. ``on_progress`` receives dicts with a ``stage`` (prepare, tune,
    train, evaluate, cross_validate, export, done) and stage details (e.g. per-epoch metrics);
    ``should_stop`` is polled and, when true, ends the run with ``TrainingCancelled``."""
    import torch

    from consortium.processing.augment import build_augmenter
    from consortium.training.export import export_onnx, signature
    from consortium.training.models import build_model, n_outputs_for
    from consortium.training.trainer import predict_proba, seed_everything, train_epochs
    from consortium.training.tuning import tune

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    recipe = parse_recipe(recipe)
    validate_against(recipe, data)
    task, loss = recipe.resolved_task, recipe.resolved_loss
    target = recipe.data.target or data.target
    y_all = data.target_values(target)
    classes = _classes(y_all) if task == "classification" else None
    tr, va, te = train_val_test_split(
        _strat_key(y_all),
        test_size=recipe.data.test_size,
        val_size=recipe.data.val_size,
        seed=recipe.data.seed,
        stratify=task == "classification",
    )
    train, val, test = data.subset(tr), data.subset(va), data.subset(te)
    prep = Preprocessor.fit(train, recipe.process, task=task, target=target, classes=classes)
    X_tr, y_tr = prep.transform(train)
    X_va, y_va = prep.transform(val) if len(va) else (None, None)
    X_te, y_te = prep.transform(test)
    if len(X_te) == 0:
        raise InvalidInput(
            "no test rows left after processing", hint="raise data.test_size or relax drop_missing"
        )
    input_shape = prep.output_shape
    n_classes = len(prep.classes)
    n_out = n_outputs_for(task, loss, n_classes)
    augment = build_augmenter(recipe.augment)
    timings["prepare_s"] = time.perf_counter() - t0
    _emit(
        on_progress,
        "prepare",
        rows={"train": len(X_tr), "val": len(X_va) if X_va is not None else 0, "test": len(X_te)},
        input_shape=list(input_shape),
        n_outputs=n_out,
    )
    _check_stop(should_stop)

    tuning = None
    if recipe.tune is not None:
        t = time.perf_counter()
        if X_va is None:
            raise InvalidInput("invalid recipe at data.val_size: tuning needs a validation split")
        recipe, tuning = tune(
            recipe,
            X_tr,
            y_tr,
            X_va,
            y_va,
            task=task,
            input_shape=input_shape,
            n_outputs=n_out,
            augment=augment,
            should_stop=should_stop,
            on_trial=lambda row: _emit(on_progress, "tune", trial=row, trials=recipe.tune.trials),
        )  # type: ignore[union-attr]
        timings["tune_s"] = time.perf_counter() - t
        _check_stop(should_stop)

    t = time.perf_counter()
    seed_everything(recipe.train.seed)
    model = build_model(recipe.model, input_shape, n_out)
    epochs = recipe.train.epochs
    history = train_epochs(
        model,
        X_tr,
        y_tr,
        recipe.train,
        task=task,
        epochs=epochs,
        seed=recipe.train.seed,
        X_val=X_va,
        y_val=y_va,
        augment=augment,
        should_stop=should_stop,
        on_epoch=lambda row: _emit(on_progress, "train", epochs=epochs, **row),
    )
    timings["train_s"] = time.perf_counter() - t
    _check_stop(should_stop)

    t = time.perf_counter()
    out = predict_proba(model, X_te, task=task)
    metrics = compute_metrics(task, y_te, out, prep.class_names, recipe.evaluate.metrics)
    cm = confusion(y_te, out.argmax(1), n_classes) if task == "classification" else None
    png = {"loss_curve": plots.loss_curve(history)}
    if task == "classification":
        assert cm is not None
        png["confusion_matrix"] = plots.confusion_matrix(cm, prep.class_names)
        png["roc"] = plots.roc(y_te, out, prep.class_names)
    else:
        png["predicted_vs_true"] = plots.predicted_vs_true(y_te, out)
    timings["evaluate_s"] = time.perf_counter() - t
    _emit(on_progress, "evaluate", metrics=metrics)

    cv = None
    if recipe.evaluate.cv_folds:
        t = time.perf_counter()
        best_epochs = _best_epochs(history, recipe)
        cv = _cross_validate(
            recipe,
            data,
            np.concatenate([tr, va]),
            y_all,
            classes,
            target,
            best_epochs,
            on_progress,
            should_stop,
        )
        timings["cross_validate_s"] = time.perf_counter() - t

    t = time.perf_counter()
    onnx_bytes = export_onnx(model, input_shape, task=task)
    diff = _onnx_diff(onnx_bytes, model, X_te[:16], task)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    timings["export_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    _emit(on_progress, "export", onnx_bytes=len(onnx_bytes), onnx_max_abs_diff=diff)
    result = TrainingResult(
        onnx=onnx_bytes,
        torch_state=buf.getvalue(),
        model_spec=recipe.model.model_dump(mode="json"),
        input_shape=tuple(input_shape),
        n_outputs=n_out,
        signature={
            **signature(input_shape, n_out, task, n_classes or None),
            "raw_columns": prep.input_columns or None,
            "class_names": prep.class_names,
        },
        preprocessing=prep.state(),
        task=task,
        class_names=prep.class_names,
        metrics=metrics,
        history=history,
        recipe=recipe.to_dict(),
        reference_stats=reference_stats(X_tr, prep.feature_names or None),
        confusion_matrix=cm,
        cv=cv,
        tuning=tuning,
        plots=png,
        split_sizes={"train": len(X_tr), "val": 0 if X_va is None else len(X_va), "test": len(X_te)},
        timings={k: round(v, 4) for k, v in timings.items()},
        onnx_max_abs_diff=diff,
    )
    _emit(on_progress, "done", metrics=metrics)
    return result


def _classes(y: np.ndarray) -> list[Any]:
    from consortium.processing.preprocessor import _sorted_unique
    from consortium.processing.table import is_missing

    present = y[~is_missing(y)] if y.dtype.kind in "fO" else y
    return _sorted_unique(present)


def _strat_key(y: np.ndarray) -> np.ndarray:
    return y.astype(str) if y.dtype.kind == "O" else y


def _best_epochs(history: list[dict[str, Any]], recipe: Recipe) -> int:
    """Epochs for cross-validation folds: where validation loss was best under early stopping."""
    if recipe.train.early_stopping is None or not history or "val_loss" not in history[0]:
        return recipe.train.epochs
    return int(min(history, key=lambda h: h["val_loss"])["epoch"])


def _cross_validate(
    recipe: Recipe,
    data: DataFrameSet,
    dev: np.ndarray,
    y_all: np.ndarray,
    classes: list[Any] | None,
    target: str | None,
    epochs: int,
    on_progress: Progress | None,
    should_stop: Callable[[], bool] | None,
) -> dict[str, Any]:
    """k-fold on the train+validation rows (the test split stays untouched), fixed epochs."""
    from consortium.processing.augment import build_augmenter
    from consortium.training.models import build_model, n_outputs_for
    from consortium.training.trainer import predict_proba, seed_everything, train_epochs

    k = int(recipe.evaluate.cv_folds or 0)
    task = recipe.resolved_task
    folds = kfold(_strat_key(y_all[dev]), k, seed=recipe.data.seed, stratify=task == "classification")
    train_spec = recipe.train.model_copy(update={"early_stopping": None})
    per_fold = []
    for i, (a, b) in enumerate(folds):
        _check_stop(should_stop)
        fit_part, hold_part = data.subset(dev[a]), data.subset(dev[b])
        prep = Preprocessor.fit(fit_part, recipe.process, task=task, target=target, classes=classes)
        X_a, y_a = prep.transform(fit_part)
        X_b, y_b = prep.transform(hold_part)
        n_out = n_outputs_for(task, recipe.resolved_loss, len(prep.classes))
        seed_everything(recipe.train.seed + i)
        model = build_model(recipe.model, prep.output_shape, n_out)
        train_epochs(
            model,
            X_a,
            y_a,
            train_spec,
            task=task,
            epochs=epochs,
            seed=recipe.train.seed + i,
            augment=build_augmenter(recipe.augment),
            should_stop=should_stop,
        )
        m = compute_metrics(
            task, y_b, predict_proba(model, X_b, task=task), prep.class_names, recipe.evaluate.metrics
        )
        per_fold.append(m)
        _emit(on_progress, "cross_validate", fold=i + 1, folds=k, metrics=m)
    return {"folds": k, "epochs": epochs, "per_fold": per_fold, "summary": summarize_folds(per_fold)}


def _onnx_diff(onnx_bytes: bytes, model: Any, X: np.ndarray, task: str) -> float:
    """Largest |onnxruntime - torch| on a few rows: the exported file is checked, not assumed."""
    import onnxruntime as ort
    import torch

    from consortium.training.export import WithHead

    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: X.astype(np.float32)})[0]
    with torch.no_grad():
        want = WithHead(model, task).eval()(torch.from_numpy(X.astype(np.float32))).numpy()
    return float(np.abs(got - want).max())
