"""Hyperparameter tuning for the recipe's ``tune`` section, one trial (child) at a time: Optuna's TPE
sampler (``method: tpe``), random search (``random``) or the REINFORCE architecture controller
(``rl``, ``training.rl_controller``) proposes values, and the Hyperband pruner (a bandit method)
stops unpromising trials early from their per-epoch validation loss. Storage is in memory; the
summary lists every trial, its reward and how it ended.

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

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from consortium.errors import InvalidInput
from consortium.recipe import ParamRange, Recipe, TuneSpec, apply_params, is_float_path


def _suggest(trial: Any, name: str, r: ParamRange) -> Any:
    if r.choices is not None:
        return trial.suggest_categorical(name, r.choices)
    if r.low is None or r.high is None:  # (ParamRange refuses this)
        raise InvalidInput(f"invalid recipe at tune.{name}: give low and high, or choices")
    if (
        float(r.low).is_integer()
        and float(r.high).is_integer()
        and (r.step is None or float(r.step).is_integer())
        and not is_float_path(name)
    ):
        step = int(r.step) if r.step and not r.log else 1
        return trial.suggest_int(name, int(r.low), int(r.high), step=step, log=r.log)
    return trial.suggest_float(name, float(r.low), float(r.high), log=r.log, step=None if r.log else r.step)


SAMPLERS = {"tpe": "TPE", "random": "random", "rl": "RL (REINFORCE controller)"}


def _sampler(method: str, seed: int, trials: int) -> Any:
    import optuna

    if method == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(5, trials))
    return optuna.samplers.RandomSampler(seed=seed)  # rl: every child's values are enqueued; this never samples


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
    """Search ``recipe.tune.space`` with ``tune.method`` (tpe, random or rl; each with Hyperband
    pruning); return the recipe with the best values and a JSON summary (trials with state
    COMPLETE/PRUNED/FAIL, values, rewards, params, epochs run; best params; counts; for rl the
    policy's final preferences). ``on_trial`` gets each finished trial's row with the best reward
    and params so far. Every trial's reward is its best validation accuracy (minus its best
    validation loss for regression), pruned trials included; the best trial is the completed one
    with the lowest validation loss, as the objective says."""
    import optuna

    from consortium.training.models import build_model
    from consortium.training.trainer import seed_everything, train_epochs

    spec = recipe.tune
    if spec is None:
        raise InvalidInput("the recipe has no tune section")
    if len(X_val) == 0:
        raise InvalidInput("tuning needs a validation split", hint="set data.val_size > 0")

    def child(trial: Any, params: dict[str, Any]) -> float:
        r = apply_params(recipe, params)
        seed_everything(r.train.seed)
        model = build_model(r.model, input_shape, n_outputs)
        best = [float("inf")]

        def report(row: dict[str, Any]) -> None:
            best[0] = min(best[0], row["val_loss"])
            trial.set_user_attr("epochs", row["epoch"])
            score = row.get("val_accuracy") if task == "classification" else -row["val_loss"]
            if score is not None and np.isfinite(score):
                trial.set_user_attr("reward", max(float(score), trial.user_attrs.get("reward", -math.inf)))
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

    best, summary = search(spec, child, seed=recipe.train.seed, max_resource=recipe.train.epochs,
                           reward="val_accuracy" if task == "classification" else "-val_loss",
                           should_stop=should_stop, on_trial=on_trial)
    return apply_params(recipe, best.params), summary


def search(spec: TuneSpec, child: Callable[[Any, dict[str, Any]], float], *, seed: int, max_resource: int,
           reward: str, should_stop: Callable[[], bool] | None = None,
           on_trial: Callable[[dict[str, Any]], None] | None = None,
           catch: tuple[type[Exception], ...] = (RuntimeError, ValueError)) -> tuple[Any, dict[str, Any]]:
    """The search loop behind ``tune`` and federated tuning (``jobs.federated_tuning``): one Optuna
    study (``tune.method``'s sampler, or the rl controller enqueueing each child) with the Hyperband
    pruner over ``max_resource`` steps (epochs, or federated rounds). ``child(trial, params)`` trains
    one child with the sampled values, reports each step with ``trial.report`` (raising
    ``optuna.TrialPruned`` when ``trial.should_prune()``), sets the ``reward`` user attribute and
    returns the loss to minimize. A child raising one of ``catch`` fails (the search goes on).
    Returns the best completed trial and the JSON summary (``reward`` names the reward's metric)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name="consortium-tune",  # Hyperband's brackets hash the name: a fixed one keeps runs alike
        direction="minimize",
        sampler=_sampler(spec.method, seed, spec.trials),
        pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_resource, reduction_factor=3),
    )
    started = time.perf_counter()

    def objective(trial: Any) -> float:
        return child(trial, {name: _suggest(trial, name, r) for name, r in spec.space.items()})

    progress = Progress(on_trial)

    def callback(study: Any, trial: Any) -> None:
        progress.finished(trial)
        if should_stop is not None and should_stop():
            study.stop()

    def optimize(n_trials: int, timeout: float | None) -> None:
        study.optimize(objective, n_trials=n_trials, timeout=timeout, callbacks=[callback], catch=catch)

    preferences = None
    if spec.method == "rl":
        preferences = _search_rl(study, optimize, spec, seed, started, should_stop)
    else:
        optimize(spec.trials, spec.timeout_s)
    trials = [_trial_row(t) for t in study.trials]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        errors = [t.user_attrs["error"] for t in study.trials if t.user_attrs.get("error")]
        raise InvalidInput("no tuning trial completed" + (f" (the first failed: {errors[0]})" if errors else ""),
                           hint="widen tune.space or raise tune.trials/timeout_s")
    best = study.best_trial
    if best.value is None:  # optuna types it optional; a completed single-objective trial has one
        raise InvalidInput("no tuning trial completed", hint="widen tune.space or raise tune.trials/timeout_s")
    summary = {
        "method": spec.method,
        "sampler": SAMPLERS[spec.method],
        "pruner": "Hyperband",
        "budget": spec.trials,
        "reward": reward,
        "trials": trials,
        "rewards": [t["reward"] for t in trials],
        "n_complete": len(complete),
        "n_pruned": sum(t["state"] == "PRUNED" for t in trials),
        "n_failed": sum(t["state"] == "FAIL" for t in trials),
        "best_params": dict(best.params),
        "best_value": float(best.value),
        "best_trial": best.number,
        "best_reward": progress.best_reward,
        "wall_s": round(time.perf_counter() - started, 3),
    }
    if preferences is not None:
        summary["preferences"] = preferences
    return best, summary


def _search_rl(study: Any, optimize: Callable[[int, float | None], None], spec: TuneSpec, seed: int,
               started: float, should_stop: Callable[[], bool] | None) -> dict[str, dict[str, float]]:
    """The controller proposes each child, the study trains it (same objective, same Hyperband
    pruner), and the child's reward (pruned children included) is one policy-gradient step.
    Returns the policy's final preferences per choice."""
    from consortium.training.rl_controller import Controller, decisions_of

    controller = Controller(decisions_of(spec.space), seed=seed)
    for _ in range(spec.trials):
        left = None if spec.timeout_s is None else spec.timeout_s - (time.perf_counter() - started)
        if left is not None and left <= 0:
            break
        child = controller.propose()
        study.enqueue_trial(child.params, skip_if_exists=False)
        optimize(1, left)
        controller.learn(child, float(study.trials[-1].user_attrs.get("reward", math.nan)))
        if should_stop is not None and should_stop():
            break
    return controller.preferences()


class Progress:
    """The best reward so far, added to each finished trial's row for ``on_trial``."""

    def __init__(self, on_trial: Callable[[dict[str, Any]], None] | None) -> None:
        self.on_trial = on_trial
        self.best_reward: float | None = None
        self.best_params: dict[str, Any] = {}
        self.best_number: int | None = None

    def finished(self, trial: Any) -> None:
        row = _trial_row(trial)
        reward = row["reward"]
        if reward is not None and (self.best_reward is None or reward > self.best_reward):
            self.best_reward, self.best_params, self.best_number = reward, row["params"], row["number"]
        if self.on_trial is not None:
            self.on_trial({**row, "best_reward": self.best_reward, "best_params": self.best_params,
                           "best_number": self.best_number})


def search_record(summary: dict[str, Any]) -> dict[str, Any]:
    """What a model version's lineage keeps of a search: the summary without its per-trial rows
    (the rewards over children stay, for the card's plot).

    >>> search_record({"method": "rl", "trials": [{}], "rewards": [0.5]})
    {'method': 'rl', 'rewards': [0.5]}
    """
    return {k: v for k, v in summary.items() if k != "trials"}


def _trial_row(t: Any) -> dict[str, Any]:
    reward = t.user_attrs.get("reward")
    return {
        "number": t.number,
        "state": t.state.name,
        "value": t.value,
        "reward": None if reward is None else round(float(reward), 6),
        "params": dict(t.params),
        "epochs": t.user_attrs.get("epochs", 0),
        **({"rounds": t.user_attrs["rounds"]} if "rounds" in t.user_attrs else {}),
        **({"error": t.user_attrs["error"]} if "error" in t.user_attrs else {}),
        "intermediate": {int(k): float(v) for k, v in t.intermediate_values.items()},
    }
