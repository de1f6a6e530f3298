"""Open Inference Protocol codec, checked against tritonclient's own request builder and parser."""

from __future__ import annotations

import json

import numpy as np
import pytest
from serving_models import linear_onnx

from consortium.errors import BadRequest
from consortium.serving.oip import (
    HEADER_LENGTH,
    build_infer_response,
    error_body,
    model_metadata,
    parse_header_length,
    parse_infer_request,
)
from consortium.serving.predictor import OnnxPredictor

httpclient = pytest.importorskip("tritonclient.http")
Client = httpclient.InferenceServerClient

NUMERIC = {
    "BOOL": np.bool_, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
    "FP16": np.float16, "FP32": np.float32, "FP64": np.float64,
}


def _array(datatype: str, shape: tuple[int, ...] = (2, 3)) -> np.ndarray:
    rng = np.random.default_rng(len(datatype))
    dt = np.dtype(NUMERIC[datatype])
    if dt.kind == "b":
        return rng.random(shape) > 0.5
    if dt.kind in "iu":
        return rng.integers(0, 100, size=shape).astype(dt)
    return rng.normal(size=shape).astype(dt)


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("datatype", list(NUMERIC))
def test_tritonclient_requests_parse_for_every_datatype(datatype: str, binary: bool) -> None:
    arr = _array(datatype)
    inp = httpclient.InferInput("t", list(arr.shape), datatype)
    inp.set_data_from_numpy(arr, binary_data=binary)
    body, header_length = Client.generate_request_body([inp], request_id="r1")
    assert (header_length is not None) == binary
    req = parse_infer_request(body, None if header_length is None else str(header_length))
    got = req.inputs["t"]
    assert got.dtype == arr.dtype and got.shape == arr.shape
    np.testing.assert_array_equal(got, arr)
    assert req.id == "r1" and req.binary_data_output  # tritonclient asks for binary outputs by default


def test_bytes_tensors_binary_and_json() -> None:
    arr = np.array([[b"hello", b""], [b"\x00\xff", "ünï".encode()]], dtype=object)
    inp = httpclient.InferInput("s", [2, 2], "BYTES")
    inp.set_data_from_numpy(arr, binary_data=True)
    body, h = Client.generate_request_body([inp])
    got = parse_infer_request(body, h).inputs["s"]
    assert got.shape == (2, 2) and got.tolist() == arr.tolist()
    inp = httpclient.InferInput("s", [1, 2], "BYTES")
    inp.set_data_from_numpy(np.array([b"a", "ü".encode()], dtype=object).reshape(1, 2), binary_data=False)
    body, h = Client.generate_request_body([inp])
    assert parse_infer_request(body, h).inputs["s"].tolist() == [[b"a", "ü".encode()]]
    out, hl = build_infer_response("m", {"s": arr}, binary=True)
    assert Client.parse_response_body(out, header_length=hl).as_numpy("s").tolist() == arr.tolist()
    text = np.array([[b"hello", "ünï".encode()]], dtype=object)
    out, hl = build_infer_response("m", {"s": text}, binary=False)
    assert hl is None  # JSON BYTES come back as text
    assert Client.parse_response_body(out).as_numpy("s").tolist() == [["hello", "ünï"]]


@pytest.mark.parametrize("mode", ["binary", "json", "mixed"])
def test_responses_parse_with_tritonclient(mode: str) -> None:
    a, b = _array("FP32"), _array("INT64", (2,))
    x = httpclient.InferInput("x", [1], "FP32")
    x.set_data_from_numpy(np.zeros(1, np.float32), binary_data=False)
    outputs = [httpclient.InferRequestedOutput("b", binary_data=mode != "json"),
               httpclient.InferRequestedOutput("a", binary_data=mode == "binary")]
    body, h = Client.generate_request_body([x], outputs=outputs, request_id="7")
    req = parse_infer_request(body, h)
    assert req.output_names == ["b", "a"]
    out, hl = build_infer_response("lin", {"a": a, "b": b, "unasked": a}, req, model_version="3")
    assert (hl is None) == (mode == "json")
    res = Client.parse_response_body(out, header_length=hl)
    np.testing.assert_array_equal(res.as_numpy("a"), a)
    np.testing.assert_array_equal(res.as_numpy("b"), b)
    assert res.as_numpy("unasked") is None
    r = res.get_response()
    assert (r["model_name"], r["model_version"], r["id"]) == ("lin", "3", "7")
    assert [o["name"] for o in r["outputs"]] == ["b", "a"]


def test_end_to_end_with_a_real_model() -> None:
    p = OnnxPredictor(linear_onnx(), threads=1)
    x = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    inp = httpclient.InferInput("x", [3, 4], "FP32")
    inp.set_data_from_numpy(x)
    body, h = Client.generate_request_body([inp])
    req = parse_infer_request(body, h)
    out, hl = build_infer_response("lin", p.predict(p.validate(req.inputs, cast=False),
                                                    outputs=req.output_names), req)
    res = Client.parse_response_body(out, header_length=hl)
    np.testing.assert_allclose(res.as_numpy("y"), p.predict({"x": x})["y"])
    assert res.as_numpy("label").dtype == np.int64


@pytest.mark.parametrize(
    ("header", "extra", "message"),
    [
        ({"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]}, b"",
         r"shape \[2, 2\] holds 4 values but data has 3"),
        ({"inputs": [{"name": "x", "shape": [2], "datatype": "FP8", "data": [1, 2]}]}, b"",
         "unknown datatype 'FP8'"),
        ({"inputs": [{"name": "x", "shape": [2], "datatype": "INT8", "data": [1, 300]}]}, b"",
         r"outside the range of INT8"),
        ({"inputs": [{"name": "x", "shape": [2], "datatype": "INT32", "data": [1.5, 2]}]}, b"",
         "non-integer"),
        ({"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": ["a", "b"]}]}, b"",
         "must hold numbers"),
        ({"inputs": [{"name": "x", "shape": [-1], "datatype": "FP32", "data": [1]}]}, b"",
         "non-negative integers"),
        ({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32",
                      "parameters": {"binary_data_size": 8}}]}, b"\x00" * 8,
         r"shape \[1, 3\] of FP32 needs 12 bytes; binary_data_size is 8"),
        ({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32",
                      "parameters": {"binary_data_size": 12}}]}, b"\x00" * 4,
         "binary data ends at byte 12 but the body has only 4"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32",
                      "parameters": {"binary_data_size": 4}}]}, b"\x00" * 9,
         "9 bytes after the JSON header but the inputs' binary_data_size add up to 4"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]}, b"",
         "neither 'data' nor"),
        ({"inputs": []}, b"", "non-empty 'inputs'"),
        ({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}],
          "outputs": [{"name": "y", "parameters": {"classification": 3}}]}, b"", "classification"),
    ],
)
def test_bad_requests_name_expected_and_got(header: dict, extra: bytes, message: str) -> None:
    head = json.dumps(header).encode()
    with pytest.raises(BadRequest, match=message):
        parse_infer_request(head + extra, len(head) if extra or "binary" in json.dumps(header) else None)


def test_binary_body_without_header_length_says_how_to_fix() -> None:
    inp = httpclient.InferInput("x", [1, 2], "FP32")
    inp.set_data_from_numpy(np.ones((1, 2), np.float32))
    body, h = Client.generate_request_body([inp])
    with pytest.raises(BadRequest, match=HEADER_LENGTH):
        parse_infer_request(body, None)
    with pytest.raises(BadRequest, match="only"):
        parse_infer_request(body, len(body) + 1)
    with pytest.raises(BadRequest, match="integer"):
        parse_header_length("abc")


def test_model_metadata_and_errors() -> None:
    p = OnnxPredictor(linear_onnx(), threads=1)
    meta = model_metadata("lin", p.signature, versions=["1", "2"])
    assert meta == {
        "name": "lin", "versions": ["1", "2"], "platform": "onnxruntime_onnx",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 3]},
                    {"name": "label", "datatype": "INT64", "shape": [-1]}],
    }
    assert error_body(BadRequest("bad shape", hint="fix it")) == {"error": "bad shape (fix it)"}
    with pytest.raises(BadRequest, match="unknown output 'z'"):
        build_infer_response("m", {"y": np.zeros(1)},
                             parse_infer_request(json.dumps({"inputs": [{"name": "x", "shape": [1],
                                                 "datatype": "FP32", "data": [1]}],
                                                 "outputs": [{"name": "z"}]}).encode()))
