"""An onnxruntime predictor set up for CPU serving: one session per model per process.

The session runs with intra-op threads matched to the cores this process may use (divided by
the number of serving processes), one inter-op thread, sequential execution and all graph
optimizations. ``InferenceSession.run`` is thread-safe, so one predictor serves every request.

>>> import onnx, onnx.helper as h, numpy as np
>>> x = h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 2])
>>> y = h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 2])
>>> g = h.make_graph([h.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
>>> p = OnnxPredictor(h.make_model(g, opset_imports=[h.make_opsetid("", 17)]).SerializeToString())
>>> p.predict({"x": np.array([[-1.0, 2.0]], dtype=np.float32)})["y"]
array([[0., 2.]], dtype=float32)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from consortium.errors import BadRequest, InvalidInput
from consortium.serving.datatypes import describe
from consortium.serving.sessions import load_onnx_session
from consortium.serving.signature import ModelSignature, TensorSpec, signature_of_session


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def session_options(*, threads: int | None = None, workers: int = 1, allow_spinning: bool = False) -> Any:
    """onnxruntime ``SessionOptions`` for CPU serving.

    ``threads`` defaults to each serving process's share of the cores (available cores divided by
    ``workers``) less one core kept for its event loop (HTTP, JSON, auth, accounting), at least 1.
    On 2 cores a second intra-op thread made the digits CNN slower, not faster: 9.4 vs 7.4 µs a
    single-row call and 54.7 vs 32.9 µs of CPU for 32 rows. Spinning threads cut latency a little
    but burn idle CPU that the HTTP side needs, so they are off by default.
    """
    import onnxruntime as ort

    if workers < 1:
        raise InvalidInput(f"workers must be >= 1; got {workers}")
    n = threads if threads is not None else max(1, available_cores() // workers - 1)
    if n < 1:
        raise InvalidInput(f"threads must be >= 1; got {n}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = n
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
    opts.log_severity_level = 3  # errors only
    return opts


def refuse_non_finite(name: str, arr: np.ndarray) -> None:
    """Raise ``BadRequest`` naming the input and row when a float array holds NaN or infinity.

    One rule for ``/predict`` and the Open Inference Protocol (JSON or binary tensors): a model
    answer computed from NaN is noise, and JSON has no way to write it back. About 1 µs a
    request-sized array.

    >>> refuse_non_finite("x", np.array([[1.0, 2.0], [3.0, np.inf]]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    consortium.errors.BadRequest: input 'x' row 1 holds infinity; the model takes finite numbers (...)
    """
    if arr.dtype.kind not in "fc" or np.isfinite(arr).all():
        return
    first = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
    what = "NaN" if np.isnan(arr[first]) else "infinity"
    where = f" row {first[0]}" if first else ""
    raise BadRequest(f"input {name!r}{where} holds {what}; the model takes finite numbers",
                     hint="send a number in every place: impute missing values before sending, "
                          "NaN and infinity are refused")


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _spec_text(spec: TensorSpec) -> str:
    return f"{describe(spec.dtype)} with shape {_shape_text(spec.shape)} (-1 = any size)"


class OnnxPredictor:
    """Runs one ONNX model on CPU; checks inputs against the model's signature.

    ``model`` is the ONNX bytes or a path to them. Raises ``InvalidInput`` if the model does not
    load; ``predict`` raises ``BadRequest`` for inputs that do not fit the model.
    """

    def __init__(
        self,
        model: bytes | str | Path,
        *,
        name: str = "",
        threads: int | None = None,
        workers: int = 1,
        allow_spinning: bool = False,
    ) -> None:
        data = Path(model).read_bytes() if isinstance(model, (str, Path)) else bytes(model)
        self.name = name
        self.nbytes = len(data)
        self._session = load_onnx_session(
            data, session_options(threads=threads, workers=workers, allow_spinning=allow_spinning))
        self.signature: ModelSignature = signature_of_session(self._session)
        self._inputs = {t.name: t for t in self.signature.inputs}
        self._output_names = [t.name for t in self.signature.outputs]

    @property
    def batchable(self) -> bool:
        """True when every input has a dynamic first (batch) dimension."""
        return all(len(t.shape) >= 1 and t.shape[0] == -1 for t in self.signature.inputs)

    def validate(self, batch: Mapping[str, Any], *, cast: bool = True) -> dict[str, np.ndarray]:
        """Check names, dtypes and shapes; return contiguous arrays of the model's dtypes.

        With ``cast`` a numeric array of the same kind or a safely castable one (float64 for a
        float32 input, int32 for int64) is converted; otherwise a dtype mismatch is refused.
        """
        if not isinstance(batch, Mapping):
            raise BadRequest(f"inputs must be a mapping of input name to array; got {type(batch).__name__}")
        unknown = [k for k in batch if k not in self._inputs]
        if unknown:
            raise BadRequest(f"unknown input {unknown[0]!r}",
                             hint=f"the model takes: {', '.join(self._inputs)}")
        out: dict[str, np.ndarray] = {}
        for name, spec in self._inputs.items():
            if name not in batch:
                raise BadRequest(f"missing input {name!r}", hint=f"send {name!r} as {_spec_text(spec)}")
            out[name] = self._check(spec, batch[name], cast)
        return out

    def _check(self, spec: TensorSpec, value: Any, cast: bool) -> np.ndarray:
        want = np.dtype(spec.dtype)
        try:
            arr = value if isinstance(value, np.ndarray) else np.asarray(value)
        except (ValueError, TypeError) as e:
            raise BadRequest(f"input {spec.name!r} is not a rectangular array: {e}",
                             hint=f"send {_spec_text(spec)}") from None
        if arr.dtype != want:
            ok = want.kind == "O" and arr.dtype.kind in "USO"
            ok = ok or (cast and arr.dtype.kind in "biuf" and want.kind in "biuf"
                        and np.can_cast(arr.dtype, want, casting="same_kind"))
            if not ok:
                raise BadRequest(
                    f"input {spec.name!r} has dtype {describe(arr.dtype)}; the model expects "
                    f"{describe(want)}", hint=f"send {_spec_text(spec)}")
            arr = arr.astype(want)
        if arr.ndim != len(spec.shape) or any(w not in (-1, g) for w, g in zip(spec.shape, arr.shape, strict=False)):
            raise BadRequest(
                f"input {spec.name!r} has shape {_shape_text(arr.shape)}; the model expects "
                f"{_shape_text(spec.shape)}", hint=f"send {_spec_text(spec)}")
        refuse_non_finite(spec.name, arr)
        return np.ascontiguousarray(arr)

    def predict(self, batch: Mapping[str, Any], *, validate: bool = True,
                outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """Run the model; returns every output (or those named in ``outputs``) by name."""
        feed = self.validate(batch) if validate else dict(batch)
        names = outputs or self._output_names
        missing = [n for n in names if n not in self._output_names]
        if missing:
            raise BadRequest(f"unknown output {missing[0]!r}",
                             hint=f"the model produces: {', '.join(self._output_names)}")
        try:
            results = self._session.run(names, feed)
        except Exception as e:  # onnxruntime's own error types, mapped at the boundary
            raise BadRequest(f"the model could not run on this input: {str(e).strip()[:300]}",
                             hint="check the input values and shapes against the model's metadata") from e
        return dict(zip(names, results, strict=False))

    def predict_rows(self, rows: Any) -> dict[str, np.ndarray]:
        """Single-input models: take rows of flat values (N, k) and reshape them to the input.

        ``[[...64 floats...]]`` feeds a model whose input is (-1, 1, 8, 8).
        """
        if len(self._inputs) != 1:
            raise BadRequest(f"the model has {len(self._inputs)} inputs; name them",
                             hint=f"send {{'inputs': {{{', '.join(repr(n) for n in self._inputs)}: ...}}}}")
        spec = next(iter(self._inputs.values()))
        want = np.dtype(spec.dtype)
        try:
            arr = np.asarray(rows, dtype=want if want.kind in "biuf" else None)
        except (ValueError, TypeError) as e:
            raise BadRequest(f"inputs are not a rectangular array of numbers: {e}",
                             hint=f"send {_spec_text(spec)}") from None
        inner = spec.shape[1:]
        if arr.ndim == 2 and len(inner) > 1 and -1 not in inner and arr.shape[1] == int(np.prod(inner)):
            arr = arr.reshape((arr.shape[0], *inner))
        return self.predict({spec.name: arr})

    def __repr__(self) -> str:
        return f"OnnxPredictor(name={self.name!r}, nbytes={self.nbytes}, inputs={list(self._inputs)})"
