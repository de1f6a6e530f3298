"""A model's interface: its named input and output tensors, as read from the loaded ONNX graph.

The registry stores it with every version (``ModelSignature.to_dict``); serving checks requests
against it and publishes it as Open Inference Protocol metadata.

>>> sig = ModelSignature((TensorSpec("x", "float32", (-1, 3)),), (TensorSpec("y", "float32", (-1, 3)),))
>>> ModelSignature.from_json(sig.to_json()) == sig
True
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from consortium.errors import InvalidInput

# onnxruntime's type strings ("tensor(float)") -> numpy dtype names.
_ORT_TYPES: dict[str, str] = {
    "tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
    "tensor(int8)": "int8", "tensor(int16)": "int16", "tensor(int32)": "int32", "tensor(int64)": "int64",
    "tensor(uint8)": "uint8", "tensor(uint16)": "uint16", "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64", "tensor(bool)": "bool", "tensor(string)": "object",
}


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor of a model: numpy dtype name and shape with -1 for dynamic dimensions."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TensorSpec:
        return cls(name=str(d["name"]), dtype=str(d["dtype"]), shape=tuple(int(s) for s in d["shape"]))


@dataclass(frozen=True)
class ModelSignature:
    """The inputs and outputs of a model, as read from its ONNX graph (JSON-serializable)."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    opset: int | None = None
    producer: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "opset": self.opset,
            "producer": self.producer,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSignature:
        return cls(
            inputs=tuple(TensorSpec.from_dict(t) for t in d["inputs"]),
            outputs=tuple(TensorSpec.from_dict(t) for t in d["outputs"]),
            opset=d.get("opset"),
            producer=str(d.get("producer", "")),
        )

    @classmethod
    def from_json(cls, text: str) -> ModelSignature:
        return cls.from_dict(json.loads(text))


def _dims(shape: Any) -> tuple[int, ...]:
    """onnxruntime shape (ints, symbolic names or None) -> ints with -1 for dynamic."""
    if shape is None:
        return ()
    return tuple(int(d) if isinstance(d, int) and d >= 0 else -1 for d in shape)


def signature_of_session(session: Any, *, opset: int | None = None, producer: str = "") -> ModelSignature:
    """Read the signature of a loaded ``onnxruntime.InferenceSession``."""

    def spec(arg: Any) -> TensorSpec:
        dtype = _ORT_TYPES.get(arg.type)
        if dtype is None:
            raise InvalidInput(
                f"tensor {arg.name!r} has type {arg.type}, which serving does not support",
                hint="use plain tensors of float, int, uint, bool or string elements",
            )
        return TensorSpec(name=arg.name, dtype=dtype, shape=_dims(arg.shape))

    return ModelSignature(
        inputs=tuple(spec(a) for a in session.get_inputs()),
        outputs=tuple(spec(a) for a in session.get_outputs()),
        opset=opset,
        producer=producer,
    )
