"""Open Inference Protocol routes (/v2) with an unmodified ``tritonclient.http`` against a real
uvicorn server, plus the protocol's error shape and access rules through plain HTTP."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
from registry_models import softmax_onnx

from consortium.errors import BadRequest
from consortium.serving import oip
from consortium.store.db import transaction

RNG = np.random.default_rng(3)
W, B = RNG.normal(size=(4, 3)), RNG.normal(size=3)


def _ref(x: np.ndarray) -> np.ndarray:
    z = x @ W + B
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.fixture(scope="module")
def dep(http: Any, services: Any, world: Any) -> dict[str, Any]:
    from consortium.registry import models as reg

    owner = world.actor(world.org(), "admin")
    with transaction(services.session_factory) as s:
        reg.register_version(s, owner.org_id, "oip-model", onnx=softmax_onnx(W, B), blobs=services.blobs)
    name = f"oip-{owner.org}"
    assert http.post("/api/v1/deployments", json={"name": name, "model": "oip-model"},
                     headers=owner.headers).status_code == 201
    return {"name": name, "owner": owner}


def test_tritonclient_works_unchanged_with_a_bearer_token(live_url: str, dep: dict[str, Any]) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    headers = {"Authorization": f"Bearer {dep['owner'].token}"}
    c = triton.InferenceServerClient(live_url.removeprefix("http://"))
    assert c.is_server_live() and c.is_server_ready()
    assert c.is_model_ready(dep["name"], headers=headers)
    meta = c.get_model_metadata(dep["name"], headers=headers)
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert meta["versions"] == ["1"]
    assert c.get_server_metadata(headers=headers)["name"] == "consortium"
    x = RNG.normal(size=(5, 4)).astype(np.float32)
    for binary in (True, False):
        inp = triton.InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x, binary_data=binary)
        out = triton.InferRequestedOutput("probabilities", binary_data=binary)
        # tritonclient adds Inference-Header-Content-Length to the dict it is given: pass a copy
        res = c.infer(dep["name"], [inp], outputs=[out], headers=dict(headers))
        np.testing.assert_allclose(res.as_numpy("probabilities"), _ref(x), rtol=1e-5, atol=1e-6)
    res = c.infer(dep["name"], [inp], model_version="1", headers=dict(headers))
    assert res.get_response()["model_version"] == "1"
    bad = triton.InferInput("input", [2, 3], "FP32")
    bad.set_data_from_numpy(np.zeros((2, 3), np.float32))
    with pytest.raises(InferenceServerException, match=r"\[-1, 4\]"):
        c.infer(dep["name"], [bad], headers=dict(headers))
    with pytest.raises(InferenceServerException, match="not found"):
        c.infer("no-such-model", [inp], headers=dict(headers))
    assert not c.is_model_ready(dep["name"])  # no credential: 401
    c.close()


def test_v2_errors_have_the_protocol_shape(http: Any, dep: dict[str, Any], world: Any) -> None:
    name, owner = dep["name"], dep["owner"]
    assert http.get("/v2/health/live").json() == {"live": True}
    r = http.get("/v2")
    assert r.status_code == 401 and isinstance(r.json()["error"], str)
    other = world.actor(world.org(), "owner")
    r = http.post(f"/v2/models/{name}/infer", json={"inputs": []}, headers=other.headers)
    assert r.status_code == 404 and isinstance(r.json()["error"], str)
    body = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "INT8", "data": [1, 2, 3, 4]}]}
    r = http.post(f"/v2/models/{name}/infer", json=body, headers=owner.headers)
    assert r.status_code == 400 and "float32" in r.json()["error"]
    r = http.post(f"/v2/models/{name}/versions/7/infer", json=body, headers=owner.headers)
    assert r.status_code == 404 and "serves version 1" in r.json()["error"]
    body["inputs"][0]["datatype"] = "FP32"
    r = http.post(f"/v2/models/{name}/infer", json=body, headers=owner.headers)
    assert r.status_code == 200 and r.json()["outputs"][0]["shape"] == [1, 3]


def test_v2_quota_gives_429_with_retry_after(http: Any, dep: dict[str, Any], world: Any) -> None:
    name, owner = dep["name"], dep["owner"]
    other = world.actor(world.org(), "member")
    http.post("/api/v1/grants", json={"resource_type": "deployment", "resource": name, "permission": "invoke",
                                      "grantee_org": other.org, "limits": {"per_day": 2}}, headers=owner.headers)
    body = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
    codes = [http.post(f"/v2/models/{name}/infer", json=body, headers=other.headers).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    r = http.post(f"/v2/models/{name}/infer", json=body, headers=other.headers)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0 and "per day" in r.json()["error"]


# A stale Inference-Header-Content-Length (issue 21, point 20). tritonclient.http writes the
# header into the headers dict its caller passes, so a caller who reuses one dict sends the length
# of an earlier binary call on a later JSON call. Triton's HTTP server (http_server.cc:
# GetInferenceHeaderLength takes the header as the JSON header's length, refuses one outside
# [0, content length], parses exactly that many bytes and answers "unexpected additional input
# data" for bytes left over) refuses such a request with a 400; the hub does too, but names the
# header and says why, instead of "the request header is not valid JSON".

def test_tritonclient_reusing_one_headers_dict_gets_a_400_naming_the_header(live_url: str,
                                                                           dep: dict[str, Any]) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    headers = {"Authorization": f"Bearer {dep['owner'].token}"}  # one dict, reused for every call
    c = triton.InferenceServerClient(live_url.removeprefix("http://"))
    x = RNG.normal(size=(2, 4)).astype(np.float32)
    binary = triton.InferInput("input", [2, 4], "FP32")
    binary.set_data_from_numpy(x, binary_data=True)
    c.infer(dep["name"], [binary], headers=headers)
    assert oip.HEADER_LENGTH in headers  # tritonclient wrote it into our dict
    plain = triton.InferInput("input", [2, 4], "FP32")
    plain.set_data_from_numpy(x, binary_data=False)
    with pytest.raises(InferenceServerException) as e:
        c.infer(dep["name"], [plain], outputs=[triton.InferRequestedOutput("probabilities", binary_data=False)],
                headers=headers)
    msg = str(e.value)
    assert oip.HEADER_LENGTH in msg and "stale" in msg and "fresh dict" in msg, msg
    assert "not valid JSON" not in msg
    # the same JSON call with a fresh dict works
    res = c.infer(dep["name"], [plain], outputs=[triton.InferRequestedOutput("probabilities", binary_data=False)],
                  headers={"Authorization": headers["Authorization"]})
    assert res.as_numpy("probabilities").shape == (2, 3)
    c.close()


def test_raw_bodies_with_a_wrong_length(http: Any, dep: dict[str, Any]) -> None:
    url, h = f"/v2/models/{dep['name']}/infer", dep["owner"].headers
    body = json.dumps({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
                                   "data": [1, 2, 3, 4]}]}).encode()
    for stale in (10, 0, len(body) - 1):  # cuts the JSON: the header is named, not a JSON error
        r = http.post(url, content=body, headers={**h, oip.HEADER_LENGTH: str(stale),
                                                  "content-type": "application/json"})
        assert r.status_code == 400 and oip.HEADER_LENGTH in r.json()["error"], r.text
        assert "binary_data_size" in r.json()["error"]
    # a complete JSON header followed by bytes nothing declared: the same clear 400
    padded = body + b"\x00" * 16
    r = http.post(url, content=padded, headers={**h, oip.HEADER_LENGTH: str(len(body))})
    assert r.status_code == 400 and oip.HEADER_LENGTH in r.json()["error"] and "stale" in r.json()["error"]
    # longer than the body, as Triton: refused, naming the header
    r = http.post(url, content=body, headers={**h, oip.HEADER_LENGTH: str(len(body) + 5)})
    assert r.status_code == 400 and oip.HEADER_LENGTH in r.json()["error"]
    # the exact length of a pure JSON body is fine (the header is then redundant)
    r = http.post(url, content=body, headers={**h, oip.HEADER_LENGTH: str(len(body))})
    assert r.status_code == 200, r.text


def test_declared_binary_data_keeps_its_own_errors() -> None:
    """With ``binary_data_size`` declared, a short or long tensor is still named by its input."""
    head = json.dumps({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32",
                                   "parameters": {"binary_data_size": 8}}]}).encode()
    ok = oip.parse_infer_request(head + np.array([1, 2], np.float32).tobytes(), len(head))
    assert ok.inputs["x"].tolist() == [[1.0, 2.0]]
    with pytest.raises(BadRequest, match="binary data ends at byte 8"):
        oip.parse_infer_request(head + b"\x00" * 4, len(head))
    with pytest.raises(BadRequest, match="add up to 8"):
        oip.parse_infer_request(head + b"\x00" * 12, len(head))
    with pytest.raises(BadRequest, match="not valid JSON"):  # a binary body cut in the wrong place
        oip.parse_infer_request(head + b"\x00" * 8, len(head) - 3)
