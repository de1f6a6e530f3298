"""One node's local work in a round: train the global model on local rows, evaluate it.

Home-made training loop (a few lines of plain PyTorch) because federated rounds need two things
the central trainer does not give: the FedProx proximal term ``mu/2 * ||w - w_global||^2`` and
DP-SGD whose noise is planned for the whole job (``privacy.NodePrivacy``) and whose spent
epsilon accumulates over rounds. DP-SGD itself is Opacus.

>>> import numpy as np, torch
>>> from torch import nn
>>> x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32"); y = (x[:, 0] > 0).astype("int64")
>>> m = nn.Sequential(nn.Linear(3, 2))
>>> out = train_local(m, x, y, task="classification", loss="cross_entropy", optimizer="adam",
...                   lr=0.05, batch_size=16, epochs=5, seed=0)
>>> out["loss"] < 0.7, evaluate(m, x, y, task="classification", loss="cross_entropy")["accuracy"] > 0.8
(True, True)
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def _criterion(task: str, loss: str) -> nn.Module:
    if task == "regression" or loss == "mse":
        return nn.MSELoss()
    if loss == "binary_cross_entropy":
        return nn.BCEWithLogitsLoss()
    return nn.CrossEntropyLoss()


def _targets(y: np.ndarray, task: str, loss: str) -> torch.Tensor:
    if task == "regression" or loss in ("mse", "binary_cross_entropy"):
        return torch.tensor(y, dtype=torch.float32).reshape(-1, 1)
    return torch.tensor(y, dtype=torch.long)


def _optimizer(name: str, params: Any, lr: float, weight_decay: float = 0.0,
               momentum: float = 0.9) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def train_local(model: nn.Module, x: np.ndarray, y: np.ndarray, *, task: str, loss: str,
                optimizer: str, lr: float, batch_size: int, epochs: int, seed: int,
                weight_decay: float = 0.0, proximal_mu: float = 0.0,
                noise_multiplier: float | None = None, max_grad_norm: float = 1.0) -> dict[str, Any]:
    """Train ``model`` in place; returns ``{"loss", "steps"}``. With ``noise_multiplier`` the
    step is DP-SGD (Opacus, Poisson sampling, per-sample clipping at ``max_grad_norm``)."""
    torch.manual_seed(seed)
    crit = _criterion(task, loss)
    data = TensorDataset(torch.tensor(x, dtype=torch.float32), _targets(y, task, loss))
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, generator=gen)
    anchor = [p.detach().clone() for p in model.parameters()] if proximal_mu > 0 else None
    opt = _optimizer(optimizer, model.parameters(), lr, weight_decay)
    net: nn.Module = model
    model.train()
    if noise_multiplier is not None:
        from opacus import PrivacyEngine

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            engine = PrivacyEngine(accountant="rdp", secure_mode=False)
            net, opt, loader = engine.make_private(
                module=model, optimizer=opt, data_loader=loader, noise_multiplier=noise_multiplier,
                max_grad_norm=max_grad_norm, poisson_sampling=True)
    net.train()
    total, count, steps = 0.0, 0, 0
    for _ in range(epochs):
        for xb, yb in loader:
            if xb.shape[0] == 0:
                continue
            opt.zero_grad()
            out = net(xb)
            batch_loss = crit(out, yb)
            value = batch_loss
            if anchor is not None:
                prox = sum(((p - a) ** 2).sum() for p, a in zip(model.parameters(), anchor, strict=False))
                value = batch_loss + proximal_mu / 2 * prox
            value.backward()
            opt.step()
            steps += 1
            total += float(batch_loss.detach()) * xb.shape[0]
            count += xb.shape[0]
    return {"loss": total / max(count, 1), "steps": steps}


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, *, task: str, loss: str) -> np.ndarray:
    """Class probabilities ``(N, K)`` (classification) or predictions ``(N,)`` (regression)."""
    model.eval()
    out = model(torch.tensor(x, dtype=torch.float32))
    if task == "regression" or loss == "mse":
        return out.reshape(-1).numpy()
    if loss == "binary_cross_entropy":
        p = torch.sigmoid(out.reshape(-1))
        return torch.stack([1 - p, p], dim=1).numpy()
    return torch.softmax(out, dim=1).numpy()


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, *, task: str, loss: str) -> dict[str, float]:
    """``{"loss", "accuracy"?, "num_examples"}`` of the model on these rows."""
    if len(y) == 0:
        return {"loss": float("nan"), "num_examples": 0}
    model.eval()
    with torch.no_grad():
        out = model(torch.tensor(x, dtype=torch.float32))
        value = float(_criterion(task, loss)(out, _targets(y, task, loss)))
    res = {"loss": value, "num_examples": int(len(y))}
    if task != "regression" and loss != "mse":
        proba = predict(model, x, task=task, loss=loss)
        res["accuracy"] = float((proba.argmax(axis=1) == y).mean())
    return res
