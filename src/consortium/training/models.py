"""The model zoo, built from the recipe's ``model`` section: CNN, MLP, logistic regression.

Every model maps a float32 batch to raw outputs (logits, or values for regression); heads that
turn logits into probabilities live in ``training.export``. Read top-down, nanoGPT style.

>>> import torch
>>> from consortium.recipe import CNNSpec
>>> m = build_model(CNNSpec(channels=[8], dense=[16]), (1, 8, 8), 10)
>>> m(torch.zeros(2, 1, 8, 8)).shape
torch.Size([2, 10])
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from consortium.errors import InvalidInput
from consortium.recipe import CNNSpec, LogisticSpec, MLPSpec
from consortium.training.model_size import check_model_size, conv_plan, n_outputs_for, parameter_count

__all__ = ["CNN", "MLP", "Logistic", "build_model", "count_parameters", "n_outputs_for", "parameter_count"]


class CNN(nn.Module):
    """Conv blocks (conv -> [batch norm] -> ReLU -> max pool) then dense layers.

    The seed's Keras model is ``CNNSpec(channels=[32], padding="valid", dense=[128])`` with one
    output and binary cross-entropy.
    """

    def __init__(self, spec: CNNSpec, input_shape: tuple[int, int, int], n_outputs: int) -> None:
        super().__init__()
        pad = spec.kernel_size // 2 if spec.padding == "same" else 0
        plan, (c, h, w) = conv_plan(spec, input_shape)  # the same plan model_size counts
        blocks: list[nn.Module] = []
        for b in plan:
            blocks.append(nn.Conv2d(b.in_c, b.out_c, spec.kernel_size, padding=pad))  # (B, out_c, h', w')
            if spec.batch_norm:
                blocks.append(nn.BatchNorm2d(b.out_c))
            blocks.append(nn.ReLU())
            if b.pool:
                blocks.append(nn.MaxPool2d(spec.pool))  # (B, out_c, h'/pool, w'/pool)
        self.features = nn.Sequential(*blocks)
        self.head = _dense_stack(c * h * w, spec.dense, n_outputs, spec.dropout, batch_norm=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, C', H', W')
        x = torch.flatten(x, 1)  # (B, C' * H' * W')
        out: torch.Tensor = self.head(x)  # (B, n_outputs)
        return out


class MLP(nn.Module):
    """Dense layers with ReLU (optional batch norm and dropout); images are flattened first."""

    def __init__(self, spec: MLPSpec, n_features: int, n_outputs: int) -> None:
        super().__init__()
        self.net = _dense_stack(n_features, spec.hidden, n_outputs, spec.dropout, batch_norm=spec.batch_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(torch.flatten(x, 1))  # (B, F) -> (B, n_outputs)
        return out


class Logistic(nn.Module):
    """One linear layer: logistic (softmax) regression, or linear regression with mse."""

    def __init__(self, n_features: int, n_outputs: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_features, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.linear(torch.flatten(x, 1))  # (B, F) -> (B, n_outputs)
        return out


def _dense_stack(
    n_in: int, widths: list[int], n_out: int, dropout: float, *, batch_norm: bool
) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in widths:
        layers.append(nn.Linear(n_in, width))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.ReLU())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        n_in = width
    layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


def _as_spec(spec: Any) -> CNNSpec | MLPSpec | LogisticSpec:
    if isinstance(spec, (CNNSpec, MLPSpec, LogisticSpec)):
        return spec
    if isinstance(spec, dict):
        kinds: dict[str, type[CNNSpec] | type[MLPSpec] | type[LogisticSpec]] = {
            "cnn": CNNSpec, "mlp": MLPSpec, "logistic": LogisticSpec}
        kind = spec.get("type")
        if kind not in kinds:
            raise InvalidInput(f"invalid recipe at model.type: {kind!r}", hint="use cnn, mlp or logistic")
        return kinds[kind].model_validate(spec)
    raise InvalidInput(f"not a model spec: {type(spec).__name__}")


def build_model(
    spec: CNNSpec | MLPSpec | LogisticSpec | dict[str, Any], input_shape: tuple[int, ...], n_outputs: int,
    *, max_params: int | None = None,
) -> nn.Module:
    """Build the network; ``input_shape`` excludes the batch: (F,) tabular or (C, H, W) images.
    With ``max_params``, a larger model is refused (``InvalidInput``) before any weight is allocated."""
    spec = _as_spec(spec)
    input_shape = tuple(int(d) for d in input_shape)
    if n_outputs < 1:
        raise InvalidInput(f"a model needs at least one output; got {n_outputs}")
    if max_params is not None:
        check_model_size(spec, input_shape, n_outputs, max_params)
    n_features = 1
    for d in input_shape:
        n_features *= d
    if isinstance(spec, CNNSpec):
        if len(input_shape) != 3:
            raise InvalidInput(
                f"a cnn needs image input (C, H, W); this data has shape {input_shape}",
                hint="use model type mlp or logistic for tabular data",
            )
        return CNN(spec, input_shape, n_outputs)
    if isinstance(spec, MLPSpec):
        return MLP(spec, n_features, n_outputs)
    return Logistic(n_features, n_outputs)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters of a built model (``parameter_count`` gives the same from the spec)."""
    return sum(p.numel() for p in model.parameters())
