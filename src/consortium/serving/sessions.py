"""onnxruntime sessions: the one way the hub loads a model, wherever it loads one.

Registration (uploads, Keras conversion, training and federated jobs) validates with
``inspect_onnx``; serving loads with ``load_onnx_session``. Both refuse ONNX external data first
(``consortium.serving.external_data``) and hand onnxruntime the bytes that were checked, with its
own external-data guards set, never a path.

>>> import onnx, onnx.helper as h
>>> x = h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3])
>>> y = h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 3])
>>> g = h.make_graph([h.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
>>> sig = inspect_onnx(h.make_model(g, opset_imports=[h.make_opsetid("", 17)], ir_version=9).SerializeToString())
>>> sig.inputs[0].name, sig.inputs[0].shape, sig.inputs[0].dtype
('x', (-1, 3), 'float32')
"""

from __future__ import annotations

import re
from typing import Any

from consortium.errors import InvalidInput
from consortium.serving.external_data import canonical_bytes, harden, refuse_external_data
from consortium.serving.signature import ModelSignature, signature_of_session

_QUOTED_PATH = re.compile(r"""(["'])[^"'\n]*[\\/][^"'\n]*\1""")
_PATH = re.compile(r"\S*[\\/]\S*")


def public_text(error: BaseException, limit: int = 400) -> str:
    """A library's error message fit for callers: paths (the hub's files, temporary folders,
    the library's source files) become ``<path>``, and it is shortened.

    >>> public_text(RuntimeError('External data path does not exist: "/srv/hub home/master.key"'))
    'External data path does not exist: <path>'
    """
    text = _QUOTED_PATH.sub("<path>", str(error).strip())
    return _PATH.sub("<path>", text)[:limit]


def load_onnx_session(data: bytes, options: Any = None) -> Any:
    """Build an ``onnxruntime.InferenceSession`` (CPU) from model bytes; bad bytes -> InvalidInput.

    The bytes are checked for external data first (``refuse_external_data``), onnxruntime gets
    what was checked, with its own external-data guards set (``harden``), and never a path.
    """
    return _checked_session(data, options)[0]


def _checked_session(data: bytes, options: Any) -> tuple[Any, Any]:
    """(session, checked ``onnx.ModelProto``) of ONNX bytes."""
    import onnxruntime as ort

    if not data:
        raise InvalidInput("the ONNX model is empty (0 bytes)", hint="upload the .onnx file itself")
    proto = refuse_external_data(data)
    if options is None:
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
    try:
        session = ort.InferenceSession(canonical_bytes(proto), sess_options=harden(options),
                                       providers=["CPUExecutionProvider"], read_config_from_model=0)
    except Exception as e:  # onnxruntime raises its own exception types; map them at the boundary
        raise InvalidInput(
            f"onnxruntime cannot load this model: {public_text(e)}",
            hint="check that the file is a complete ONNX model saved in one file "
            "(torch.onnx.export(..., external_data=False)) with an opset onnxruntime supports",
        ) from e
    return session, proto


def inspect_onnx(data: bytes) -> ModelSignature:
    """Validate ONNX bytes by loading them in onnxruntime and return their signature.

    Raises ``InvalidInput`` for empty, corrupt or unsupported models and for models whose
    tensors live outside the file (external data).
    """
    session, proto = _checked_session(data, None)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    producer = f"{proto.producer_name} {proto.producer_version}".strip()
    return signature_of_session(session, opset=opset, producer=producer)
