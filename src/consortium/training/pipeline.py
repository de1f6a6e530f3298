"""One training job, end to end, in its steps: prepare (split, fit processing on train, transform)
-> tune (optional) -> train -> evaluate on test -> cross-validate (optional) -> export ONNX. Pure
library code: takes a recipe and a ``DataFrameSet``, returns a ``TrainingResult``; the job runner
registers it.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from consortium.data.frame import DataFrameSet
from consortium.errors import InvalidInput
from consortium.evaluation import plots
from consortium.evaluation.cross_validation import FitPredict, FoldPrediction, cross_validate, strat_key
from consortium.evaluation.metrics import compute_metrics, confusion
from consortium.evaluation.reference import reference_stats
from consortium.processing.preprocessor import Preprocessor
from consortium.processing.splits import train_val_test_split
from consortium.recipe import Recipe, parse_recipe, validate_against
from consortium.training.result import TrainingResult

Progress = Callable[[dict[str, Any]], None]


@dataclass
class Run:
    """What every step reports to: the progress callback, the stop flag, and the step timings."""

    on_progress: Progress | None = None
    should_stop: Callable[[], bool] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def emit(self, stage: str, **info: Any) -> None:
        if self.on_progress is not None:
            self.on_progress({"stage": stage, **info})

    def check_stop(self) -> None:
        from consortium.training.trainer import TrainingCancelled

        if self.should_stop is not None and self.should_stop():
            raise TrainingCancelled("training was cancelled")

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Record the seconds the block took as ``timings[name]``."""
        t = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - t


@dataclass
class Prepared:
    """The rows split, the processing fitted on the training split, and every split transformed."""

    prep: Preprocessor
    target: str | None
    classes: list[Any] | None  # classification: every class in the data, so each split encodes alike
    y_all: np.ndarray  # the raw target of every row
    dev: np.ndarray  # positions of the train and validation rows (cross-validation's rows)
    X_tr: np.ndarray
    y_tr: np.ndarray
    X_va: np.ndarray | None  # None: no validation split
    y_va: np.ndarray | None
    X_te: np.ndarray
    y_te: np.ndarray
    n_outputs: int
    augment: Any  # processing.augment's callable, or None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.prep.output_shape)

    def split_sizes(self) -> dict[str, int]:
        return {"train": len(self.X_tr), "val": 0 if self.X_va is None else len(self.X_va), "test": len(self.X_te)}


def run_training(
    recipe: Recipe | dict[str, Any] | str,
    data: DataFrameSet,
    *,
    on_progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainingResult:
    """Run the recipe on ``data``. ``on_progress`` receives dicts with a ``stage`` (prepare, tune,
    train, evaluate, cross_validate, export, done) and stage details (e.g. per-epoch metrics);
    ``should_stop`` is polled and, when true, ends the run with ``TrainingCancelled``. A ``Recipe``
    is used as it is (a job's, validated when it was loaded); text or a mapping is parsed first."""
    run = Run(on_progress, should_stop)
    t0 = time.perf_counter()
    with run.timed("prepare_s"):
        if not isinstance(recipe, Recipe):
            recipe = parse_recipe(recipe)
        p = prepare(recipe, data)
    run.emit("prepare", rows=p.split_sizes(), input_shape=list(p.input_shape), n_outputs=p.n_outputs)
    run.check_stop()
    tuning = None
    if recipe.tune is not None:
        with run.timed("tune_s"):
            recipe, tuning = tune_step(recipe, p, run)
        run.check_stop()
    with run.timed("train_s"):
        model, history = train_step(recipe, p, run)
    run.check_stop()
    with run.timed("evaluate_s"):
        metrics, cm, png = evaluate_step(recipe, p, model, history)
        if tuning is not None and tuning.get("rewards"):
            png["tuning_rewards"] = plots.search_curve(tuning["rewards"], tuning.get("reward", "reward"))
    run.emit("evaluate", metrics=metrics)
    cv = None
    if recipe.evaluate.cv_folds:
        with run.timed("cross_validate_s"):
            cv = cross_validate_step(recipe, data, p, best_epochs(history, recipe), run)
    with run.timed("export_s"):
        onnx_bytes, torch_state, diff = export_step(model, p, recipe.resolved_task)
    run.timings["total_s"] = time.perf_counter() - t0
    run.emit("export", onnx_bytes=len(onnx_bytes), onnx_max_abs_diff=diff)
    result = result_of(recipe, p, onnx_bytes, torch_state, metrics, history, cm=cm, cv=cv, tuning=tuning,
                       plots=png, timings=run.timings, onnx_max_abs_diff=diff)
    run.emit("done", metrics=metrics)
    return result


def prepare(recipe: Recipe, data: DataFrameSet) -> Prepared:
    """Check the recipe against the rows, split them, fit the processing on the training split and
    transform every split."""
    from consortium.processing.augment import build_augmenter
    from consortium.training.models import n_outputs_for

    validate_against(recipe, data)
    task = recipe.resolved_task
    target = recipe.data.target or data.target
    y_all = data.target_values(target)
    classes = _classes(y_all) if task == "classification" else None
    tr, va, te = train_val_test_split(
        strat_key(y_all),
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
    return Prepared(prep, target, classes, y_all, np.concatenate([tr, va]), X_tr, y_tr, X_va, y_va, X_te, y_te,
                    n_outputs_for(task, recipe.resolved_loss, len(prep.classes)), build_augmenter(recipe.augment))


def tune_step(recipe: Recipe, p: Prepared, run: Run) -> tuple[Recipe, dict[str, Any]]:
    """Search the recipe's ``tune`` space on the validation split; the recipe with the best values.
    ``tune.parallel`` > 1 or ``method: pbt``: trials run concurrently on Ray Tune (``training.ray_tuning``)."""
    from consortium.training.tuning import tune

    if recipe.tune is None:
        raise InvalidInput("invalid recipe at tune: tuning needs a search space")
    if p.X_va is None or p.y_va is None:
        raise InvalidInput("invalid recipe at data.val_size: tuning needs a validation split")
    trials = recipe.tune.trials
    if recipe.tune.parallel > 1 or recipe.tune.method == "pbt":
        from consortium.training.ray_tuning import tune_on_ray

        tune = tune_on_ray
    return tune(
        recipe,
        p.X_tr,
        p.y_tr,
        p.X_va,
        p.y_va,
        task=recipe.resolved_task,
        input_shape=p.input_shape,
        n_outputs=p.n_outputs,
        augment=p.augment,
        should_stop=run.should_stop,
        on_trial=lambda row: run.emit("tune", trial=row, trials=trials),
    )


def train_step(recipe: Recipe, p: Prepared, run: Run) -> tuple[Any, list[dict[str, Any]]]:
    """Build the recipe's model and train it on the training split; (model, per-epoch history).
    ``train.workers`` > 1: data-parallel on the Ray cluster (``training.distributed``), rank 0's model."""
    from consortium.training.models import build_model
    from consortium.training.trainer import seed_everything, train_epochs

    epochs = recipe.train.epochs
    if recipe.train.workers > 1:
        from consortium.training.distributed import train_distributed

        model, history, facts = train_distributed(
            recipe, p.X_tr, p.y_tr, p.X_va, p.y_va, input_shape=p.input_shape, n_outputs=p.n_outputs,
            on_epoch=lambda row: run.emit("train", epochs=epochs, **row), should_stop=run.should_stop)
        run.timings.update(train_workers=facts["workers"], train_cpus_per_worker=facts["cpus_per_worker"],
                           train_ray_overhead_s=facts["wall_s"] - facts["train_wall_s"])
        return model, history
    seed_everything(recipe.train.seed)
    model = build_model(recipe.model, p.input_shape, p.n_outputs)
    history = train_epochs(
        model,
        p.X_tr,
        p.y_tr,
        recipe.train,
        task=recipe.resolved_task,
        epochs=epochs,
        seed=recipe.train.seed,
        X_val=p.X_va,
        y_val=p.y_va,
        augment=p.augment,
        should_stop=run.should_stop,
        on_epoch=lambda row: run.emit("train", epochs=epochs, **row),
    )
    return model, history


def evaluate_step(
    recipe: Recipe, p: Prepared, model: Any, history: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[list[int]] | None, dict[str, bytes]]:
    """Score the model on the test split: (metrics, confusion matrix or None, plots as PNG)."""
    from consortium.training.trainer import predict_proba

    task = recipe.resolved_task
    out = predict_proba(model, p.X_te, task=task)
    names = p.prep.class_names
    metrics = compute_metrics(task, p.y_te, out, names, recipe.evaluate.metrics)
    png = {"loss_curve": plots.loss_curve(history)}
    if task != "classification":
        png["predicted_vs_true"] = plots.predicted_vs_true(p.y_te, out)
        return metrics, None, png
    cm = confusion(p.y_te, out.argmax(1), len(p.prep.classes))
    png["confusion_matrix"] = plots.confusion_matrix(cm, names)
    png["roc"] = plots.roc(p.y_te, out, names)
    return metrics, cm, png


def best_epochs(history: list[dict[str, Any]], recipe: Recipe) -> int:
    """Epochs for cross-validation folds: where validation loss was best under early stopping."""
    if recipe.train.early_stopping is None or not history or "val_loss" not in history[0]:
        return recipe.train.epochs
    return int(min(history, key=lambda h: h["val_loss"])["epoch"])


def cross_validate_step(recipe: Recipe, data: DataFrameSet, p: Prepared, epochs: int, run: Run) -> dict[str, Any]:
    """k-fold on the train+validation rows (the test split stays untouched), ``epochs`` per fold."""
    k = int(recipe.evaluate.cv_folds or 0)
    cv = cross_validate(
        p.y_all[p.dev],
        k,
        fold_fit(recipe, data, p, epochs, run),
        task=recipe.resolved_task,
        seed=recipe.data.seed,
        metrics=recipe.evaluate.metrics,
        on_fold=lambda row: run.emit("cross_validate", **row),
    )
    return {**cv, "epochs": epochs}


def fold_fit(recipe: Recipe, data: DataFrameSet, p: Prepared, epochs: int, run: Run) -> FitPredict:
    """What trains one cross-validation fold as the job trains: processing fitted on the fold's rows,
    a fresh model (seed + fold), fixed ``epochs`` (no early stopping)."""
    from consortium.processing.augment import build_augmenter
    from consortium.training.models import build_model, n_outputs_for
    from consortium.training.trainer import predict_proba, seed_everything, train_epochs

    task = recipe.resolved_task
    train_spec = recipe.train.model_copy(update={"early_stopping": None})

    def fit_predict(i: int, fit_rows: np.ndarray, held_rows: np.ndarray) -> FoldPrediction:
        run.check_stop()
        fit_part, hold_part = data.subset(p.dev[fit_rows]), data.subset(p.dev[held_rows])
        prep = Preprocessor.fit(fit_part, recipe.process, task=task, target=p.target, classes=p.classes)
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
            should_stop=run.should_stop,
        )
        return FoldPrediction(y_b, predict_proba(model, X_b, task=task), prep.class_names)

    return fit_predict


def export_step(model: Any, p: Prepared, task: str) -> tuple[bytes, bytes, float]:
    """ONNX bytes (checked against torch on a few test rows) and the torch weights:
    (onnx, torch.save bytes, max abs difference)."""
    import torch

    from consortium.training.export import export_onnx

    onnx_bytes = export_onnx(model, p.input_shape, task=task)
    diff = _onnx_diff(onnx_bytes, model, p.X_te[:16], task)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return onnx_bytes, buf.getvalue(), diff


def result_of(
    recipe: Recipe,
    p: Prepared,
    onnx_bytes: bytes,
    torch_state: bytes,
    metrics: dict[str, Any],
    history: list[dict[str, Any]],
    *,
    cm: list[list[int]] | None,
    cv: dict[str, Any] | None,
    tuning: dict[str, Any] | None,
    plots: dict[str, bytes],
    timings: dict[str, float],
    onnx_max_abs_diff: float,
) -> TrainingResult:
    """The ``TrainingResult`` of the steps' outputs."""
    from consortium.training.export import signature

    task, prep = recipe.resolved_task, p.prep
    return TrainingResult(
        onnx=onnx_bytes,
        torch_state=torch_state,
        model_spec=recipe.model.model_dump(mode="json"),
        input_shape=p.input_shape,
        n_outputs=p.n_outputs,
        signature={
            **signature(p.input_shape, p.n_outputs, task, len(prep.classes) or None),
            "raw_columns": prep.input_columns or None,
            "class_names": prep.class_names,
        },
        preprocessing=prep.state(),
        task=task,
        class_names=prep.class_names,
        metrics=metrics,
        history=history,
        recipe=recipe.to_dict(),
        reference_stats=reference_stats(p.X_tr, prep.feature_names or None),
        confusion_matrix=cm,
        cv=cv,
        tuning=tuning,
        plots=plots,
        split_sizes=p.split_sizes(),
        timings={k: round(v, 4) for k, v in timings.items()},
        onnx_max_abs_diff=onnx_max_abs_diff,
    )


def _classes(y: np.ndarray) -> list[Any]:
    from consortium.processing.preprocessor import _sorted_unique
    from consortium.processing.table import is_missing

    present = y[~is_missing(y)] if y.dtype.kind in "fO" else y
    return _sorted_unique(present)


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
