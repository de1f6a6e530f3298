"""ONNX export: onnxruntime matches torch within 1e-4 at any batch size."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from consortium.recipe import CNNSpec, MLPSpec
from consortium.training.export import WithHead, export_onnx
from consortium.training.models import build_model


@pytest.mark.parametrize(
    "spec, shape, n_out, task, exporter",
    [
        (
            CNNSpec(channels=[8, 16], dense=[32], batch_norm=True),
            (1, 8, 8),
            10,
            "classification",
            "torchscript",
        ),
        (CNNSpec(channels=[8, 16], dense=[32], batch_norm=True), (1, 8, 8), 10, "classification", "dynamo"),
        (CNNSpec(channels=[4], padding="valid", dense=[8]), (1, 8, 8), 1, "classification", "torchscript"),
        (MLPSpec(hidden=[16]), (5,), 1, "regression", "torchscript"),
    ],
)
def test_onnxruntime_matches_torch(
    spec: object, shape: tuple[int, ...], n_out: int, task: str, exporter: str
) -> None:
    torch.manual_seed(0)
    model = build_model(spec, shape, n_out).eval()  # type: ignore[arg-type]
    data = export_onnx(model, shape, task=task, exporter=exporter)  # type: ignore[arg-type]
    onnx.checker.check_model(onnx.load_from_string(data))
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].name == "input"
    out_name = sess.get_outputs()[0].name
    assert out_name == ("prediction" if task == "regression" else "probabilities")
    for batch in (1, 7):
        x = np.random.default_rng(batch).normal(size=(batch, *shape)).astype(np.float32)
        got = sess.run(None, {"input": x})[0]
        with torch.no_grad():
            want = WithHead(model, task)(torch.from_numpy(x)).numpy()
        assert got.shape == want.shape
        assert np.abs(got - want).max() < 1e-4
        if task == "classification":
            assert got.shape[1] >= 2 and np.allclose(got.sum(1), 1, atol=1e-5)


@pytest.mark.parametrize("n_out, op", [(3, "Softmax"), (1, "Sigmoid")])
def test_exported_head_and_predict_proba_run_one_formula(n_out: int, op: str) -> None:
    """``consortium.probabilities`` twice: inside the exported graph (torch ops, traced) and in
    numpy (``predict_proba``, which training jobs and federated evaluation use); serving's two
    columns for a one-column model come from the same ``binary_pair``."""
    from consortium.probabilities import NUMPY, binary_pair
    from consortium.training.trainer import predict_proba

    torch.manual_seed(0)
    model = build_model(MLPSpec(hidden=[8]), (4,), n_out).eval()
    data = export_onnx(model, (4,), task="classification")
    assert op in {n.op_type for n in onnx.load_from_string(data).graph.node}  # the head is in the graph
    x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32) * 5
    got = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    want = predict_proba(model, x, task="classification")
    assert got.shape == want.shape == (6, max(n_out, 2)) and np.abs(got - want).max() < 1e-5
    if n_out == 1:
        np.testing.assert_allclose(binary_pair(want[:, 1:], NUMPY), want, atol=1e-7)
