"""Security issue 15, findings 1 and 11, through the real HTTP API.

Finding 1: an ONNX file whose tensors live in "external data" made onnxruntime read a file of the
hub's (``CONSORTIUM_HOME/master.key``) and hand its bytes back as a model output. Uploads refuse
it (422, no path, the same answer whether the file exists or not), and a model smuggled into
storage past the upload cannot be served or explained.

Finding 11: the Open Inference Protocol took NaN and infinity and answered with invalid JSON; now
both prediction routes refuse non-finite inputs (JSON or binary) with a 400 naming the input and
row, and outputs are always valid JSON.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.helper as oh
import onnx.numpy_helper as onh
import pytest

from consortium.store.db import transaction

SECRET = b"TOP-SECRET-0123456789abcdef"
N = len(SECRET)
UINT8 = onnx.TensorProto.UINT8
FLOAT = onnx.TensorProto.FLOAT


# ------------------------------------------------------------------------------------ models
def _external(name: str, location: str, n: int = N) -> onnx.TensorProto:
    """A uint8 tensor of ``n`` bytes kept in external data at ``location``."""
    t = onnx.TensorProto(name=name, data_type=UINT8, dims=[n], data_location=onnx.TensorProto.EXTERNAL)
    for key, value in (("location", location), ("length", str(n))):
        t.external_data.add(key=key, value=value)
    return t


def _model(graph: onnx.GraphProto, **kw: Any) -> bytes:
    return oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)], ir_version=9, **kw).SerializeToString()


def _io() -> tuple[list[onnx.ValueInfoProto], list[onnx.ValueInfoProto]]:
    """A float input the leak ignores (the protocol needs one) and the uint8 output it fills."""
    return ([oh.make_tensor_value_info("x", FLOAT, ["N", 4])], [oh.make_tensor_value_info("y", UINT8, [N])])


def leak_initializer(location: str) -> bytes:
    ins, outs = _io()
    return _model(oh.make_graph([oh.make_node("Identity", ["w"], ["y"])], "leak", ins, outs,
                                initializer=[_external("w", location)]))


def leak_constant(location: str) -> bytes:
    ins, outs = _io()
    return _model(oh.make_graph([oh.make_node("Constant", [], ["y"], value=_external("c", location))],
                                "leak", ins, outs))


def leak_subgraph(location: str) -> bytes:
    """The tensor sits in an If branch: a subgraph in a node attribute."""
    ins, outs = _io()
    branch_out = [oh.make_tensor_value_info("b", UINT8, [N])]
    then = oh.make_graph([oh.make_node("Identity", ["w2"], ["b"])], "then", [], branch_out,
                         initializer=[_external("w2", location)])
    other = oh.make_graph([oh.make_node("Constant", [], ["b"], value=onh.from_array(np.zeros(N, np.uint8)))],
                          "else", [], branch_out)
    nodes = [oh.make_node("Constant", [], ["c"], value=onh.from_array(np.array(True))),
             oh.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)]
    return _model(oh.make_graph(nodes, "leak", ins, outs))


def leak_sparse(location: str) -> bytes:
    ins, outs = _io()
    sparse = onnx.SparseTensorProto(dims=[N])
    sparse.values.CopyFrom(_external("w", location))
    sparse.indices.CopyFrom(onh.from_array(np.arange(N, dtype=np.int64), "i"))
    graph = oh.make_graph([oh.make_node("Identity", ["w"], ["y"])], "leak", ins, outs)
    graph.sparse_initializer.append(sparse)
    return _model(graph)


def leak_function(location: str) -> bytes:
    """The tensor sits in a model-local function's Constant node."""
    ins, outs = _io()
    fn = oh.make_function("leak.local", "Leak", [], ["o"],
                          [oh.make_node("Constant", [], ["o"], value=_external("f", location))],
                          [oh.make_opsetid("", 17)])
    graph = oh.make_graph([oh.make_node("Leak", [], ["y"], domain="leak.local")], "leak", ins, outs)
    return oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17), oh.make_opsetid("leak.local", 1)],
                         ir_version=9, functions=[fn]).SerializeToString()


def relu_onnx() -> bytes:
    """An honest model with the leak's input: x (N, 4) float32 -> y = relu(x)."""
    x, y = oh.make_tensor_value_info("x", FLOAT, ["N", 4]), oh.make_tensor_value_info("y", FLOAT, ["N", 4])
    return _model(oh.make_graph([oh.make_node("Relu", ["x"], ["y"])], "relu", [x], [y]))


def sqrt_onnx() -> bytes:
    """Finite inputs, non-finite outputs: y = sqrt(x) is NaN for x < 0."""
    x, y = oh.make_tensor_value_info("x", FLOAT, ["N", 4]), oh.make_tensor_value_info("y", FLOAT, ["N", 4])
    return _model(oh.make_graph([oh.make_node("Sqrt", ["x"], ["y"])], "sqrt", [x], [y]))


# ---------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def owner(world: Any) -> Any:
    return world.actor(world.org(), "admin")


def _upload(http: Any, actor: Any, data: bytes, name: str, filename: str = "m.onnx") -> Any:
    return http.post("/api/v1/models/upload", params={"name": name, "filename": filename}, content=data,
                     headers={**actor.headers, "content-type": "application/octet-stream"})


def _strict_json(text: str) -> Any:
    """json.loads that refuses NaN/Infinity, which are not JSON."""
    def refuse(token: str) -> Any:
        raise ValueError(f"invalid JSON constant {token}")

    return json.loads(text, parse_constant=refuse)


def _assert_no_path(text: str, *paths: str | Path) -> None:
    for p in paths:
        assert str(p) not in text, (p, text)
    assert "master.key" not in text and "secret" not in text.lower() and not re.search(r"/[\w.-]+/", text), text


# A location in each shape the finding names: relative to the hub's home or to the working
# directory, absolute, and climbing out with '..' (both staying in and leaving the cwd). Each
# gives the working directory to run in and the location of a file that exists / does not.
Place = Callable[[Path, Path], tuple[Path, str, str]]
PLACES: dict[str, Place] = {
    "home": lambda home, tmp: (home.parent, f"{home.name}/master.key", f"{home.name}/master.missing"),
    "cwd": lambda home, tmp: (tmp, "pyproject.toml", "no-such.toml"),
    "absolute": lambda home, tmp: (tmp, str(home / "master.key"), str(home / "master.missing")),
    "dotdot-inside": lambda home, tmp: (tmp, "sub/../pyproject.toml", "sub/../no-such.toml"),
    "dotdot-out": lambda home, tmp: (tmp / "a" / "b", "../../pyproject.toml", "../../no-such.toml"),
}


@pytest.fixture()
def place(request: pytest.FixtureRequest, services: Any, settings: Any, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """Run the (started) hub in the chosen working directory; returns (existing, missing) locations."""
    home = Path(settings.home)
    assert (home / "master.key").exists()
    (tmp_path / "pyproject.toml").write_bytes(SECRET * 4)
    (tmp_path / "sub").mkdir()
    (tmp_path / "a" / "b").mkdir(parents=True)
    cwd, existing, missing = PLACES[request.param](home, tmp_path)
    monkeypatch.chdir(cwd)
    return existing, missing


# ------------------------------------------------------------------------------ finding 1
@pytest.mark.parametrize("place", list(PLACES), indirect=True)
def test_upload_with_external_data_is_refused_alike_whether_the_file_exists(
        http: Any, owner: Any, settings: Any, tmp_path: Path, place: tuple[str, str]) -> None:
    existing, missing = place
    answers = []
    for location in (existing, missing):
        r = _upload(http, owner, leak_initializer(location), "leaky")
        assert r.status_code == 422, r.text
        _assert_no_path(r.text, location, settings.home, tmp_path, os.getcwd())
        answers.append(r.json()["error"])
    assert answers[0] == answers[1]
    err = answers[0]
    assert "external data" in err["message"] and "'w'" in err["message"]
    assert "save_as_external_data=False" in err["hint"] and "external_data=False" in err["hint"]
    assert http.get(f"/api/v1/models/{owner.org}/leaky", headers=owner.headers).status_code == 404


@pytest.mark.parametrize("make,where", [
    (leak_constant, "attribute 'value' of an unnamed Constant node"),
    (leak_subgraph, "subgraph in attribute 'then_branch' of an unnamed If node"),
    (leak_sparse, "sparse initializer"),
    (leak_function, "function 'Leak'"),
])
@pytest.mark.parametrize("place", ["cwd"], indirect=True)
def test_external_data_is_found_at_every_level_of_the_file(http: Any, owner: Any, settings: Any,
                                                            tmp_path: Path, place: tuple[str, str],
                                                            make: Callable[[str], bytes], where: str) -> None:
    r = _upload(http, owner, make(place[0]), "leaky-deep")
    assert r.status_code == 422, r.text
    assert "external data" in r.json()["error"]["message"] and where in r.json()["error"]["message"]
    _assert_no_path(r.text, place[0], settings.home, tmp_path)


def test_files_that_do_not_parse_as_onnx_are_refused_before_onnxruntime(http: Any, owner: Any) -> None:
    r = _upload(http, owner, b"\x08\x07" + b"\xff" * 64, "garbage")  # an ORT-format or broken file
    assert r.status_code == 422 and "does not parse as an ONNX ModelProto" in r.json()["error"]["message"]


@pytest.mark.parametrize("place", ["cwd"], indirect=True)
def test_a_smuggled_model_cannot_be_served_or_explained(http: Any, services: Any, owner: Any,
                                                       settings: Any, tmp_path: Path,
                                                       place: tuple[str, str]) -> None:
    """Bytes written into a registered version's blob (past the upload's check, as a bug or an
    operator mistake could) are refused on every path that loads them; nothing of the file leaks."""
    import hashlib

    from consortium.store.tables.registry import ModelVersion

    r = _upload(http, owner, relu_onnx(), "smuggled")
    assert r.status_code == 201, r.text
    bad = leak_initializer(place[0])
    with transaction(services.session_factory) as s:
        v = s.get(ModelVersion, r.json()["id"])
        ref = services.blobs.put(s, owner.org_id, [bad], prefix="m")
        v.blob_key, v.blob_size = ref.key, ref.size
        v.onnx_sha256, v.onnx_size = hashlib.sha256(bad).hexdigest(), len(bad)
    name = f"smuggled-{owner.org}"
    assert http.post("/api/v1/deployments", json={"name": name, "model": "smuggled"},
                     headers=owner.headers).status_code == 201

    x = [[1.0, 2.0, 3.0, 4.0]]
    oip = http.post(f"/v2/models/{name}/infer", headers=owner.headers,
                    json={"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": x[0]}]})
    predict = http.post(f"/api/v1/deployments/{name}/predict", json={"inputs": x}, headers=owner.headers)
    ready = http.get(f"/v2/models/{name}/ready", headers=owner.headers)
    explain = http.post(f"/api/v1/models/{owner.org}/smuggled/versions/1/explain", json={"inputs": x[0]},
                        headers=owner.headers)
    for resp in (oip, predict, ready, explain):
        assert 400 <= resp.status_code < 500, resp.text
        assert "external data" in resp.text, resp.text
        assert SECRET[:8].decode() not in resp.text and str(list(SECRET[:8]))[1:-1] not in resp.text
        _assert_no_path(resp.text, place[0], settings.home, tmp_path)


# ----------------------------------------------------------------------------- finding 11
@pytest.fixture(scope="module")
def dep(http: Any, services: Any, owner: Any) -> str:
    for model in ("relu", "sqrt"):
        r = _upload(http, owner, relu_onnx() if model == "relu" else sqrt_onnx(), f"nan-{model}")
        assert r.status_code == 201, r.text
        assert http.post("/api/v1/deployments", json={"name": f"nan-{model}-{owner.org}", "model": f"nan-{model}"},
                         headers=owner.headers).status_code == 201
    return f"nan-relu-{owner.org}"


def _json_infer(values: list[float]) -> bytes:
    return json.dumps({"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": values}]}).encode()


def _binary_infer(values: list[float]) -> tuple[bytes, dict[str, str]]:
    raw = np.asarray(values, dtype="<f4").tobytes()
    head = json.dumps({"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32",
                                   "parameters": {"binary_data_size": len(raw)}}]}).encode()
    return head + raw, {"Inference-Header-Content-Length": str(len(head))}


@pytest.mark.parametrize("bad,word", [(float("nan"), "NaN"), (float("inf"), "infinity"),
                                      (float("-inf"), "infinity")])
@pytest.mark.parametrize("encoding", ["json", "binary"])
def test_oip_refuses_non_finite_inputs_with_400_naming_input_and_row(http: Any, owner: Any, dep: str,
                                                                    bad: float, word: str, encoding: str) -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, bad, 8.0]  # row 1
    if encoding == "json":
        body, headers = _json_infer(values), {}
    else:
        body, headers = _binary_infer(values)
    r = http.post(f"/v2/models/{dep}/infer", content=body, headers={**owner.headers, **headers})
    assert r.status_code == 400, r.text
    err = _strict_json(r.text)["error"]
    assert f"input 'x' row 1 holds {word}" in err


@pytest.mark.parametrize("literal,word", [("NaN", "NaN"), ("Infinity", "infinity"), ("-Infinity", "infinity"),
                                          ("1e999", "infinity")])
def test_predict_refuses_the_same_inputs_naming_the_row(http: Any, owner: Any, dep: str, literal: str,
                                                        word: str) -> None:
    body = f'{{"inputs": [[1, 2, 3, 4], [5, 6, {literal}, 8]]}}'.encode()
    r = http.post(f"/api/v1/deployments/{dep}/predict", content=body,
                  headers={**owner.headers, "content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert f"row 1, value 2 holds {word}" in r.json()["error"]["message"]
    # a finite JSON number past float32's range becomes infinity at the model: refused too
    r = http.post(f"/api/v1/deployments/{dep}/predict", json={"inputs": [[1, 2, 3, 4], [5, 6, 1e39, 8]]},
                  headers=owner.headers)
    assert r.status_code == 400 and "input 'x' row 1 holds infinity" in r.json()["error"]["message"], r.text


def test_ragged_rows_are_a_400_not_a_500(http: Any, owner: Any, dep: str) -> None:
    """Found by the schemathesis run once /predict's body was in the OpenAPI: rows of different
    lengths made numpy raise inside the model call (500)."""
    for rows in ([[1, 2, 3, 4], [5, 6]], [[1, 2, 3, [4, 5]]], [[1, 2, 3, {"a": 1}]]):
        r = http.post(f"/api/v1/deployments/{dep}/predict", json={"inputs": rows}, headers=owner.headers)
        assert r.status_code == 400, r.text


def test_tritonclient_binary_nan_gets_the_400(live_url: str, owner: Any, dep: str) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    c = triton.InferenceServerClient(live_url.removeprefix("http://"))
    x = np.ones((3, 4), np.float32)
    x[2, 1] = np.nan
    inp = triton.InferInput("x", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)  # binary by default
    with pytest.raises(InferenceServerException, match="input 'x' row 2 holds NaN"):
        c.infer(dep, [inp], headers={"Authorization": f"Bearer {owner.token}"})
    c.close()


@pytest.mark.parametrize("binary_output", [False, True])
def test_non_finite_outputs_are_never_invalid_json(http: Any, owner: Any, dep: str, binary_output: bool) -> None:
    name = dep.replace("nan-relu", "nan-sqrt")
    body = json.loads(_json_infer([-1.0, 4.0, 9.0, 0.0, 1.0, 1.0, 1.0, 1.0]))
    body["parameters"] = {"binary_data_output": binary_output}
    r = http.post(f"/v2/models/{name}/infer", json=body, headers=owner.headers)
    assert r.status_code == 200, r.text
    if not binary_output:
        out = _strict_json(r.text)["outputs"][0]
        assert out["data"][:3] == [None, 2.0, 3.0]
    else:
        h = int(r.headers["inference-header-content-length"])
        _strict_json(r.content[:h].decode())
        y = np.frombuffer(r.content[h:], dtype="<f4")
        assert np.isnan(y[0]) and y[1] == 2.0  # binary outputs keep the IEEE value
    p = http.post(f"/api/v1/deployments/{name}/predict", json={"inputs": [[-1.0, 4.0, 9.0, 0.0]]},
                  headers=owner.headers)
    assert p.status_code == 200 and _strict_json(p.text)["predictions"][0][:2] == [None, 2.0], p.text



@pytest.mark.parametrize("place", ["cwd", "dotdot-inside"], indirect=True)
def test_onnxruntime_guards_hold_even_without_the_check(place: tuple[str, str]) -> None:
    """Defence in depth: the session options the hub sets (``harden``) stop onnxruntime itself
    from reading the file, should a tensor ever get past ``refuse_external_data``."""
    import onnxruntime as ort

    from consortium.serving.external_data import harden

    data = leak_initializer(place[0])
    assert ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {
        "x": np.zeros((1, 4), np.float32)})[0].tobytes() == SECRET  # what the hub did before
    options = ort.SessionOptions()
    options.log_severity_level = 4
    with pytest.raises(Exception, match="External data path"):
        ort.InferenceSession(data, sess_options=harden(options), providers=["CPUExecutionProvider"])
