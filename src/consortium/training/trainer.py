"""The training loop: mini-batch SGD-family optimizers, schedules, early stopping, optional DP-SGD.

``train_epochs`` is the one loop every caller uses: the training pipeline, tuning trials and the
federated client (which calls it for its local epochs each round). It returns one dict per epoch.
``evaluate`` and ``predict_proba`` score a model with the same loss and targets (training jobs, and
the federated nodes and ServerApp).

>>> import numpy as np
>>> from consortium.recipe import MLPSpec, TrainSpec
>>> from consortium.training.models import build_model
>>> X = np.random.default_rng(0).normal(size=(64, 4)).astype("float32"); y = (X[:, 0] > 0).astype("int64")
>>> seed_everything(0); m = build_model(MLPSpec(hidden=[8]), (4,), 2)
>>> h = train_epochs(m, X, y, TrainSpec(lr=0.05, epochs=3), task="classification", epochs=3, seed=0)
>>> [sorted(h[0]) [:3], h[-1]["loss"] < h[0]["loss"]]
[['epoch', 'loss', 'lr'], True]
"""

from __future__ import annotations

import copy
import math
import random
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from consortium.errors import Conflict, InvalidInput
from consortium.probabilities import probabilities
from consortium.recipe import DPSpec, TrainSpec


class TrainingCancelled(Conflict):
    """The caller asked to stop (``should_stop`` returned true) before training finished (a
    ``Conflict`` with the job's state, under its own code)."""

    code = "cancelled"


class Sharding(Protocol):
    """How ``train_epochs`` runs as one of several data-parallel workers
    (``consortium.training.distributed.Shard``: DistributedDataParallel over Ray Train)."""

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module the batches go through (gradients averaged over the workers)."""
        ...

    def batches(self, X: torch.Tensor, y: torch.Tensor, batch_size: int, epoch: int) -> Iterable[Any]:
        """This worker's batches of the epoch (its shard of every row, ``batch_size`` / workers at a time)."""
        ...

    def end_epoch(self, model: nn.Module, total: float, seen: int) -> float:
        """After the epoch's batches: every worker's model alike; the mean training loss over all workers."""
        ...


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch so a rerun with the same seed gives the same model."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def loss_function(loss: str) -> nn.Module:
    if loss == "cross_entropy":
        return nn.CrossEntropyLoss()
    if loss == "binary_cross_entropy":
        return nn.BCEWithLogitsLoss()
    if loss == "mse":
        return nn.MSELoss()
    raise InvalidInput(
        f"invalid recipe at train.loss: {loss!r}", hint="use cross_entropy, binary_cross_entropy or mse"
    )


def make_optimizer(model: nn.Module, spec: TrainSpec) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if spec.optimizer == "adam":
        return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay)
    if spec.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)
    return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)


def make_schedule(opt: torch.optim.Optimizer, spec: TrainSpec, epochs: int) -> Any:
    if spec.schedule is None:
        return None
    if spec.schedule.type == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    return torch.optim.lr_scheduler.StepLR(opt, step_size=spec.schedule.step_size, gamma=spec.schedule.gamma)


def _targets(y: np.ndarray, loss: str) -> torch.Tensor:
    if loss == "cross_entropy":
        return torch.as_tensor(np.asarray(y), dtype=torch.long)
    t = torch.as_tensor(np.asarray(y), dtype=torch.float32)
    return t.view(-1, 1) if t.dim() == 1 else t  # (N, 1)


def _loss_name(train: TrainSpec, task: str) -> str:
    return train.loss or ("mse" if task == "regression" else "cross_entropy")


@torch.no_grad()
def _evaluate(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module, loss: str
) -> dict[str, float]:
    model.eval()
    out = torch.cat([model(X[i : i + 4096]) for i in range(0, len(X), 4096)])  # (N, K)
    res = {"val_loss": float(loss_fn(out, y))}
    if loss == "cross_entropy":
        res["val_accuracy"] = float((out.argmax(1) == y).float().mean())
    elif loss == "binary_cross_entropy":
        res["val_accuracy"] = float(((out > 0).float() == y).float().mean())
    else:
        res["val_mae"] = float((out - y).abs().mean())
    return res


def evaluate(model: nn.Module, X: np.ndarray, y: np.ndarray, *, loss: str) -> dict[str, float]:
    """``{"loss", "accuracy" (classification losses), "num_examples"}`` of ``model`` on these rows,
    with the loss and targets training uses (a federated node scores the incoming global model with
    it, the ServerApp its validation rows). No rows: the loss is NaN.

    >>> X = np.zeros((4, 3), dtype="float32"); y = np.array([0, 1, 0, 1])
    >>> evaluate(nn.Linear(3, 2), X, y, loss="cross_entropy")["num_examples"]
    4
    """
    if len(y) == 0:
        return {"loss": float("nan"), "num_examples": 0}
    Xt = torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32))
    res = _evaluate(model, Xt, _targets(y, loss), loss_function(loss), loss)
    out = {"loss": res["val_loss"], "num_examples": len(y)}
    if "val_accuracy" in res:
        out["accuracy"] = res["val_accuracy"]
    return out


def train_epochs(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    train: TrainSpec,
    *,
    task: str,
    epochs: int,
    seed: int,
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    dp: DPSpec | None = None,
    proximal_mu: float = 0.0,
    shard: Sharding | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    start_epoch: int = 0,
) -> list[dict[str, Any]]:
    """Train ``model`` in place for ``epochs`` and return per-epoch dicts
    (epoch, loss, lr, time_s, and val_loss/val_accuracy or val_mae with a validation split,
    epsilon with ``dp``). ``proximal_mu`` > 0 adds FedProx's term (mu/2)·||w - w_start||²,
    w_start being the weights this call started from (the global model in a federated round).
    With ``train.early_stopping`` and a validation split it stops when val_loss stops improving
    and restores the best weights. If ``should_stop()`` turns true it stops between batches and
    returns what it has. Exceptions raised by ``on_epoch`` (e.g. Optuna's ``TrialPruned``)
    propagate. ``shard`` trains as one data-parallel worker (``Sharding``); ``optimizer`` and
    ``start_epoch`` resume a run (a PBT trial restored from its checkpoint, epochs after ``start_epoch``).
    """
    loss = _loss_name(train, task)
    if len(X) != len(y):
        raise InvalidInput(f"{len(X)} inputs but {len(y)} targets")
    if len(X) == 0:
        raise InvalidInput("no training rows left after processing", hint="check drop_missing and the splits")
    torch.manual_seed(seed)
    Xt = torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32))
    yt = _targets(y, loss)
    val: tuple[torch.Tensor, torch.Tensor] | None = None  # (inputs, targets) of the validation rows
    if X_val is not None and y_val is not None and len(X_val) > 0:
        val = torch.as_tensor(np.ascontiguousarray(X_val, dtype=np.float32)), _targets(y_val, loss)
    has_val = val is not None
    loss_fn = loss_function(loss)
    if dp is not None and shard is not None:
        raise InvalidInput("invalid recipe at train.workers: DP-SGD trains in one process", hint="set workers: 1")
    opt = optimizer if optimizer is not None else make_optimizer(model, train)
    engine = dp_model = None
    batches: Any = None
    if dp is not None:
        model.train()  # Opacus refuses a model in eval mode
        dp_model, opt, batches, engine = _make_private(model, opt, Xt, yt, train, dp, epochs, seed)
    sched = make_schedule(opt, train, epochs)
    stopper = train.early_stopping if has_val else None
    best_loss, best_state, bad_epochs = math.inf, None, 0
    gen = torch.Generator().manual_seed(seed)
    history: list[dict[str, Any]] = []
    net = dp_model if dp_model is not None else shard.wrap(model) if shard is not None else model
    anchor = [p.detach().clone() for p in model.parameters()] if proximal_mu > 0 else None
    with warnings.catch_warnings():
        if dp_model is not None:  # Opacus' per-sample hooks on the first layer warn on every batch: harmless
            warnings.filterwarnings("ignore", message="Full backward hook")
        try:
            for epoch in range(start_epoch + 1, epochs + 1):
                if should_stop is not None and should_stop():
                    break
                t0 = time.perf_counter()
                net.train()
                total, seen, stopped = 0.0, 0, False
                if batches is not None:
                    epoch_batches = batches
                elif shard is not None:
                    epoch_batches = shard.batches(Xt, yt, train.batch_size, epoch)
                else:
                    epoch_batches = _batches(Xt, yt, train.batch_size, gen)
                for xb, yb in epoch_batches:
                    if len(xb) == 0:  # Poisson sampling can draw an empty batch
                        continue
                    if augment is not None:
                        xb = augment(xb)
                    opt.zero_grad(set_to_none=True)
                    batch_loss = loss_fn(net(xb), yb)
                    if anchor is not None:
                        prox = sum(
                            ((p - a) ** 2).sum() for p, a in zip(model.parameters(), anchor, strict=True)
                        )
                        batch_loss = batch_loss + 0.5 * proximal_mu * prox
                    batch_loss.backward()
                    opt.step()
                    total += batch_loss.item() * len(xb)
                    seen += len(xb)
                    if should_stop is not None and should_stop():
                        stopped = True
                        break
                row: dict[str, Any] = {
                    "epoch": epoch,
                    "loss": shard.end_epoch(model, total, seen) if shard is not None else total / max(seen, 1),
                    "lr": opt.param_groups[0]["lr"],
                }
                if sched is not None:
                    sched.step()
                if val is not None:
                    row.update(_evaluate(model, val[0], val[1], loss_fn, loss))
                if engine is not None and dp is not None:  # (the engine exists only with dp)
                    row["epsilon"] = float(engine.get_epsilon(dp.delta))
                row["time_s"] = time.perf_counter() - t0
                history.append(row)
                if stopped:
                    break
                if on_epoch is not None:
                    on_epoch(row)
                if stopper is not None:
                    if row["val_loss"] < best_loss - stopper.min_delta:
                        best_loss, bad_epochs = row["val_loss"], 0
                        best_state = copy.deepcopy(model.state_dict())
                    else:
                        bad_epochs += 1
                        if bad_epochs >= stopper.patience:
                            row["early_stopped"] = True
                            break
        finally:
            if dp_model is not None:
                dp_model._close()  # remove Opacus hooks so the model can be trained again (next round)
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


def _batches(X: torch.Tensor, y: torch.Tensor, batch_size: int, gen: torch.Generator) -> Any:
    order = torch.randperm(len(X), generator=gen)
    for i in range(0, len(X), batch_size):
        idx = order[i : i + batch_size]
        yield X[idx], y[idx]


def _make_private(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    X: torch.Tensor,
    y: torch.Tensor,
    train: TrainSpec,
    dp: DPSpec,
    epochs: int,
    seed: int,
) -> tuple[Any, Any, Any, Any]:
    """Wrap model, optimizer and data for DP-SGD (Opacus, RDP accountant)."""
    from opacus import PrivacyEngine
    from opacus.validators import ModuleValidator
    from torch.utils.data import DataLoader, TensorDataset

    problems = ModuleValidator.validate(model, strict=False)
    if problems:
        raise InvalidInput(
            f"this model cannot train with differential privacy: {problems[0]}",
            hint="set model.batch_norm: false",
        )
    loader = DataLoader(
        TensorDataset(X, y),
        batch_size=min(train.batch_size, len(X)),
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Opacus warns that its secure RNG is off (it is: not cryptographic)
        engine = PrivacyEngine(accountant="rdp")
        if dp.noise_multiplier is not None:
            m, o, dl = engine.make_private(
                module=model,
                optimizer=opt,
                data_loader=loader,
                noise_multiplier=dp.noise_multiplier,
                max_grad_norm=dp.max_grad_norm,
            )
        else:
            m, o, dl = engine.make_private_with_epsilon(
                module=model,
                optimizer=opt,
                data_loader=loader,
                target_epsilon=dp.epsilon,
                target_delta=dp.delta,
                epochs=epochs,
                max_grad_norm=dp.max_grad_norm,
            )
    return m, o, dl, engine


@torch.no_grad()
def predict_raw(model: nn.Module, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Raw model outputs (logits or regression values), (N, n_outputs)."""
    model.eval()
    Xt = torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32))
    return torch.cat([model(Xt[i : i + batch_size]) for i in range(0, len(Xt), batch_size)]).numpy()


def predict_proba(model: nn.Module, X: np.ndarray, *, task: str = "classification") -> np.ndarray:
    """Class probabilities (N, n_classes); a single-logit model gives two columns [1 - p, p]
    (``consortium.probabilities``, the formula the exported ONNX head runs). For regression, the
    predicted values (N,)."""
    out = predict_raw(model, X)
    if task == "regression":
        return out[:, 0] if out.shape[1] == 1 else out
    return probabilities(out).astype(np.float32)
