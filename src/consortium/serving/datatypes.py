"""Tensor datatypes of the Open Inference Protocol (KServe V2) and their numpy equivalents.

>>> datatype_of(np.dtype("float32")), numpy_dtype("INT64")
('FP32', dtype('int64'))
>>> describe("float32")
'float32 (FP32)'
"""

from __future__ import annotations

from typing import Any

import numpy as np

from consortium.errors import BadRequest

# Little-endian numpy dtypes, as the protocol's binary extension requires.
_TO_NUMPY: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("bool"),
    "INT8": np.dtype("<i1"), "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("<u1"), "UINT16": np.dtype("<u2"), "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
    "BYTES": np.dtype("object"),
}
_FROM_NUMPY: dict[str, str] = {v.name: k for k, v in _TO_NUMPY.items()}
_FROM_NUMPY.update({"bytes_": "BYTES", "str_": "BYTES", "object": "BYTES"})

DATATYPES: tuple[str, ...] = tuple(_TO_NUMPY)


def numpy_dtype(datatype: str) -> np.dtype[Any]:
    """numpy dtype of a protocol datatype ("FP32" -> float32); unknown -> BadRequest."""
    try:
        return _TO_NUMPY[datatype]
    except (KeyError, TypeError):
        raise BadRequest(
            f"unknown datatype {datatype!r}", hint=f"use one of {', '.join(DATATYPES)}"
        ) from None


def datatype_of(dtype: np.dtype[Any] | str) -> str:
    """Protocol datatype of a numpy dtype (float32 -> "FP32"); strings and bytes -> "BYTES"."""
    dt = np.dtype(dtype)
    if dt.kind in ("U", "S", "O"):
        return "BYTES"
    name = _FROM_NUMPY.get(dt.newbyteorder("<").name if dt.byteorder == ">" else dt.name)
    if name is None:
        raise BadRequest(f"numpy dtype {dt} has no Open Inference Protocol datatype",
                         hint=f"use one of {', '.join(DATATYPES)}")
    return name


def describe(dtype: np.dtype[Any] | str) -> str:
    """'float32 (FP32)': the numpy name with the protocol name, for error messages."""
    dt = np.dtype(dtype)
    try:
        return f"{dt.name} ({datatype_of(dt)})"
    except BadRequest:
        return dt.name
