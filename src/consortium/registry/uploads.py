"""Model uploads: ONNX files (validated in onnxruntime) and Keras 3 ``.keras`` files (converted to
ONNX). Pickle-based files are refused (``formats.detect_format`` says why and what to do).

>>> import onnx, onnx.helper as h
>>> x = h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3])
>>> g = h.make_graph([h.make_node("Relu", ["x"], ["y"])], "g", [x],
...                  [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 3])])
>>> data = h.make_model(g, opset_imports=[h.make_opsetid("", 17)], ir_version=9).SerializeToString()
>>> onnx_bytes, fmt = to_onnx("relu.onnx", data)
>>> fmt, onnx_bytes == data
('onnx', True)
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy.orm import Session

from consortium.errors import InvalidInput
from consortium.governance.principal import Principal
from consortium.governance.roles import Role
from consortium.governance.sealed import SealedBlobs
from consortium.registry.formats import detect_format, keras_to_onnx
from consortium.registry.models import check_model_name, register_version, split_ref
from consortium.serving.sessions import inspect_onnx
from consortium.store.tables.registry import ModelVersion

_KERAS_LOCK = threading.Lock()  # Keras export is not safe to run twice at once in one process


def to_onnx(filename: str, data: bytes) -> tuple[bytes, str]:
    """Upload bytes -> (validated ONNX bytes, source format). Raises ``InvalidInput``."""
    if not data:
        raise InvalidInput("the upload is empty", hint="send the model file as the request body")
    fmt = detect_format(filename, data[:65536])
    if fmt == "keras":
        with _KERAS_LOCK:
            return keras_to_onnx(data), "keras"
    inspect_onnx(data)
    return data, "onnx"


def upload_model(session: Session, p: Principal, blobs: SealedBlobs, name: str, filename: str, data: bytes,
                 *, description: str = "", task: str | None = None, class_names: list[str] | None = None,
                 metrics: dict[str, Any] | None = None) -> ModelVersion:
    """Register an uploaded file as a new version of ``name`` (``model`` or ``org/model`` in the
    caller's organization). Nothing is registered when the file is refused."""
    p.require(Role.member, "uploading a model")
    org, model_name = split_ref(name, p.org_name)
    if org != p.org_name:
        raise InvalidInput(f"you can only upload models to your own organization ({p.org_name})",
                           hint=f"use --name {model_name}")
    check_model_name(model_name)
    onnx_bytes, fmt = to_onnx(filename, data)
    return register_version(session, p, model_name, onnx=onnx_bytes, blobs=blobs, metrics=metrics,
                            lineage={"source": "upload", "filename": filename, "format": fmt},
                            task=task, class_names=class_names, description=description, source_format=fmt)
