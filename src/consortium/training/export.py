"""ONNX export: the trained network plus its output head, one self-contained file.

Classification models export probabilities (softmax; a single-logit binary model exports two
columns [1 - p, p]: ``consortium.probabilities``, run on torch tensors so that it is traced into the
graph) under the output name ``probabilities``; regression exports ``prediction``.
The batch axis is dynamic.

Two exporters: ``torchscript`` (default) traces the module, about 0.05 s for these models;
``dynamo`` (torch's newer default, needs onnxscript) took 2-6 s per export on this machine, more
than training a digits CNN, so it is the fallback when tracing fails. Both are checked against
torch in the tests (max abs diff < 1e-4).

>>> import numpy as np, onnxruntime as ort
>>> from consortium.recipe import MLPSpec
>>> from consortium.training.models import build_model
>>> m = build_model(MLPSpec(hidden=[4]), (3,), 2)
>>> sess = ort.InferenceSession(export_onnx(m, (3,)))
>>> sess.run(None, {"input": np.zeros((5, 3), np.float32)})[0].shape
(5, 2)
"""

from __future__ import annotations

import io
import logging
import warnings
from typing import Any, Literal

import torch
from torch import nn

from consortium.probabilities import Ops, probabilities

INPUT_NAME = "input"


# ``consortium.probabilities``' formula on torch tensors: traced into the exported graph.
TORCH: Ops[torch.Tensor] = Ops(torch.sigmoid, lambda x: torch.softmax(x, dim=1),
                               lambda xs: torch.cat(xs, dim=1))


class WithHead(nn.Module):
    """The network followed by what turns its raw outputs into what serving returns."""

    def __init__(self, model: nn.Module, task: str) -> None:
        super().__init__()
        self.model = model
        self.task = task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.model(x)  # (B, K)
        if self.task == "regression":
            return out
        return probabilities(out, TORCH)  # (B, max(K, 2)): softmax, or [1 - p, p] for one logit


def output_name(task: str) -> str:
    return "prediction" if task == "regression" else "probabilities"


def signature(
    input_shape: tuple[int, ...], n_outputs: int, task: str, n_classes: int | None = None
) -> dict[str, Any]:
    """The exported model's interface (batch axis as -1)."""
    width = n_outputs if task == "regression" else (n_classes or max(2, n_outputs))
    return {
        "inputs": [{"name": INPUT_NAME, "shape": [-1, *input_shape], "dtype": "float32"}],
        "outputs": [{"name": output_name(task), "shape": [-1, width], "dtype": "float32"}],
    }


def export_onnx(
    model: nn.Module,
    input_shape: tuple[int, ...],
    *,
    task: str = "classification",
    exporter: Literal["torchscript", "dynamo"] = "torchscript",
) -> bytes:
    """Serialize ``model`` (with its output head) to ONNX bytes; input ``input`` (-1, *input_shape)."""
    head = WithHead(model, task).eval()
    example = torch.zeros(2, *input_shape)
    if exporter == "torchscript":
        try:
            return _export_torchscript(head, example, task)
        except Exception:  # noqa: BLE001, S110 - an op tracing cannot handle: the dynamo exporter may
            pass
    return _export_dynamo(head, example, task)


def _export_torchscript(head: nn.Module, example: torch.Tensor, task: str) -> bytes:
    buf = io.BytesIO()
    out = output_name(task)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter is marked deprecated
        torch.onnx.export(
            head,
            (example,),
            buf,  # type: ignore[arg-type]  # torch takes a binary file too; its hint names only paths
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[out],
            dynamic_axes={INPUT_NAME: {0: "batch"}, out: {0: "batch"}},
            opset_version=17,
        )
    return buf.getvalue()


def _export_dynamo(head: nn.Module, example: torch.Tensor, task: str) -> bytes:
    buf = io.BytesIO()
    batch = torch.export.Dim("batch", min=1)
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                head,
                (example,),
                buf,  # type: ignore[arg-type]  # as above: torch takes a binary file too
                input_names=[INPUT_NAME],
                output_names=[output_name(task)],
                dynamic_shapes=({0: batch},),
                external_data=False,
                verbose=False,
            )
    finally:
        for lg, level in zip(loggers, levels, strict=False):
            lg.setLevel(level)
    return buf.getvalue()
