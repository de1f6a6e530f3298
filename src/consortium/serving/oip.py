"""Open Inference Protocol (KServe V2) codec: request bodies to numpy arrays and back. Pure.

Supports JSON tensors and the binary tensor data extension: the body is a JSON header of
``Inference-Header-Content-Length`` bytes followed by raw little-endian tensors, each input
naming its ``parameters.binary_data_size``. Outputs are returned in binary when the request
asks (``outputs[i].parameters.binary_data`` or ``parameters.binary_data_output``), which
``tritonclient`` does by default. Errors go back as ``{"error": "..."}`` (``error_body``).

Bodies are always valid JSON: NaN and infinity in a JSON output are written as ``null`` (as
``/predict`` writes them; binary outputs carry the IEEE values), and non-finite inputs, JSON or
binary, are refused by the model's input check (``predictor.refuse_non_finite``) with a 400
naming the input and row.

>>> import json, numpy as np
>>> body = json.dumps({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32",
...                                "data": [1.5, 2.5]}]}).encode()
>>> req = parse_infer_request(body)
>>> req.inputs["x"]
array([[1.5, 2.5]], dtype=float32)
>>> out, header_length = build_infer_response("m", {"y": req.inputs["x"] * 2}, req)
>>> json.loads(out)["outputs"][0]["data"], header_length
([3.0, 5.0], None)
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from consortium.errors import BadRequest, ConsortiumError
from consortium.serving.datatypes import DATATYPES, datatype_of, numpy_dtype
from consortium.serving.signature import ModelSignature

HEADER_LENGTH = "Inference-Header-Content-Length"
JSON_CONTENT_TYPE = "application/json"
BINARY_CONTENT_TYPE = "application/octet-stream"
PLATFORM = "onnxruntime_onnx"
_BINARY_HINT = ("if you send binary tensors, set the Inference-Header-Content-Length header to the "
                "byte length of the JSON header that starts the body")


_STALE_HINT = ("send the header only with binary tensors, set to the byte length of the JSON header; "
               "tritonclient writes it into the headers dict you pass, so pass a fresh dict to each call")


def _declares_binary(body: bytes) -> bool:
    """Whether the whole body, read as JSON, declares binary tensor data (``binary_data_size`` in
    an input's parameters). A body that is not JSON as a whole may well be binary: True."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return True
    inputs = doc.get("inputs") if isinstance(doc, dict) else None
    return not isinstance(inputs, list) or any(
        isinstance(i, dict) and isinstance(i.get("parameters"), dict) and "binary_data_size" in i["parameters"]
        for i in inputs)


def _stale_length(h: int, size: int) -> BadRequest:
    """A length header that leaves bytes after the JSON header while no input declares binary data:
    refused, as Triton's HTTP server does (it parses exactly the header's bytes, then answers
    "unexpected additional input data"), but naming the header."""
    return BadRequest(f"{HEADER_LENGTH} is {h} but the body is {size} bytes and no input declares "
                      "binary data (parameters.binary_data_size): the header does not belong to this "
                      "request (a stale value?)", hint=_STALE_HINT,
                      details={"header": HEADER_LENGTH, "value": h, "body_bytes": size})


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool | None = None  # None: follow the request's binary_data_output


@dataclass
class InferRequest:
    """A parsed inference request: named input arrays and how to return the outputs."""

    inputs: dict[str, np.ndarray]
    outputs: list[RequestedOutput] = field(default_factory=list)  # empty: every output
    id: str | None = None
    binary_data_output: bool = False
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def output_names(self) -> list[str] | None:
        """Names of the requested outputs, or None for all of them."""
        return [o.name for o in self.outputs] or None


def parse_header_length(value: str | int | None) -> int | None:
    """The ``Inference-Header-Content-Length`` header as an int (None when absent)."""
    if value is None or value == "":
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{HEADER_LENGTH} must be an integer; got {value!r}") from None
    if n < 0:
        raise BadRequest(f"{HEADER_LENGTH} must be >= 0; got {n}")
    return n


def _fail(name: str, message: str, hint: str | None = None) -> BadRequest:
    return BadRequest(f"input {name!r}: {message}", hint=hint)


def _shape_of(name: str, shape: Any) -> tuple[int, ...]:
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise _fail(name, f"shape must be a list of non-negative integers; got {shape!r}")
    return tuple(shape)


def _decode_bytes_tensor(name: str, raw: bytes | memoryview, count: int) -> np.ndarray:
    """BYTES binary layout: each element is a 4-byte little-endian length, then its bytes."""
    items: list[bytes] = []
    pos = 0
    raw = bytes(raw)
    while pos < len(raw):
        if pos + 4 > len(raw):
            raise _fail(name, "BYTES data ends inside an element's 4-byte length prefix")
        (n,) = struct.unpack_from("<I", raw, pos)
        if pos + 4 + n > len(raw):
            raise _fail(name, f"BYTES element {len(items)} claims {n} bytes past the end of its data")
        items.append(raw[pos + 4: pos + 4 + n])
        pos += 4 + n
    if len(items) != count:
        raise _fail(name, f"shape holds {count} elements but the BYTES data has {len(items)}")
    arr = np.empty(count, dtype=object)
    arr[:] = items
    return arr


def _encode_bytes_tensor(arr: np.ndarray) -> bytes:
    parts = []
    for v in arr.ravel(order="C"):
        b = v if isinstance(v, bytes) else str(v).encode("utf-8")
        parts.append(struct.pack("<I", len(b)) + b)
    return b"".join(parts)


def _from_binary(name: str, datatype: str, shape: tuple[int, ...], raw: memoryview) -> np.ndarray:
    count = int(np.prod(shape, dtype=np.int64))
    if datatype == "BYTES":
        return _decode_bytes_tensor(name, raw, count).reshape(shape)
    dt = numpy_dtype(datatype)
    need = count * dt.itemsize
    if len(raw) != need:
        raise _fail(name, f"shape {list(shape)} of {datatype} needs {need} bytes; "
                          f"binary_data_size is {len(raw)}")
    return np.frombuffer(raw, dtype=dt).reshape(shape)


def _from_json(name: str, datatype: str, shape: tuple[int, ...], data: Any) -> np.ndarray:
    count = int(np.prod(shape, dtype=np.int64))
    if not isinstance(data, list):
        data = [data]
    if datatype == "BYTES":
        flat = np.asarray(data, dtype=object).ravel()
        if not all(isinstance(v, str) for v in flat):
            raise _fail(name, "BYTES data must be strings")
        arr = np.empty(flat.size, dtype=object)
        try:
            arr[:] = [v.encode("utf-8") for v in flat]
        except UnicodeEncodeError:  # a lone surrogate ("\ud800") in the JSON string
            raise _fail(name, "BYTES data holds a string that is not valid Unicode") from None
    else:
        want = numpy_dtype(datatype)
        try:
            parsed = np.asarray(data)
        except ValueError:
            raise _fail(name, "data is a ragged nested list", hint="send a flat, row-major list") from None
        kind = parsed.dtype.kind
        if kind not in "biuf" and parsed.size:
            raise _fail(name, f"{datatype} data must hold numbers; got {parsed.dtype.name} values")
        if want.kind in "iub" and kind == "f":
            raise _fail(name, f"{datatype} data holds non-integer numbers", hint="send FP32/FP64 or integers")
        if want.kind in "iu" and parsed.size:
            info = np.iinfo(want)
            if parsed.min() < info.min or parsed.max() > info.max:
                raise _fail(name, f"values fall outside the range of {datatype} [{info.min}, {info.max}]")
        arr = parsed.astype(want).ravel()
    if arr.size != count:
        raise _fail(name, f"shape {list(shape)} holds {count} values but data has {arr.size}")
    return arr.reshape(shape)


def parse_infer_request(body: bytes, header_length: str | int | None = None) -> InferRequest:
    """Parse an infer request body; ``header_length`` is the Inference-Header-Content-Length
    header (None for a pure JSON body). Raises ``BadRequest`` naming what is wrong."""
    h = parse_header_length(header_length)
    if h is not None and h > len(body):
        raise BadRequest(f"{HEADER_LENGTH} is {h} but the body has only {len(body)} bytes",
                         hint=_STALE_HINT)
    header_bytes = body if h is None else body[:h]
    try:
        header = json.loads(header_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        if h is not None and h < len(body) and not _declares_binary(body):
            raise _stale_length(h, len(body)) from None
        raise BadRequest(f"the request header is not valid JSON ({e})",
                         hint=_BINARY_HINT if h is None else None) from None
    if not isinstance(header, dict) or not isinstance(header.get("inputs"), list) or not header["inputs"]:
        raise BadRequest("the request must be a JSON object with a non-empty 'inputs' list",
                         hint='e.g. {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", '
                              '"data": [1, 2, 3, 4]}]}')
    binary = memoryview(body)[h:] if h is not None else memoryview(b"")
    offset = 0
    inputs: dict[str, np.ndarray] = {}
    for i, spec in enumerate(header["inputs"]):
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise BadRequest(f"inputs[{i}] must be an object with a 'name'")
        name = spec["name"]
        if name in inputs:
            raise _fail(name, "appears twice in 'inputs'")
        datatype = spec.get("datatype")
        if datatype not in DATATYPES:
            raise _fail(name, f"unknown datatype {datatype!r}", hint=f"use one of {', '.join(DATATYPES)}")
        shape = _shape_of(name, spec.get("shape"))
        params = spec.get("parameters") or {}
        if not isinstance(params, dict):
            raise _fail(name, "'parameters' must be an object")
        if "shared_memory_region" in params:
            raise _fail(name, "shared-memory tensors are not supported", hint="send the data in the body")
        if "binary_data_size" in params:
            size = params["binary_data_size"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise _fail(name, f"binary_data_size must be a non-negative integer; got {size!r}")
            if h is None:
                raise _fail(name, f"binary_data_size is set but there is no {HEADER_LENGTH} header",
                            hint=_BINARY_HINT)
            if offset + size > len(binary):
                raise _fail(name, f"binary data ends at byte {offset + size} but the body has only "
                                  f"{len(binary)} bytes after the JSON header")
            inputs[name] = _from_binary(name, datatype, shape, binary[offset:offset + size])
            offset += size
        elif "data" in spec:
            inputs[name] = _from_json(name, datatype, shape, spec["data"])
        else:
            raise _fail(name, "has neither 'data' nor parameters.binary_data_size")
    if offset != len(binary):
        if offset == 0 and h is not None:  # nothing declared binary: the length is what is wrong
            raise _stale_length(h, len(body))
        raise BadRequest(f"the body has {len(binary)} bytes after the JSON header but the inputs' "
                         f"binary_data_size add up to {offset}")
    params = header.get("parameters") or {}
    if not isinstance(params, dict):
        raise BadRequest("the request's 'parameters' must be an object")
    rid = header.get("id")
    if isinstance(rid, str) and not rid.isascii():
        try:
            rid.encode("utf-8")  # echoed in the answer: a lone surrogate could not be written back
        except UnicodeEncodeError:
            raise BadRequest("the request 'id' is not valid Unicode") from None
    return InferRequest(inputs=inputs, outputs=_parse_outputs(header.get("outputs")),
                        id=rid if isinstance(rid, str) else None,
                        binary_data_output=bool(params.get("binary_data_output")), parameters=dict(params))


def _parse_outputs(outputs: Any) -> list[RequestedOutput]:
    if outputs is None:
        return []
    if not isinstance(outputs, list):
        raise BadRequest("'outputs' must be a list of {\"name\": ...} objects")
    result = []
    for i, o in enumerate(outputs):
        if not isinstance(o, dict) or not isinstance(o.get("name"), str):
            raise BadRequest(f"outputs[{i}] must be an object with a 'name'")
        params = o.get("parameters") or {}
        if params.get("classification"):
            raise BadRequest(f"output {o['name']!r}: the classification extension is not supported",
                             hint="request the raw output and take the top classes on the client")
        if "shared_memory_region" in params:
            raise BadRequest(f"output {o['name']!r}: shared-memory outputs are not supported")
        b = params.get("binary_data")
        result.append(RequestedOutput(o["name"], None if b is None else bool(b)))
    return result


def build_infer_response(
    model_name: str,
    outputs: Mapping[str, np.ndarray],
    request: InferRequest | None = None,
    *,
    model_version: str | None = None,
    binary: bool | None = None,
) -> tuple[bytes, int | None]:
    """Encode outputs as a response body; returns ``(body, header_length)``.

    ``header_length`` is None for a pure JSON body (send ``Content-Type: application/json``);
    otherwise send it as ``Inference-Header-Content-Length`` with ``application/octet-stream``.
    ``binary`` forces every output's encoding; by default the request decides. Outputs are
    returned in the order the request asked for them (all of them if it named none).
    """
    wanted = request.outputs if request and request.outputs else [RequestedOutput(n) for n in outputs]
    default = request.binary_data_output if request else False
    entries: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for want in wanted:
        if want.name not in outputs:
            raise BadRequest(f"unknown output {want.name!r}",
                             hint=f"the model produces: {', '.join(outputs)}")
        arr = np.asarray(outputs[want.name])
        datatype = datatype_of(arr.dtype)
        entry: dict[str, Any] = {"name": want.name, "datatype": datatype, "shape": list(arr.shape)}
        as_binary = binary if binary is not None else (want.binary if want.binary is not None else default)
        if as_binary:
            raw = _encode_bytes_tensor(arr) if datatype == "BYTES" else np.ascontiguousarray(
                arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        elif datatype == "BYTES":
            entry["data"] = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                             for v in arr.ravel()]
        else:
            entry["data"] = arr.ravel().tolist()
        entries.append(entry)
    header: dict[str, Any] = {"model_name": model_name}
    if model_version is not None:
        header["model_version"] = str(model_version)
    if request is not None and request.id is not None:
        header["id"] = request.id
    header["outputs"] = entries
    head = orjson.dumps(header)  # NaN and infinity -> null: the body stays valid JSON
    if not chunks:
        return head, None
    return head + b"".join(chunks), len(head)


def model_metadata(name: str, signature: ModelSignature, versions: list[str] | None = None,
                   platform: str = PLATFORM) -> dict[str, Any]:
    """The body of ``GET /v2/models/{name}[/versions/{v}]``."""

    def tensors(specs: Any) -> list[dict[str, Any]]:
        return [{"name": t.name, "datatype": datatype_of(t.dtype), "shape": list(t.shape)} for t in specs]

    return {"name": name, "versions": [str(v) for v in versions or []], "platform": platform,
            "inputs": tensors(signature.inputs), "outputs": tensors(signature.outputs)}


def server_metadata(name: str = "consortium", version: str = "") -> dict[str, Any]:
    """The body of ``GET /v2``."""
    return {"name": name, "version": version, "extensions": ["binary_tensor_data"]}


def error_body(error: BaseException | str) -> dict[str, str]:
    """``{"error": "..."}``, the error shape the protocol (and tritonclient) expects."""
    if isinstance(error, ConsortiumError):
        return {"error": str(error)}
    return {"error": str(error) or type(error).__name__}
