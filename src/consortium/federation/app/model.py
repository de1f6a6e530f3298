"""The federated model: a ``Scale`` layer with the global feature scaling, then the recipe's net.

The net comes from ``consortium.training.models.build_model``. Labels are encoded against the global
class list from ``features.GlobalStats`` so every node uses the same output index per class.

>>> from consortium.recipe import parse_recipe
>>> from consortium.federation.app.features import GlobalStats
>>> stats = GlobalStats("tabular", 4, [3], [0.0] * 3, [1.0] * 3, [0.0] * 3, [1.0] * 3, [0, 1])
>>> m = global_model(parse_recipe({"name": "x", "model": {"type": "mlp", "hidden": [4]}}), stats)
>>> import torch; m(torch.zeros(2, 3)).shape
torch.Size([2, 2])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from consortium.errors import InvalidInput
from consortium.federation.app.features import GlobalStats, scaling


class Scale(nn.Module):
    """``(x - offset) / divisor`` per feature (tabular) or per channel (image); NaN -> fill."""

    offset: torch.Tensor  # buffers, registered in __init__
    divisor: torch.Tensor
    fill: torch.Tensor

    def __init__(self, offset: np.ndarray, divisor: np.ndarray, fill: np.ndarray | None,
                 kind: str) -> None:
        super().__init__()
        shape = (1, -1, 1, 1) if kind == "image" else (1, -1)
        self.register_buffer("offset", torch.tensor(offset).reshape(shape))
        self.register_buffer("divisor", torch.tensor(divisor).reshape(shape))
        self.impute = fill is not None
        self.register_buffer("fill", torch.tensor(fill if fill is not None else offset).reshape(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.impute:
            x = torch.where(torch.isnan(x), self.fill.expand_as(x), x)
        return (x - self.offset) / self.divisor


def n_outputs(recipe: Any, stats: GlobalStats) -> int:
    if recipe.resolved_task == "regression":
        return 1
    if recipe.resolved_loss == "binary_cross_entropy":
        if len(stats.classes) != 2:
            raise InvalidInput(f"binary_cross_entropy needs 2 classes; the nodes hold {len(stats.classes)}")
        return 1
    return len(stats.classes)


def build_net(spec: Any, input_shape: tuple[int, ...], outputs: int) -> nn.Module:
    from consortium.training.models import build_model

    return build_model(spec, input_shape, outputs)


def global_model(recipe: Any, stats: GlobalStats, *, seed: int | None = None) -> nn.Module:
    """``Scale`` + net, with deterministic initial weights (``seed`` or the recipe's train seed)."""
    torch.manual_seed(recipe.train.seed if seed is None else seed)
    offset, divisor, fill = scaling(stats, recipe.process)
    net = build_net(recipe.model, tuple(stats.input_shape), n_outputs(recipe, stats))
    return nn.Sequential(Scale(offset, divisor, fill, stats.kind), net)


def encode_labels(y: np.ndarray, recipe: Any, stats: GlobalStats) -> np.ndarray:
    """Targets as class indices (classification) or float32 values (regression)."""
    if recipe.resolved_task == "regression":
        return y.astype(np.float32)
    index = {c: i for i, c in enumerate(stats.classes)}
    try:
        return np.array([index[v.item() if hasattr(v, "item") else v] for v in y], dtype=np.int64)
    except KeyError as e:
        raise InvalidInput(f"label {e.args[0]!r} is not among the federation's classes") from None
