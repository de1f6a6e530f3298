"""Hyperparameter tuning for the recipe's ``tune`` section: Optuna's TPE sampler proposes values,
the Hyperband pruner (a bandit method) stops unpromising trials early from their per-epoch
validation loss. Storage is in memory; the summary lists every trial and how it ended.

>>> import numpy as np
>>> from consortium.recipe import parse_recipe
>>> r = parse_recipe({"name": "t", "model": {"type": "logistic"}, "train": {"epochs": 2},
...                   "tune": {"trials": 2, "space": {"train.lr": {"low": 0.001, "high": 0.1, "log": True}}}})
>>> X = np.random.default_rng(0).normal(size=(40, 3)).astype("float32"); y = (X[:, 0] > 0).astype("int64")
>>> best, summary = tune(r, X, y, X, y, task="classification", input_shape=(3,), n_outputs=2)
>>> len(summary["trials"]), "train.lr" in summary["best_params"]
(2, True)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from consortium.errors import InvalidInput
from consortium.recipe import ParamRange, Recipe, apply_params


def _suggest(trial: Any, name: str, r: ParamRange) -> Any:
    if r.choices is not None:
        return trial.suggest_categorical(name, r.choices)
    if r.low is None or r.high is None:  # (ParamRange refuses this)
        raise InvalidInput(f"invalid recipe at tune.{name}: give low and high, or choices")
    if (
        float(r.low).is_integer()
        and float(r.high).is_integer()
        and (r.step is None or float(r.step).is_integer())
        and not _is_float_path(name)
    ):
        step = int(r.step) if r.step and not r.log else 1
        return trial.suggest_int(name, int(r.low), int(r.high), step=step, log=r.log)
    return trial.suggest_float(name, float(r.low), float(r.high), log=r.log, step=None if r.log else r.step)


def _is_float_path(path: str) -> bool:
    return path.split(".")[-1] in {"lr", "weight_decay", "momentum", "dropout", "gamma", "min_delta"}


def tune(
    recipe: Recipe,
    X: np.ndarray,
    y: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    task: str,
    input_shape: tuple[int, ...],
    n_outputs: int,
    augment: Callable[..., Any] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[Recipe, dict[str, Any]]:
    """Search ``recipe.tune.space``; return the recipe with the best values and a JSON summary
    (trials with state COMPLETE/PRUNED/FAIL, values, params, epochs run; best params; counts)."""
    import optuna

    from consortium.training.models import build_model
    from consortium.training.trainer import seed_everything, train_epochs

    spec = recipe.tune
    if spec is None:
        raise InvalidInput("the recipe has no tune section")
    if len(X_val) == 0:
        raise InvalidInput("tuning needs a validation split", hint="set data.val_size > 0")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    epochs = recipe.train.epochs
    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=recipe.train.seed, n_startup_trials=min(5, spec.trials)),
        pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3),
    )
    started = time.perf_counter()

    def objective(trial: Any) -> float:
        params = {name: _suggest(trial, name, r) for name, r in spec.space.items()}
        r = apply_params(recipe, params)
        seed_everything(r.train.seed)
        model = build_model(r.model, input_shape, n_outputs)
        best = [float("inf")]

        def report(row: dict[str, Any]) -> None:
            best[0] = min(best[0], row["val_loss"])
            trial.set_user_attr("epochs", row["epoch"])
            trial.report(row["val_loss"], row["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned()

        train_epochs(
            model,
            X,
            y,
            r.train,
            task=task,
            epochs=r.train.epochs,
            seed=r.train.seed,
            X_val=X_val,
            y_val=y_val,
            augment=augment,
            on_epoch=report,
            should_stop=should_stop,
        )
        if not np.isfinite(best[0]):
            raise optuna.TrialPruned()  # diverged
        return best[0]

    def callback(study: Any, trial: Any) -> None:
        if on_trial is not None:
            on_trial(_trial_row(trial))
        if should_stop is not None and should_stop():
            study.stop()

    study.optimize(
        objective,
        n_trials=spec.trials,
        timeout=spec.timeout_s,
        callbacks=[callback],
        catch=(RuntimeError, ValueError),
    )
    trials = [_trial_row(t) for t in study.trials]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise InvalidInput(
            "no tuning trial completed", hint="widen tune.space or raise tune.trials/timeout_s"
        )
    best = study.best_trial
    if best.value is None:  # optuna types it optional; a completed single-objective trial has one
        raise InvalidInput("no tuning trial completed", hint="widen tune.space or raise tune.trials/timeout_s")
    summary = {
        "sampler": "TPE",
        "pruner": "Hyperband",
        "trials": trials,
        "n_complete": len(complete),
        "n_pruned": sum(t["state"] == "PRUNED" for t in trials),
        "n_failed": sum(t["state"] == "FAIL" for t in trials),
        "best_params": dict(best.params),
        "best_value": float(best.value),
        "best_trial": best.number,
        "wall_s": round(time.perf_counter() - started, 3),
    }
    return apply_params(recipe, best.params), summary


def _trial_row(t: Any) -> dict[str, Any]:
    return {
        "number": t.number,
        "state": t.state.name,
        "value": t.value,
        "params": dict(t.params),
        "epochs": t.user_attrs.get("epochs", 0),
        "intermediate": {int(k): float(v) for k, v in t.intermediate_values.items()},
    }
