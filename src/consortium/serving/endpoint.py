"""One model version as the hub serves it: the endpoint behind ``/predict`` and the Open Inference Protocol.

The contract follows LitServe's few hooks. An ``Endpoint`` is built once per version (immutable,
kept by ``ServingRuntime``) and every prediction passes through the same five of them:

==============  ===================================  ============================================
hook            ``/predict``                         Open Inference Protocol (``/v2``)
==============  ===================================  ============================================
decode          ``decode``: JSON ``inputs`` rows,    ``decode_tensors``: JSON or binary tensors
                objects by column or images
preprocess      ``preprocess``: the version's        none: the caller sends the model's tensors
                fitted preprocessing
predict         ``predict``: onnxruntime, batched    ``infer``: the same, named tensors
postprocess     ``postprocess``: probabilities and   none: the model's own outputs
                the winning class
encode          ``answer`` then ``encode``           ``encode_tensors``
==============  ===================================  ============================================

Decode and encode run per request on the event loop. Preprocess and postprocess work on whole
batches: ``predict`` hands them to the batcher as a ``Stage`` around the model call, so
concurrent requests share one numpy pass. The hooks are the prediction path itself, not a layer
over it (``bench/bench_serving.py`` measures it against a bare FastAPI + onnxruntime server).

>>> import asyncio, onnx, onnx.helper as h
>>> from consortium.serving.service import InferenceService
>>> from consortium.serving.sessions import inspect_onnx
>>> x = h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 2])
>>> p = h.make_tensor_value_info("p", onnx.TensorProto.FLOAT, ["N", 2])
>>> g = h.make_graph([h.make_node("Softmax", ["x"], ["p"], axis=1)], "g", [x], [p])
>>> model = h.make_model(g, opset_imports=[h.make_opsetid("", 17)]).SerializeToString()
>>> ep = Endpoint("v1", 1, "acme/spam", "classification", ["ham", "spam"], inspect_onnx(model), None)
>>> async def serve(body: bytes) -> bytes:
...     service = InferenceService({"v1": model}.__getitem__)
...     out = await ep.predict(service, ep.decode(body))
...     await service.aclose()
...     return ep.encode(ep.answer("spam-filter", out))
>>> asyncio.run(serve(b'{"inputs": [[0.0, 0.0], [0.0, 1.0986123]]}'))
b'{"deployment":"spam-filter","model":"acme/spam","version":1,"predictions":["ham","spam"],"probabilities":[[0.5,0.5],[0.25,0.75]],"class_names":["ham","spam"]}'
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from consortium.errors import BadRequest, InvalidInput
from consortium.probabilities import NUMPY, binary_pair
from consortium.serving import oip
from consortium.serving.service import InferenceService, Stage
from consortium.serving.signature import ModelSignature

RAW = "inputs"  # the decoded request array, before preprocessing
PREDICT_HINT = 'send {"inputs": [[...], ...]}'
INFER_HINT = 'send {"inputs": [{"name": ..., "shape": ..., "datatype": ..., "data": [...]}]}'


@dataclass(frozen=True)
class Endpoint:
    """A model version with what serving it needs: task, class names, signature, preprocessing."""

    id: str
    version: int
    model: str  # org/name
    task: str | None
    class_names: list[str] | None
    signature: ModelSignature
    preprocessor: Any  # consortium.processing.Preprocessor or None

    @functools.cached_property
    def label(self) -> str:
        """``org/model:version``, the model label of metrics."""
        return f"{self.model}:{self.version}"

    @functools.cached_property
    def classify(self) -> bool:
        return self.task == "classification" or (self.task is None and self.class_names is not None)

    @functools.cached_property
    def stage(self) -> Stage | None:
        """Preprocess and postprocess around the model call, once per batch, when the preprocessing
        decodes each request on its own (``Preprocessor.batchable``)."""
        if self.preprocessor is None or not self.preprocessor.batchable:
            return None
        return Stage("predict", self.preprocess, self.postprocess)

    @functools.cached_property
    def expected(self) -> str:
        """What a ``/predict`` body should hold, for error hints."""
        prep = self.preprocessor
        if prep is not None and prep.kind == "image":
            return f"send {{'inputs': [...]}} with images of shape {list(prep.image_shape)} (C, H, W) or flat"
        if prep is not None:
            cols = prep.input_columns
            shown = ", ".join(cols[:12]) + (", ..." if len(cols) > 12 else "")
            return f"send {{'inputs': [[...], ...]}} with rows of {len(cols)} values ({shown}) or objects by column"
        spec = self.signature.inputs[0]
        return f"send {{'inputs': [[...], ...]}} with rows shaped {list(spec.shape[1:])} (or flat) of {spec.dtype}"

    def names_for(self, classes: int) -> list[str]:
        """Class names for ``classes`` probabilities (their indexes when the names do not fit)."""
        names = self.class_names
        return names if names is not None and len(names) == classes else [str(i) for i in range(classes)]

    # ------------------------------------------------------------------------ decode
    def decode(self, body: bytes) -> list[Any]:
        """``/predict``: the body's ``inputs``, a non-empty list of rows (lists or objects by column)
        or images. NaN and infinity are refused naming the row (and column)."""
        try:
            payload = orjson.loads(body) if body else None
        except orjson.JSONDecodeError as e:
            raise _refusal(body, e) from None
        if not isinstance(payload, dict) or "inputs" not in payload:
            raise BadRequest("the body must be a JSON object with 'inputs'", hint=PREDICT_HINT)
        rows = payload["inputs"]
        if not isinstance(rows, list) or not rows:
            raise BadRequest("'inputs' must be a non-empty list of rows (or images)", hint=self.expected)
        return rows

    def decode_tensors(self, body: bytes, header_length: str | None) -> oip.InferRequest:
        """Open Inference Protocol: named tensors, JSON or binary (``header_length`` is the
        ``Inference-Header-Content-Length`` header)."""
        if not body:
            raise BadRequest("the request has no body", hint=INFER_HINT)
        return oip.parse_infer_request(body, header_length)

    # ------------------------------------------------------------------------ preprocess, postprocess
    def preprocess(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Batch level: the concatenated decoded requests -> the model's input."""
        return {self.signature.inputs[0].name: self.preprocessor.finish_inputs(feed[RAW])}

    def postprocess(self, out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Batch level: a classifier's first output -> ``probabilities`` (a one-column probability
        becomes ``[1 - p, p]``) and the winning ``index``; other models' outputs as they are."""
        y = next(iter(out.values()))
        if self.classify and y.ndim == 2:
            probs = binary_pair(y, NUMPY) if y.shape[1] == 1 else y
            return {"probabilities": probs, "index": probs.argmax(axis=1)}
        return out

    # ------------------------------------------------------------------------ predict
    async def predict(self, service: InferenceService, rows: list[Any]) -> dict[str, np.ndarray]:
        """``/predict``: preprocess, the model, postprocess (batched with concurrent calls)."""
        prep = self.preprocessor
        try:
            if self.stage is not None:
                return await service.infer(self.id, {RAW: prep.decode_inputs(rows)}, stage=self.stage)
            if prep is not None:
                x = prep.transform_inputs(rows)
                return self.postprocess(await service.infer(self.id, {self.signature.inputs[0].name: x}))
            return self.postprocess(await service.infer_rows(self.id, rows))
        except InvalidInput as e:
            raise BadRequest(e.message, hint=self.expected) from None

    async def infer(self, service: InferenceService, request: oip.InferRequest) -> dict[str, np.ndarray]:
        """Open Inference Protocol: the model on the caller's tensors, its outputs by name."""
        return await service.infer(self.id, request.inputs, outputs=request.output_names, cast=False)

    # ------------------------------------------------------------------------ encode
    def answer(self, deployment: str, out: dict[str, np.ndarray]) -> dict[str, Any]:
        """The ``/predict`` answer for one request's share of the outputs (what the monitor logs)."""
        body: dict[str, Any] = {"deployment": deployment, "model": self.model, "version": self.version}
        if "index" in out:
            probs = out["probabilities"]
            names = self.names_for(probs.shape[1])
            body.update(predictions=[names[i] for i in out["index"].tolist()],
                        probabilities=np.ascontiguousarray(probs), class_names=names)
            return body
        y = next(iter(out.values()))
        if self.task == "regression":
            body["predictions"] = (y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y).tolist()
        else:
            body["predictions"] = y.tolist()
            body["outputs"] = {k: v.tolist() for k, v in out.items()}
        return body

    @staticmethod
    def encode(answer: dict[str, Any]) -> bytes:
        """JSON bytes of an answer (numpy-aware; NaN and infinity become null)."""
        return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)

    def encode_tensors(self, deployment: str, outputs: dict[str, np.ndarray],
                       request: oip.InferRequest) -> tuple[bytes, int | None]:
        """The protocol's answer: ``(body, binary header length or None for pure JSON)``."""
        return oip.build_infer_response(deployment, outputs, request, model_version=str(self.version))

    def metadata(self, deployment: str) -> dict[str, Any]:
        """The protocol's model metadata (``GET /v2/models/{deployment}``)."""
        return oip.model_metadata(deployment, self.signature, [str(self.version)])


def _refusal(body: bytes, error: orjson.JSONDecodeError) -> BadRequest:
    """The 400 for a ``/predict`` body orjson refuses: when it is JSON but for NaN or infinity
    (``NaN``, ``Infinity``, ``1e999``), the error names the row (and column), as the Open Inference
    Protocol's does for its inputs; otherwise it is the parser's message."""
    try:
        loose = json.loads(body)
    except (ValueError, RecursionError):
        loose = None
    rows = loose.get("inputs") if isinstance(loose, dict) else None
    for i, row in enumerate(rows if isinstance(rows, list) else []):
        found = _non_finite(row)
        if found is not None:
            path, value = found
            cols = [k for k in path if isinstance(k, str)]
            where = f", column {cols[0]!r}" if cols else f", value {path[0]}" if len(path) == 1 else ""
            what = "NaN" if math.isnan(value) else "infinity"
            return BadRequest(f"input 'inputs' row {i}{where} holds {what}; the model takes finite numbers",
                              hint="send a number in every place: JSON has no NaN or infinity")
    return BadRequest(f"the body is not valid JSON ({error})", hint=PREDICT_HINT)


def _non_finite(row: Any) -> tuple[tuple[int | str, ...], float] | None:
    """(path, value) of the first NaN or infinity in a row of nested lists and objects."""
    stack: list[tuple[tuple[int | str, ...], Any]] = [((), row)]
    while stack:  # iterative: the nesting depth is the caller's choice
        path, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return path, value
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        stack.extend(reversed([((*path, k), v) for k, v in items]))
    return None
