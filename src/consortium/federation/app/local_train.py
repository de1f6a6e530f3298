"""How good a model is on some rows: probabilities and loss/accuracy (node and server side).

Training itself is ``consortium.training.trainer.train_epochs`` (FedProx term and DP-SGD
included); this module only scores models the same way at the nodes and on the server.

>>> import numpy as np
>>> from torch import nn
>>> x = np.zeros((4, 3), dtype="float32"); y = np.array([0, 1, 0, 1])
>>> evaluate(nn.Linear(3, 2), x, y, task="classification", loss="cross_entropy")["num_examples"]
4
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


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
