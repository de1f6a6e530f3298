"""Tiny ONNX models for the registry and deployment tests, built with onnx.helper (milliseconds)."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.helper as oh
import onnx.numpy_helper as onh


def softmax_onnx(w: np.ndarray, b: np.ndarray, input_name: str = "input",
                 output_name: str = "probabilities") -> bytes:
    """probabilities = softmax(x @ w + b); x: (N, F) float32."""
    x = oh.make_tensor_value_info(input_name, onnx.TensorProto.FLOAT, ["N", w.shape[0]])
    y = oh.make_tensor_value_info(output_name, onnx.TensorProto.FLOAT, ["N", w.shape[1]])
    nodes = [oh.make_node("MatMul", [input_name, "w"], ["xw"]), oh.make_node("Add", ["xw", "b"], ["z"]),
             oh.make_node("Softmax", ["z"], [output_name], axis=1)]
    g = oh.make_graph(nodes, "softmax", [x], [y], initializer=[onh.from_array(w.astype(np.float32), "w"),
                                                                 onh.from_array(b.astype(np.float32), "b")])
    return oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)], ir_version=9).SerializeToString()


def tiny_classifier(seed: int = 0, features: int = 4, classes: int = 3) -> bytes:
    rng = np.random.default_rng(seed)
    return softmax_onnx(rng.normal(size=(features, classes)), rng.normal(size=classes))


def constant_classifier(label: int, features: int = 4, classes: int = 3) -> bytes:
    """Always predicts ``label`` with probability ~1 (tells versions apart in switch tests)."""
    b = np.full(classes, -20.0)
    b[label] = 20.0
    return softmax_onnx(np.zeros((features, classes)), b)


def fit_logistic(X: np.ndarray, y: np.ndarray, classes: int, steps: int = 300, lr: float = 0.5) -> tuple[
        np.ndarray, np.ndarray]:
    """Multinomial logistic regression by gradient descent (numpy): a real trained model, fast."""
    w = np.zeros((X.shape[1], classes))
    b = np.zeros(classes)
    onehot = np.eye(classes)[y]
    for _ in range(steps):
        z = X @ w + b
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / len(X)
        w -= lr * X.T @ g
        b -= lr * g.sum(0)
    return w, b
