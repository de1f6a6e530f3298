"""Model file formats accepted by the registry: ONNX, and Keras 3 ``.keras`` (converted to ONNX).

Pickle-based formats (``.pkl``, ``.pt``, ``.joblib``, ...) are refused: loading a pickle runs
arbitrary code chosen by whoever wrote the file.

>>> import onnx, onnx.helper as h
>>> x = h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3])
>>> y = h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 3])
>>> g = h.make_graph([h.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
>>> data = h.make_model(g, opset_imports=[h.make_opsetid("", 17)], ir_version=9).SerializeToString()
>>> detect_format("relu.onnx", data[:64])
'onnx'

What is accepted is then validated in onnxruntime by ``consortium.serving.sessions.inspect_onnx``,
the one way the hub loads a model.
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Literal

import numpy as np

from consortium.errors import InvalidInput
from consortium.serving.sessions import inspect_onnx, public_text

ModelFormat = Literal["onnx", "keras"]

PICKLE_EXTENSIONS = (".pkl", ".pickle", ".pt", ".pth", ".joblib", ".ckpt", ".sav")
_PICKLE_HINT = (
    "loading a pickle runs arbitrary code, so the registry refuses it; upload an ONNX file "
    "instead (e.g. torch.onnx.export(model, example, 'model.onnx', external_data=False)) "
    "or a Keras 3 '.keras' file (model.save('model.keras'))"
)

def _zip_names(first_bytes: bytes) -> list[str]:
    """Names of a zip's entries: from the central directory when complete, else from local headers."""
    try:
        with zipfile.ZipFile(io.BytesIO(first_bytes)) as zf:
            return zf.namelist()
    except (zipfile.BadZipFile, NotImplementedError, ValueError, OSError, EOFError, struct.error):
        pass  # a cut or damaged directory: read the local headers below
    names: list[str] = []
    pos = first_bytes.find(b"PK\x03\x04")
    while pos != -1 and pos + 30 <= len(first_bytes):
        name_len, extra_len = struct.unpack("<HH", first_bytes[pos + 26 : pos + 30])
        names.append(first_bytes[pos + 30 : pos + 30 + name_len].decode("utf-8", "replace"))
        pos = first_bytes.find(b"PK\x03\x04", pos + 30 + name_len + extra_len)
    return names


def _looks_like_pickle(b: bytes) -> bool:
    # Protocol 2+ starts with PROTO (0x80) and the protocol number; joblib/numpy pickles too.
    return len(b) >= 2 and b[0] == 0x80 and 2 <= b[1] <= 5


def detect_format(filename: str, first_bytes: bytes) -> ModelFormat:
    """Tell the format of an upload from its name and first bytes (a few KB are enough).

    Returns ``"onnx"`` or ``"keras"``; raises ``InvalidInput`` for pickles and unknown files.
    """
    name = (filename or "").lower()
    if name.endswith(PICKLE_EXTENSIONS):
        raise InvalidInput(f"{filename!r} is a pickle-based file", hint=_PICKLE_HINT)
    if _looks_like_pickle(first_bytes):
        raise InvalidInput(f"{filename!r} contains a Python pickle", hint=_PICKLE_HINT)
    if first_bytes[:4] == b"PK\x03\x04":
        names = _zip_names(first_bytes)
        if any(n == "data.pkl" or n.endswith("/data.pkl") or n.endswith(".pkl") for n in names):
            raise InvalidInput(f"{filename!r} is a PyTorch/pickle archive", hint=_PICKLE_HINT)
        if name.endswith(".keras") or "config.json" in names or "metadata.json" in names:
            return "keras"
        raise InvalidInput(
            f"{filename!r} is a zip archive but not a Keras 3 model (no config.json inside)",
            hint="upload a .onnx file or a Keras 3 .keras file saved with model.save('model.keras')",
        )
    if name.endswith(".keras"):
        raise InvalidInput(
            f"{filename!r} is named .keras but is not a zip archive",
            hint="save it with Keras 3: model.save('model.keras'); legacy .h5 files are not accepted",
        )
    if name.endswith(".onnx") or first_bytes[:1] == b"\x08":  # ModelProto field 1 (ir_version)
        if not first_bytes:
            raise InvalidInput(f"{filename!r} is empty", hint="upload the .onnx file itself")
        return "onnx"
    raise InvalidInput(
        f"cannot tell the format of {filename!r}",
        hint="upload an ONNX model (.onnx) or a Keras 3 model (.keras)",
    )


def keras_to_onnx(data: bytes) -> bytes:
    """Convert a Keras 3 ``.keras`` file to ONNX bytes (Keras on the torch backend, safe mode).

    Raises ``InvalidInput`` when the file cannot be loaded or exported.
    """
    os.environ.setdefault("KERAS_BACKEND", "torch")
    if os.environ["KERAS_BACKEND"] != "torch":
        raise InvalidInput(
            f"KERAS_BACKEND is {os.environ['KERAS_BACKEND']!r}; Keras conversion needs the torch backend",
            hint="unset KERAS_BACKEND or set it to 'torch' before starting the hub",
        )
    import keras  # lazy: importing Keras is slow and fixes the backend for the process

    if keras.backend.backend() != "torch":
        raise InvalidInput(
            f"Keras was already imported with the {keras.backend.backend()!r} backend",
            hint="set KERAS_BACKEND=torch before Keras is first imported",
        )
    if data[:4] != b"PK\x03\x04":
        raise InvalidInput("the .keras file is not a zip archive",
                           hint="save it with model.save('model.keras')")
    with tempfile.TemporaryDirectory(prefix="consortium-keras-") as tmp:
        src = Path(tmp) / "model.keras"
        src.write_bytes(data)
        try:
            model = keras.saving.load_model(src, compile=False, safe_mode=True)
        except Exception as e:
            raise InvalidInput(
                f"Keras cannot load this .keras file: {public_text(e)}",
                hint="save the model with Keras 3 (model.save('model.keras')) using built-in layers; "
                "Lambda layers and custom objects are refused in safe mode",
            ) from e
        out = Path(tmp) / "model.onnx"
        try:
            _call_once(model)  # a loaded model has never been called; export needs traced shapes
            model.export(str(out), format="onnx", verbose=False)
            onnx_bytes = out.read_bytes()
        except Exception as e:
            raise InvalidInput(
                f"exporting the Keras model to ONNX failed: {public_text(e)}",
                hint="export it yourself with model.export('model.onnx', format='onnx') and upload the ONNX",
            ) from e
    inspect_onnx(onnx_bytes)  # the result must load in onnxruntime
    return onnx_bytes


def _call_once(model: Any) -> None:
    """Run the model once on zeros shaped like its inputs (dynamic dimensions set to 1)."""
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise InvalidInput(
            "the Keras model declares no inputs",
            hint="build it with keras.Input(...) (Sequential or functional API) before saving",
        )
    dummies = [np.zeros([d or 1 for d in t.shape], dtype=str(t.dtype)) for t in inputs]
    model(dummies[0] if len(dummies) == 1 else dummies)

