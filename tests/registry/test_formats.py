"""Model formats: ONNX inspection, pickle refusal, Keras 3 -> ONNX conversion."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnx.helper as oh
import pytest

from consortium.errors import InvalidInput
from consortium.registry.formats import detect_format, keras_to_onnx
from consortium.serving.sessions import inspect_onnx
from consortium.serving.signature import ModelSignature


def _two_input_model() -> bytes:
    a = oh.make_tensor_value_info("a", onnx.TensorProto.FLOAT, ["batch", 4])
    b = oh.make_tensor_value_info("b", onnx.TensorProto.INT64, [2, 3])
    y = oh.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 4])
    z = oh.make_tensor_value_info("z", onnx.TensorProto.INT64, [2, 3])
    g = oh.make_graph([oh.make_node("Relu", ["a"], ["y"]), oh.make_node("Identity", ["b"], ["z"])],
                      "g", [a, b], [y, z])
    m = oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)], ir_version=9)
    return m.SerializeToString()


def test_inspect_onnx_reads_names_shapes_and_dtypes() -> None:
    sig = inspect_onnx(_two_input_model())
    assert [(t.name, t.dtype, t.shape) for t in sig.inputs] == [
        ("a", "float32", (-1, 4)), ("b", "int64", (2, 3))]
    assert [(t.name, t.dtype, t.shape) for t in sig.outputs] == [
        ("y", "float32", (-1, 4)), ("z", "int64", (2, 3))]
    assert sig.opset == 17
    assert ModelSignature.from_json(sig.to_json()) == sig


@pytest.mark.parametrize("data", [b"", b"\x08\x07garbage-not-a-model", _two_input_model()[:-7]])
def test_inspect_onnx_refuses_empty_or_corrupt_bytes(data: bytes) -> None:
    with pytest.raises(InvalidInput) as e:
        inspect_onnx(data)
    assert "ONNX" in str(e.value) or "onnxruntime" in str(e.value)


@pytest.mark.parametrize("name", ["model.pkl", "model.pickle", "weights.pt", "w.pth", "clf.joblib"])
def test_detect_format_refuses_pickle_extensions(name: str) -> None:
    with pytest.raises(InvalidInput) as e:
        detect_format(name, b"\x08\x01")
    assert "arbitrary code" in str(e.value) and "ONNX" in str(e.value) and ".keras" in str(e.value)


def test_detect_format_refuses_pickle_bytes_and_torch_archives() -> None:
    with pytest.raises(InvalidInput, match="arbitrary code"):
        detect_format("model.onnx", pickle.dumps({"w": [1, 2, 3]}, protocol=4))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # the layout torch.save writes
        zf.writestr("archive/data.pkl", pickle.dumps({"w": 1}))
        zf.writestr("archive/version", "3")
    with pytest.raises(InvalidInput, match="arbitrary code"):
        detect_format("model.keras", buf.getvalue())
    with pytest.raises(InvalidInput, match="arbitrary code"):  # a prefix is enough
        detect_format("upload", buf.getvalue()[:200])


def test_detect_format_accepts_onnx_and_keras_and_rejects_unknown() -> None:
    data = _two_input_model()
    assert detect_format("m.onnx", data[:64]) == "onnx"
    assert detect_format("upload.bin", data[:64]) == "onnx"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("metadata.json", "{}")
        zf.writestr("config.json", "{}")
    assert detect_format("m.keras", buf.getvalue()) == "keras"
    assert detect_format("upload", buf.getvalue()[:100]) == "keras"
    with pytest.raises(InvalidInput, match="format"):
        detect_format("notes.txt", b"hello world")
    with pytest.raises(InvalidInput, match="not a zip"):
        detect_format("m.keras", b"\x89HDF\r\n")


def test_keras_cnn_converts_to_onnx_matching_predict(tmp_path: Path) -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    import onnxruntime as ort
    import torch

    torch.set_num_threads(1)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([  # the seed document's CNN
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(32, (3, 3), activation="relu"),
        keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    x = np.random.default_rng(0).random((5, 8, 8, 1), dtype=np.float32)
    expected = model.predict(x, verbose=0)
    path = tmp_path / "cnn.keras"
    model.save(path)
    data = path.read_bytes()
    assert detect_format("cnn.keras", data[:4096]) == "keras"

    onnx_bytes = keras_to_onnx(data)
    sig = inspect_onnx(onnx_bytes)
    assert sig.inputs[0].shape[1:] == (8, 8, 1) and sig.inputs[0].dtype == "float32"
    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    assert got.shape == (5, 1)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_keras_to_onnx_refuses_corrupt_file() -> None:
    with pytest.raises(InvalidInput, match="Keras"):
        keras_to_onnx(b"PK\x03\x04 truncated zip")
    with pytest.raises(InvalidInput, match="zip"):
        keras_to_onnx(b"not a zip at all")
