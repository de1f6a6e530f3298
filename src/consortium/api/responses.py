"""Response classes shared by routes, and the error bodies the OpenAPI documents
(``consortium.api.openapi``)."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse, Response, StreamingResponse


class FastJSONResponse(JSONResponse):
    """JSON rendered by orjson: ~5x faster than the standard library on prediction answers, and
    numpy arrays and scalars serialize as they are (NaN and infinity become null, as JSON wants).

    >>> import numpy as np
    >>> FastJSONResponse({"p": np.float32(0.5), "y": np.array([1, 2])}).body
    b'{"p":0.5,"y":[1,2]}'
    """

    def render(self, content: Any) -> bytes:
        return dumps(content)


class PreparedJSON(Response):
    """JSON rendered by the caller (orjson, numpy-aware), sent as it is with its headers set
    directly: the prediction hot path skips Starlette's rendering and header building.

    >>> PreparedJSON(b'{"a":1}', [(b"x-a", b"1")]).raw_headers[-1]
    (b'x-a', b'1')
    """

    media_type = "application/json"

    def __init__(self, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = [(b"content-length", str(len(body)).encode()),
                            (b"content-type", b"application/json"), *(headers or ())]


def dumps(content: Any) -> bytes:
    """JSON bytes of ``content`` as ``FastJSONResponse`` renders them."""
    return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


class OctetStream(Response):
    """Raw bytes (a model's ONNX file): as ``response_class=`` it makes the OpenAPI say so."""

    media_type = "application/octet-stream"


class Png(Response):
    """A PNG picture (a model version's plots)."""

    media_type = "image/png"


class Download(StreamingResponse):
    """Bytes streamed as they are read (a dataset version's file)."""

    media_type = "application/octet-stream"


class EventStream(StreamingResponse):
    """Server-sent events (``text/event-stream``): a job's progress as it happens. As a route's
    ``response_class``, with ``responses=JOB_EVENTS``, the OpenAPI describes each event."""

    media_type = "text/event-stream"


_JOB_EVENT = {
    "type": "object", "required": ["data"],
    "properties": {"event": {"type": "string", "enum": ["progress", "log", "state", "end"]},
                   "id": {"type": "string", "pattern": "^[0-9]+$", "description": "the job event id"},
                   "data": {"type": "string", "contentMediaType": "application/json",
                            "contentSchema": {"type": "object", "description": "the job event (id, time, "
                                              "kind, data) as GET .../events lists it; {} for end"}}}}
JOB_EVENTS: dict[int | str, dict[str, Any]] = {
    200: {"description": "one event per job event, then `end`",
          "content": {"text/event-stream": {"schema": _JOB_EVENT}}}}


ERROR_CODES = ("bad_request", "unauthenticated", "permission_denied", "not_found", "method_not_allowed",
               "conflict", "payload_too_large", "invalid_input", "quota_exceeded", "unavailable",
               "integrity_error", "internal_error")


class ErrorDetail(BaseModel):
    """What went wrong (``message``) and how to fix it (``hint``); ``code`` is stable for programs."""

    code: str = Field(description="stable and machine-readable: " + ", ".join(ERROR_CODES),
                      examples=["not_found"])
    message: str = Field(description="what is wrong, for a person")
    hint: str | None = Field(default=None, description="how to fix it, when the hub knows")
    details: Any = Field(default=None, description="invalid_input: a list of {loc, msg}, one per field; "
                                                   "quota_exceeded: {retry_after}")


class ErrorOut(BaseModel):
    """The body of every error the hub answers (``consortium.api.errors``), outside /v2.

    >>> ErrorOut.model_validate({"error": {"code": "not_found", "message": "no dataset 'x'"}}).error.code
    'not_found'
    """

    error: ErrorDetail


class OipErrorOut(BaseModel):
    """The Open Inference Protocol's error body, on the /v2 routes: ``{"error": "..."}``."""

    error: str
