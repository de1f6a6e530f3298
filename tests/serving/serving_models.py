"""Tiny ONNX models built with onnx.helper (no torch import, milliseconds to build)."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.helper as oh
import onnx.numpy_helper as onh

W = np.arange(12, dtype=np.float32).reshape(4, 3) / 10.0
B = np.array([0.5, -0.5, 0.0], dtype=np.float32)


def linear_onnx(w: np.ndarray = W, b: np.ndarray = B, batch: int | str = "N") -> bytes:
    """y = x @ w + b, x: (batch, 4) float32 -> y: (batch, 3) float32; also an int64 argmax output."""
    x = oh.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [batch, w.shape[0]])
    y = oh.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [batch, w.shape[1]])
    k = oh.make_tensor_value_info("label", onnx.TensorProto.INT64, [batch])
    nodes = [
        oh.make_node("MatMul", ["x", "w"], ["xw"]),
        oh.make_node("Add", ["xw", "b"], ["y"]),
        oh.make_node("ArgMax", ["y"], ["label"], axis=1, keepdims=0),
    ]
    g = oh.make_graph(nodes, "linear", [x], [y, k],
                      initializer=[onh.from_array(w, "w"), onh.from_array(b, "b")])
    return oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)], ir_version=9).SerializeToString()


def linear_ref(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) @ W + B
