"""Open Inference Protocol (KServe V2) answers: server and model metadata, readiness, inference.

They document the ``/v2`` routes' OpenAPI; the field order is the order the protocol's bodies
are written in, so validating an answer through them serializes the same bytes. Inference is
answered by ``consortium.api.front`` (JSON or the binary tensor extension), so ``InferResponse``
documents only the JSON header: a binary output carries ``parameters.binary_data_size`` and no
``data``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from consortium.api.schemas import Out


class ServerMetadata(Out):
    name: str
    version: str
    extensions: list[str]


class Live(Out):
    live: bool


class Ready(Out):
    ready: bool


class ModelReady(Out):
    name: str
    ready: bool


class TensorBase(BaseModel):
    name: str
    datatype: str  # BOOL, INT64, FP32, BYTES, ...
    shape: list[int]  # -1 for a dynamic dimension


class TensorMetadata(TensorBase, Out):
    pass


class ModelMetadata(Out):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class OutputTensor(TensorBase, Out):
    data: list[Any] | None = None  # flat, row-major; absent for a binary output
    parameters: dict[str, Any] | None = None  # {"binary_data_size": n} for a binary output


class InferResponse(Out):
    model_name: str
    model_version: str | None = None
    id: str | None = None  # the request's id, when it sent one
    outputs: list[OutputTensor]
