"""Tuning on the Ray cluster (``tune.parallel`` > 1, or ``tune.method: pbt``), with Ray Tune.

``method: tpe`` keeps ``training.tuning``'s semantics with trials running concurrently: Optuna's TPE
sampler (``OptunaSearch``, the same seed and startup trials) proposes values from the same search
space (the same ``_suggest`` rules, define-by-run), each trial is the same objective (the best
validation loss of ``train_epochs`` on the recipe with the trial's values), and asynchronous
Hyperband prunes: ``ASHAScheduler`` with as many brackets as Optuna's ``HyperbandPruner`` has for
1..epochs at reduction factor 3, on each epoch's validation loss. ``parallel`` trials run at once.

``method: pbt``: Population Based Training (``PopulationBasedTraining``). ``tune.trials`` models
train side by side from values drawn from the space; every few epochs the worst quarter copies the
weights and optimizer state of the best quarter (a checkpoint: exploit) and perturbs what can change
in a running trial (``PBT_MUTABLE``: learning rate, weight decay, momentum, batch size, dropout;
explore), kept inside the recipe's ranges. Other tuned values are drawn once per trial.

Either way the best completed trial's values come back as the recipe to train, with a summary shaped
like ``training.tuning``'s; each finished trial is relayed to ``on_trial`` as it ends, and
``should_stop`` ends the whole search. Trials are single-process (torch threads = the CPUs each holds).
Ray is imported only here and in ``training.distributed``.
"""

from __future__ import annotations

import math
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ray.tune import Callback
from ray.tune.stopper import Stopper

from consortium.errors import InvalidInput
from consortium.recipe import PBT_MUTABLE, ParamRange, Recipe, apply_params, is_float_path
from consortium.training.distributed import connect, cpus_per_worker, scratch_storage
from consortium.training.tuning import _suggest

DIVERGED = 1e30  # what a trial whose validation loss is not finite reports (Tune needs a number)
# The running searches' sinks, by run id: Ray pickles the Tuner's callbacks and stopper with its
# state, and a job's progress sink (its database session factory) does not pickle.
_SINKS: dict[str, tuple[Callable[[dict[str, Any]], None] | None, Callable[[], bool] | None]] = {}


def _is_int(name: str, r: ParamRange) -> bool:
    """``_suggest``'s rule: whole ends and step, and not a float field, give an integer range."""
    return (r.low is not None and r.high is not None and float(r.low).is_integer() and float(r.high).is_integer()
            and (r.step is None or float(r.step).is_integer()) and not is_float_path(name))


def _domain(tune: Any, name: str, r: ParamRange) -> Any:
    """The Ray Tune domain of one range (PBT's initial population and its resampling)."""
    if r.choices is not None:
        return tune.choice(r.choices)
    low, high = float(r.low or 0), float(r.high or 0)
    if _is_int(name, r):
        if r.log:
            return tune.lograndint(int(low), int(high) + 1)
        return tune.qrandint(int(low), int(high), int(r.step or 1))
    if r.log:
        return tune.loguniform(low, high)
    return tune.quniform(low, high, r.step) if r.step else tune.uniform(low, high)


class _Suggest:
    """OptunaSearch's define-by-run space: ``training.tuning``'s suggestions (a class: Ray pickles it)."""

    def __init__(self, space: dict[str, ParamRange]) -> None:
        self.space = space

    def __call__(self, trial: Any) -> None:
        for name, r in self.space.items():
            _suggest(trial, name, r)


class _Clip:
    """PBT's perturbation (x 0.8 or x 1.2) held inside the recipe's ranges and steps."""

    def __init__(self, space: dict[str, ParamRange]) -> None:
        self.space = space

    def __call__(self, config: dict[str, Any]) -> dict[str, Any]:
        return _clip(self.space, config)


def _clip(space: dict[str, ParamRange], config: dict[str, Any]) -> dict[str, Any]:
    for name, r in space.items():
        if r.choices is not None or name not in config or r.low is None or r.high is None:
            continue
        v = min(max(float(config[name]), float(r.low)), float(r.high))
        if r.step and not r.log:
            v = float(r.low) + round((v - float(r.low)) / r.step) * r.step
        config[name] = int(round(v)) if _is_int(name, r) else v
    return config


def _early_stop_at(values: list[float], recipe: Recipe) -> bool:
    """Whether ``train_epochs``' early stopping ends the run after these validation losses."""
    spec = recipe.train.early_stopping
    if spec is None:
        return False
    best, bad = math.inf, 0
    for v in values:
        best, bad = (v, 0) if v < best - spec.min_delta else (best, bad + 1)
    return bad >= spec.patience


def _report_row(row: dict[str, Any], r: Recipe, seen: list[float]) -> dict[str, Any]:
    v = float(row["val_loss"])
    finite = bool(np.isfinite(v))
    seen.append(v if finite else math.inf)
    best = min(seen)
    score = row.get("val_accuracy", -v)  # the reward, as in training.tuning
    return {"val_loss": v if finite else DIVERGED, "best_val_loss": best if np.isfinite(best) else DIVERGED,
            "reward": float(score) if np.isfinite(score) else -DIVERGED, "epoch": row["epoch"], "diverged": not finite,
            "complete": row["epoch"] >= r.train.epochs or _early_stop_at(seen, r)}


def _tpe_trial(config: dict[str, Any], *, recipe: Recipe, data: Any, task: str, input_shape: tuple[int, ...],
               n_outputs: int, threads: int) -> None:
    """One TPE trial: ``training.tuning``'s objective, each epoch reported to Tune."""
    import torch
    from ray import tune

    from consortium.processing.augment import build_augmenter
    from consortium.training.models import build_model
    from consortium.training.trainer import seed_everything, train_epochs

    torch.set_num_threads(threads)
    X, y, X_val, y_val = data
    r = apply_params(recipe, {k: config[k] for k in recipe.tune.space} if recipe.tune else {})
    seed_everything(r.train.seed)
    model = build_model(r.model, input_shape, n_outputs)
    seen: list[float] = []
    train_epochs(model, X, y, r.train, task=task, epochs=r.train.epochs, seed=r.train.seed, X_val=X_val,
                 y_val=y_val, augment=build_augmenter(r.augment),
                 on_epoch=lambda row: tune.report(_report_row(row, r, seen)))


def _member_model(build: Callable[..., Any], spec: Any, input_shape: tuple[int, ...], n_outputs: int) -> Any:
    """A PBT member's network, with its dropout layers present whatever the rate: PBT perturbs
    ``model.dropout`` between checkpoints, and a rate of 0 otherwise builds no layer, so a member
    exploiting a donor on the other side of 0 would get another layer numbering than the donor's
    weights (``Missing key(s) in state_dict``). The layers are built with a positive rate and set
    to this member's (p = 0 passes values through). Only the search's members; the recipe the
    search returns is trained as usual."""
    from torch import nn

    rate = getattr(spec, "dropout", None)
    if not rate and rate is not None:
        model = build(spec.model_copy(update={"dropout": 0.5}), input_shape, n_outputs)
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.p = float(rate)
        return model
    return build(spec, input_shape, n_outputs)


def _pbt_trial(config: dict[str, Any], *, recipe: Recipe, data: Any, task: str, input_shape: tuple[int, ...],
               n_outputs: int, threads: int) -> None:
    """One PBT member: resumes from its (or the exploited donor's) checkpoint with the config it has
    now (new learning rate etc. on the donor's optimizer state); a checkpoint every epoch."""
    import torch
    from ray import tune

    from consortium.processing.augment import build_augmenter
    from consortium.training.models import build_model
    from consortium.training.trainer import make_optimizer, seed_everything, train_epochs

    torch.set_num_threads(threads)
    X, y, X_val, y_val = data
    r = apply_params(recipe, {k: config[k] for k in recipe.tune.space} if recipe.tune else {})
    seed_everything(r.train.seed)
    model = _member_model(build_model, r.model, input_shape, n_outputs)
    opt = make_optimizer(model, r.train)
    start, seen = 0, []
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            state = torch.load(Path(d) / "state.pt", weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start, seen = int(state["epoch"]), list(state["seen"])
        for g in opt.param_groups:  # the optimizer's state is the donor's; its settings are this config's
            g["lr"], g["weight_decay"] = r.train.lr, r.train.weight_decay
            if "momentum" in g:
                g["momentum"] = r.train.momentum

    def report(row: dict[str, Any]) -> None:
        metrics = _report_row(row, r, seen)
        with tempfile.TemporaryDirectory() as d:
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": row["epoch"],
                        "seen": seen}, Path(d) / "state.pt")
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))

    train_epochs(model, X, y, r.train, task=task, epochs=r.train.epochs, seed=r.train.seed + start, X_val=X_val,
                 y_val=y_val, augment=build_augmenter(r.augment), on_epoch=report, optimizer=opt, start_epoch=start)


def _n_brackets(epochs: int, eta: int = 3) -> int:
    """Optuna's ``HyperbandPruner`` brackets for resources 1..epochs: floor(log_eta(epochs)) + 1."""
    return math.floor(math.log(max(epochs, 1), eta) + 1e-9) + 1


def tune_on_ray(
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
    """``training.tuning.tune`` on Ray Tune (``augment`` is rebuilt in each trial from
    ``recipe.augment``); the recipe with the best values, and the summary."""
    spec = recipe.tune
    if spec is None:
        raise InvalidInput("the recipe has no tune section")
    if len(X_val) == 0:
        raise InvalidInput("tuning needs a validation split", hint="set data.val_size > 0")
    ray = connect()
    import optuna
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, PopulationBasedTraining
    from ray.tune.search.basic_variant import BasicVariantGenerator
    from ray.tune.search.optuna import OptunaSearch

    seed, epochs, pbt = recipe.train.seed, recipe.train.epochs, spec.method == "pbt"
    parallel = min(spec.parallel, spec.trials)
    cpus = cpus_per_worker(ray, parallel)
    if pbt:
        random.seed(seed)  # PBT's exploit and explore draw from Python's random
        mutations = {k: (list(r.choices) if r.choices is not None else _domain(tune, k, r))
                     for k, r in spec.space.items() if k in PBT_MUTABLE}
        interval = max(1, epochs // 4)
        scheduler: Any = PopulationBasedTraining(
            time_attr="training_iteration", metric="val_loss", mode="min", perturbation_interval=interval,
            hyperparam_mutations=mutations, quantile_fraction=0.25, resample_probability=0.25,
            custom_explore_fn=_Clip(spec.space))
        search: Any = BasicVariantGenerator(random_state=seed)
        param_space = {k: _domain(tune, k, r) for k, r in spec.space.items()}
        fn: Any = _pbt_trial
    else:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        search = OptunaSearch(
            space=_Suggest(spec.space), metric="best_val_loss", mode="min",
            sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(5, spec.trials)))
        scheduler = ASHAScheduler(time_attr="training_iteration", metric="val_loss", mode="min", max_t=epochs,
                                  grace_period=1, reduction_factor=3, brackets=_n_brackets(epochs),
                                  stop_last_trials=False)
        param_space, fn = {}, _tpe_trial
    trainable = tune.with_resources(
        tune.with_parameters(fn, recipe=recipe, data=(X, y, X_val, y_val), task=task,
                             input_shape=tuple(input_shape), n_outputs=n_outputs, threads=max(1, int(cpus))),
        {"cpu": cpus})
    run_id = uuid.uuid4().hex[:12]
    progress = _Progress(run_id, spec.space)
    _SINKS[run_id] = (on_trial, should_stop)
    started = time.perf_counter()
    try:
        with scratch_storage() as storage:
            tuner = tune.Tuner(
                trainable, param_space=param_space,
                tune_config=tune.TuneConfig(search_alg=search, scheduler=scheduler, num_samples=spec.trials,
                                            max_concurrent_trials=parallel, time_budget_s=spec.timeout_s,
                                            reuse_actors=True),
                run_config=tune.RunConfig(name=f"consortium-tune-{run_id}", storage_path=storage, verbose=0,
                                          stop=_Stop(run_id), callbacks=[progress],
                                          failure_config=tune.FailureConfig(max_failures=0)))
            tuner.fit()
    finally:
        _SINKS.pop(run_id, None)
    trials = sorted(progress.rows.values(), key=lambda t: t["number"])
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    if not complete:
        raise InvalidInput("no tuning trial completed", hint="widen tune.space or raise tune.trials/timeout_s")
    best = min(complete, key=lambda t: t["value"])
    rewards = [t.get("reward") for t in trials]
    summary = {
        "method": spec.method,
        "sampler": "PBT" if pbt else "TPE",
        "pruner": "PBT exploit/explore" if pbt else "Hyperband (ASHA)",
        "engine": "ray",
        "parallel": parallel,
        "cpus_per_trial": cpus,
        "trials": trials,
        "n_complete": len(complete),
        "n_pruned": sum(t["state"] == "PRUNED" for t in trials),
        "n_failed": sum(t["state"] == "FAIL" for t in trials),
        "best_params": dict(best["params"]),
        "best_value": float(best["value"]),
        "best_trial": best["number"],
        "budget": spec.trials,
        "reward": "val_accuracy" if task == "classification" else "-val_loss",
        "rewards": rewards,
        "best_reward": max((x for x in rewards if x is not None), default=None),
        "wall_s": round(time.perf_counter() - started, 3),
    }
    if pbt:
        summary["perturbation_interval"] = interval
        summary["n_perturbations"] = sum(t.get("perturbations", 0) for t in trials)
    return apply_params(recipe, best["params"]), summary


class _Stop(Stopper):
    """Ends the whole search when the job's ``should_stop`` turns true."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        should_stop = _SINKS.get(self.run_id, (None, None))[1]
        return bool(should_stop is not None and should_stop())


class _Progress(Callback):
    """In the driver: each trial's results as they come, and its row (``training.tuning``'s shape)
    relayed to the job when it ends."""

    def __init__(self, run_id: str, space: dict[str, ParamRange]) -> None:
        self.run_id, self.names = run_id, list(space)
        self.rows: dict[str, dict[str, Any]] = {}

    def _row(self, trial: Any) -> dict[str, Any]:
        row = self.rows.setdefault(trial.trial_id, {
            "number": len(self.rows), "state": "RUNNING", "value": None,  # in the order trials start
            "params": {}, "epochs": 0, "intermediate": {}, "perturbations": 0, "reward": None})
        params = {k: trial.config.get(k) for k in self.names}
        if row["params"] and params != row["params"]:
            row["perturbations"] += 1
        row["params"] = params
        return row

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._row(trial)

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any],
                        **info: Any) -> None:
        row = self._row(trial)
        row["epochs"] = int(result["epoch"])
        row["intermediate"][int(result["epoch"])] = float(result["val_loss"])
        row["value"], row["complete"] = float(result["best_val_loss"]), bool(result["complete"])
        row["diverged"] = bool(result.get("diverged"))
        if "reward" in result and result["reward"] > -DIVERGED:
            row["reward"] = max(float(result["reward"]), row.get("reward") or -math.inf)

    def _end(self, trial: Any, failed: bool) -> None:
        row = self._row(trial)
        if failed:
            row["state"] = "FAIL"
        elif row.pop("complete", False) and not row.pop("diverged", False) and row["value"] is not None:
            row["state"] = "COMPLETE"
        else:
            row["state"] = "PRUNED"  # stopped by the scheduler (or diverged)
        row.pop("complete", None), row.pop("diverged", None)
        on_trial = _SINKS.get(self.run_id, (None, None))[0]
        if on_trial is not None:
            on_trial({k: v for k, v in row.items() if k != "perturbations" or v})

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._end(trial, failed=False)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._end(trial, failed=True)
