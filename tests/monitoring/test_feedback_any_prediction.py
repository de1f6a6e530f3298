"""Feedback on predictions that were not sampled into the log (signed, self-describing ids) and on
answers too long for an id (kept in the log, response only, not drift evidence), through
``/predict`` and ``/v2``, for classification and regression; and federated rounds on ``/metrics``."""

from __future__ import annotations

import base64
import re
from typing import Any

import numpy as np
import onnx
import onnx.helper as oh
import onnx.numpy_helper as onh
import pytest
from mon_support import deploy

from consortium.monitoring.ids import MAX_ID_CHARS, MAX_OUTPUT_BYTES, STORED


def predict(http: Any, actor: Any, name: str, rows: list[Any]) -> dict[str, Any]:
    r = http.post(f"/api/v1/deployments/{name}/predict", json={"inputs": rows}, headers=actor.headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def feedback(http: Any, actor: Any, name: str, pid: str, labels: list[Any]) -> Any:
    return http.post(f"/api/v1/deployments/{name}/feedback", json={"prediction_id": pid, "labels": labels},
                     headers=actor.headers)


def tamper(pid: str) -> str:
    """The same id with one bit of its body flipped (re-encoded, so it still parses)."""
    s = pid[4:]
    raw = bytearray(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    raw[-15] ^= 1  # inside the outputs section, before the tag
    return "prd_" + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def linear(http: Any, services: Any, owner: Any) -> str:
    """A deployed regression model: value = x @ [1, 2, -1] + 0.5 (no preprocessing)."""
    from consortium.registry import models as reg
    from consortium.store.db import transaction

    x = oh.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["N", 3])
    y = oh.make_tensor_value_info("value", onnx.TensorProto.FLOAT, ["N", 1])
    g = oh.make_graph([oh.make_node("MatMul", ["input", "w"], ["xw"]), oh.make_node("Add", ["xw", "b"], ["value"])],
                      "linear", [x], [y], initializer=[onh.from_array(np.array([[1], [2], [-1]], np.float32), "w"),
                                                       onh.from_array(np.array([0.5], np.float32), "b")])
    model = oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)], ir_version=9).SerializeToString()
    with transaction(services.session_factory) as s:
        reg.register_version(s, owner.org_id, "lin-reg", onnx=model, blobs=services.blobs, task="regression",
                             metrics={"mse": 0.25})
    r = http.post("/api/v1/deployments", json={"name": "lin", "model": "lin-reg:1"}, headers=owner.headers)
    assert r.status_code == 201, r.text
    return "lin"


def test_unsampled_predictions_get_feedback_and_count_in_live_accuracy(http: Any, owner: Any, caller: Any,
                                                                      world: Any, bc: dict[str, Any]) -> None:
    name = deploy(http, owner, 0.0, caller)  # nothing is logged
    other = deploy(http, owner, 0.0, caller)
    outs, n_correct = [], 0
    for i in range(0, 24, 3):
        out = predict(http, caller, name, bc["rows"][i:i + 3])
        assert out["prediction_logged"] is False and not STORED.fullmatch(out["prediction_id"])
        r = feedback(http, caller, name, out["prediction_id"], bc["labels"][i:i + 3])
        assert r.status_code == 201, r.text
        labels = bc["labels"][i:i + 3]
        assert r.json()["correct"] == sum(p == t for p, t in zip(out["predictions"], labels, strict=True))
        assert r.json()["replaced"] is False
        n_correct += r.json()["correct"]
        outs.append(out)
    ids = [o["prediction_id"] for o in outs]
    assert http.get(f"/api/v1/deployments/{name}/predictions", headers=owner.headers).json()["items"] == []
    # a second report for the same prediction replaces the first: counted once, with the new labels
    names = bc["class_names"]
    wrong = [names[1 - names.index(x)] for x in bc["labels"][:3]]
    r = feedback(http, caller, name, ids[0], wrong)
    assert r.status_code == 201 and r.json()["replaced"] is True, r.text
    was = sum(p == t for p, t in zip(outs[0]["predictions"], bc["labels"][:3], strict=True))
    n_correct += r.json()["correct"] - was
    summary = http.get(f"/api/v1/deployments/{name}/feedback", headers=owner.headers).json()
    assert summary["labelled_rows"] == 24 and summary["reports"] == 8
    assert summary["live"] == round(n_correct / 24, 4)
    series = http.get(f"/api/v1/deployments/{name}/timeseries", params={"metric": "accuracy", "minutes": 10,
                                                                         "step": 5}, headers=owner.headers).json()
    assert sum(p["labelled_rows"] for p in series["points"]) == 24
    # unknown, forged, another deployment's, another organization's: 404; a label of the wrong type: 422
    third = world.actor(world.org(), "member")
    http.post("/api/v1/grants", json={"resource_type": "deployment", "resource": name, "permission": "invoke",
                                      "grantee_org": third.org}, headers=owner.headers)
    labels = bc["labels"][3:6]
    for who, dep, pid, status in [(caller, name, tamper(ids[1]), 404), (caller, name, ids[1][:-2], 404),
                                  (caller, name, "prd_" + "A" * 80, 404), (caller, other, ids[1], 404),
                                  (third, name, ids[1], 404), (owner, name, ids[1], 201)]:
        r = feedback(http, who, dep, pid, labels)
        assert r.status_code == status, (pid, r.text)
    assert "not one this deployment returned" in feedback(http, caller, other, ids[1], labels).text
    r = feedback(http, caller, name, ids[1], [2.5, labels[1], labels[2]])
    assert r.status_code == 422 and "not a class" in r.text
    r = feedback(http, caller, name, ids[1], labels[:1])
    assert r.status_code == 422 and "3 rows" in r.text
    assert feedback(http, caller, name, "prd_" + "x" * 300, labels).status_code == 422  # over the length bound


def test_regression_feedback_and_long_answers_kept_for_feedback_only(http: Any, owner: Any, linear: str) -> None:
    rows = [[1.0, 0.0, 0.0], [0.0, 1.0, 3.0]]  # 1.5, -0.5
    out = predict(http, owner, linear, rows)
    assert not STORED.fullmatch(out["prediction_id"]) and out["predictions"] == [1.5, -0.5]
    r = feedback(http, owner, linear, out["prediction_id"], [2.0, -0.5])
    assert r.status_code == 201 and r.json()["squared_error"] == 0.25, r.text
    r = feedback(http, owner, linear, out["prediction_id"], ["high", 1])
    assert r.status_code == 422 and "not a number" in r.text
    q = http.get(f"/api/v1/deployments/{linear}/feedback", headers=owner.headers).json()
    assert q["metric"] == "mse" and q["live"] == 0.125 and q["test"] == 0.25
    # one row more than an id carries (4 bytes a value): a short id to a response kept in the log
    n = MAX_OUTPUT_BYTES // 4 + 1
    out = predict(http, owner, linear, [[float(i), 0.0, 0.0] for i in range(n)])
    assert STORED.fullmatch(out["prediction_id"]) and out["prediction_logged"] is False
    r = feedback(http, owner, linear, out["prediction_id"], [i + 0.5 for i in range(n)])
    assert r.status_code == 201 and r.json()["squared_error"] == 0.0, r.text
    log = http.get(f"/api/v1/deployments/{linear}/predictions", headers=owner.headers).json()["items"]
    assert [(e["id"], e["sampled"], e["inputs"], e["rows"]) for e in log] == [(out["prediction_id"], False, None, n)]
    fits = predict(http, owner, linear, [[0.0, 0.0, 0.0]] * (n - 1))  # the longest answer an id carries
    assert not STORED.fullmatch(fits["prediction_id"]) and len(fits["prediction_id"]) <= MAX_ID_CHARS


def test_long_answers_are_not_drift_evidence(http: Any, owner: Any, bc: dict[str, Any]) -> None:
    name = deploy(http, owner, 0.0)
    x = np.zeros((MAX_OUTPUT_BYTES // 4, 30), dtype=np.float32)  # two classes: 1 bit + 4 bytes a row
    body = {"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}]}
    r = http.post(f"/v2/models/{name}/infer", json=body, headers=owner.headers)
    assert r.status_code == 200 and STORED.fullmatch(r.headers["consortium-prediction-id"]), r.text
    d = http.get(f"/api/v1/deployments/{name}/drift", headers=owner.headers).json()
    assert d["logged_predictions"] == 0 and d["rows"] == 0, d


def test_open_inference_protocol_ids_carry_the_answer(http: Any, owner: Any, bc: dict[str, Any]) -> None:
    name = deploy(http, owner, 0.0)
    x = np.zeros((2, 30), dtype=np.float32)
    x[1] += 3.0
    body = {"inputs": [{"name": "input", "shape": [2, 30], "datatype": "FP32", "data": x.ravel().tolist()}]}
    r = http.post(f"/v2/models/{name}/infer", json=body, headers=owner.headers)
    assert r.status_code == 200, r.text
    pid = r.headers["consortium-prediction-id"]
    assert not STORED.fullmatch(pid)
    probs = np.asarray(r.json()["outputs"][0]["data"]).reshape(2, -1)
    answer = [bc["class_names"][i] for i in probs.argmax(axis=1)]
    fb = feedback(http, owner, name, pid, [answer[0], 1 - bc["class_names"].index(answer[1])])
    assert fb.status_code == 201 and fb.json()["correct"] == 1, fb.text


def test_federated_rounds_on_metrics(http: Any, services: Any, world: Any, owner: Any) -> None:
    """Rounds reach /metrics from the database, written the way a worker's federated job writes them."""
    from consortium.jobs import queue
    from consortium.jobs.context import JobContext
    from consortium.jobs.federated import forward_progress
    from consortium.store.db import transaction

    op = world.actor(world.org(), "owner", operator=True)

    def rounds() -> float:
        text = http.get("/metrics", headers=op.headers).text
        m = re.search(r'^consortium_federated_rounds_total\{strategy="fedprox"\} (\S+)$', text, re.M)
        return float(m[1]) if m else 0.0

    before = rounds()
    with transaction(services.session_factory) as s:
        job = queue.submit(s, org_id=owner.org_id, user_id=owner.user_id, kind="federated", name="fl",
                           recipe={"name": "fl", "federated": {"datasets": ["a/x", "b/x"], "strategy": "fedprox",
                                                             "rounds": 3}})
        ctx = JobContext.of(services, job)
    sink = forward_progress(ctx, 3)
    sink({"kind": "start", "strategy": "fedprox", "rounds": 3, "nodes": ["a", "b"]})
    for rnd in (1, 2):
        sink({"kind": "round", "round": rnd, "nodes": {}, "missing": [], "train_loss": 0.5, "global": None})
    assert rounds() == before + 2
