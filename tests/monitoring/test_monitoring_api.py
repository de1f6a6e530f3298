"""Monitoring through the HTTP API: prediction ids and the sampled, encrypted log; feedback and live
accuracy; request figures per organization; drift on shifted and unshifted traffic; time series;
retention; Prometheus ``/metrics`` and its access rule."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import numpy as np
from mon_support import deploy

from consortium.store.db import transaction
from consortium.store.tables.base import utcnow


def predict(http: Any, actor: Any, name: str, rows: list[Any]) -> dict[str, Any]:
    r = http.post(f"/api/v1/deployments/{name}/predict", json={"inputs": rows}, headers=actor.headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_predictions_get_ids_and_sampled_ones_are_logged_encrypted(http: Any, services: Any, owner: Any,
                                                                    caller: Any, bc: dict[str, Any]) -> None:
    name = deploy(http, owner, 1.0, caller)
    out = predict(http, caller, name, bc["rows"][:3])
    assert out["prediction_id"].startswith("prd_") and out["prediction_logged"] is True
    log = http.get(f"/api/v1/deployments/{name}/predictions", headers=owner.headers)
    assert log.status_code == 200, log.text
    entry = next(e for e in log.json()["items"] if e["id"] == out["prediction_id"])
    assert entry["inputs"] == bc["rows"][:3] and entry["outputs"]["predictions"] == out["predictions"]
    assert entry["caller_org"] == caller.org and entry["rows"] == 3
    # only the owner reads the log; the stored payload is ciphertext
    assert http.get(f"/api/v1/deployments/{name}/predictions", headers=caller.headers).status_code == 403
    from consortium.store.tables.monitoring import PredictionRecord

    with services.session_factory() as s:
        raw = s.get(PredictionRecord, out["prediction_id"]).payload
    assert b"inputs" not in raw and repr(bc["rows"][0][0]).encode() not in raw
    # sampling off: an id still, nothing logged
    r = http.patch(f"/api/v1/deployments/{name}/monitoring", json={"sample_rate": 0}, headers=owner.headers)
    assert r.json()["sample_rate"] == 0
    off = predict(http, caller, name, bc["rows"][:1])
    assert off["prediction_logged"] is False and off["prediction_id"] != out["prediction_id"]
    # a 10% rate logs about a tenth
    http.patch(f"/api/v1/deployments/{name}/monitoring", json={"sample_rate": 0.1}, headers=owner.headers)
    logged = sum(predict(http, caller, name, bc["rows"][:1])["prediction_logged"] for _ in range(300))
    assert 10 <= logged <= 60, logged


def test_settings_are_validated_and_owner_only(http: Any, owner: Any, caller: Any, world: Any,
                                               bc: dict[str, Any]) -> None:
    name = deploy(http, owner, None, caller)
    url = f"/api/v1/deployments/{name}/monitoring"
    assert http.get(url, headers=owner.headers).json()["sample_rate"] == 0.0  # off by default
    assert http.patch(url, json={"sample_rate": 2}, headers=owner.headers).status_code == 422
    r = http.patch(url, json={"drift": {"psi_warn": 0.5, "psi_alert": 0.2}}, headers=owner.headers)
    assert r.status_code == 422 and "psi_warn" in r.text
    assert http.patch(url, json={"sample_rate": 1}, headers=caller.headers).status_code == 403
    assert http.get(url, headers=caller.headers).status_code == 403
    viewer = world.actor(owner.org, "viewer")
    assert http.patch(url, json={"sample_rate": 1}, headers=viewer.headers).status_code == 403
    r = http.patch(url, json={"retrain": {"min_accuracy": 0.8}}, headers=owner.headers)
    assert r.json()["retrain"] == {**r.json()["retrain"], "min_accuracy": 0.8, "enabled": False}


def test_feedback_scores_labels_and_reports_live_accuracy(http: Any, owner: Any, caller: Any, world: Any,
                                                          bc: dict[str, Any]) -> None:
    name = deploy(http, owner, 1.0, caller)
    other = deploy(http, owner, 1.0, caller)
    ids, n_correct = [], 0
    for i in range(0, 40, 4):
        out = predict(http, caller, name, bc["rows"][i:i + 4])
        r = http.post(f"/api/v1/deployments/{name}/feedback",
                      json={"prediction_id": out["prediction_id"], "labels": bc["labels"][i:i + 4]},
                      headers=caller.headers)
        assert r.status_code == 201, r.text
        n_correct += r.json()["correct"]
        labels = bc["labels"][i:i + 4]
        assert r.json()["correct"] == sum(p == t for p, t in zip(out["predictions"], labels, strict=True))
        ids.append(out["prediction_id"])
    fb = http.post(f"/api/v1/deployments/{name}/feedback", json={"prediction_id": ids[0], "labels": ["x"]},
                   headers=caller.headers)
    assert fb.status_code == 422 and "4 rows" in fb.text  # one label per row
    for body, status in [({"prediction_id": "prd_nope", "label": "0"}, 404),
                         ({"prediction_id": ids[0], "labels": [2.5, 1, 0, 1]}, 422),
                         ({"prediction_id": ids[0], "labels": [{"a": 1}] * 4}, 422),
                         ({"prediction_id": ids[0]}, 422)]:
        r = http.post(f"/api/v1/deployments/{name}/feedback", json=body, headers=caller.headers)
        assert r.status_code == status, (body, r.text)
    # the right id on the wrong deployment is unknown there
    r = http.post(f"/api/v1/deployments/{other}/feedback", json={"prediction_id": ids[0], "labels": bc["labels"][:4]},
                  headers=caller.headers)
    assert r.status_code == 404
    # another organization cannot label a caller's prediction, even with its own grant
    third = world.actor(world.org(), "member")
    http.post("/api/v1/grants", json={"resource_type": "deployment", "resource": name, "permission": "invoke",
                                      "grantee_org": third.org}, headers=owner.headers)
    r = http.post(f"/api/v1/deployments/{name}/feedback", json={"prediction_id": ids[0], "labels": bc["labels"][:4]},
                  headers=third.headers)
    assert r.status_code == 404
    summary = http.get(f"/api/v1/deployments/{name}/feedback", headers=owner.headers).json()
    assert summary["labelled_rows"] == 40 and summary["reports"] == 10
    assert summary["metric"] == "accuracy" and summary["test"] == round(bc["accuracy"], 4)
    assert summary["live"] == round(n_correct / 40, 4) and summary["live"] > 0.85
    mine = http.get(f"/api/v1/deployments/{name}/feedback", headers=third.headers).json()
    assert mine["labelled_rows"] == 0  # a caller sees its own feedback only
    series = http.get(f"/api/v1/deployments/{name}/timeseries", params={"metric": "accuracy", "minutes": 10,
                                                                         "step": 5}, headers=owner.headers).json()
    assert sum(p["labelled_rows"] for p in series["points"]) == 40


def test_request_figures_per_org_owner_sees_all(http: Any, owner: Any, caller: Any, bc: dict[str, Any]) -> None:
    name = deploy(http, owner, 0.0, caller)
    for _ in range(12):
        predict(http, caller, name, bc["rows"][:2])
    for _ in range(5):
        predict(http, owner, name, bc["rows"][:2])
    bad = http.post(f"/api/v1/deployments/{name}/predict", json={"inputs": [[1, 2]]}, headers=caller.headers)
    assert bad.status_code == 400

    def figures(actor: Any) -> dict[str, Any]:
        r = http.get(f"/api/v1/deployments/{name}/metrics", params={"minutes": 5}, headers=actor.headers)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    from support import wait_for

    full = wait_for(lambda: (f := figures(owner))["requests"] == 18 and f, 10, what="usage flush")
    assert full["errors"] == 1 and full["statuses"] == {"200": 17, "400": 1}
    assert full["orgs"][caller.org]["requests"] == 13 and full["orgs"][owner.org]["requests"] == 5
    assert 0 < full["p50_ms"] <= full["p95_ms"] <= full["p99_ms"] < 5000
    mine = figures(caller)
    assert set(mine["orgs"]) == {caller.org} and mine["requests"] == 13
    series = http.get(f"/api/v1/deployments/{name}/timeseries", params={"metric": "latency", "minutes": 10},
                      headers=owner.headers).json()
    assert sum(p["requests"] for p in series["points"]) == 18 and series["points"][-1]["p50_ms"] is not None


def test_drift_flags_shifted_inputs_not_unshifted(http: Any, owner: Any, caller: Any, bc: dict[str, Any]) -> None:
    clean, shifted = deploy(http, owner, 1.0, caller), deploy(http, owner, 1.0, caller)
    rows = np.asarray(bc["rows"])
    moved = rows.copy()
    col = bc["columns"].index("mean_radius")
    moved[:, col] += 2 * rows[:, col].std()
    for i in range(0, len(rows), 20):
        predict(http, caller, clean, rows[i:i + 20].tolist())
        predict(http, caller, shifted, moved[i:i + 20].tolist())
    ok = http.get(f"/api/v1/deployments/{clean}/drift", headers=owner.headers).json()
    bad = http.get(f"/api/v1/deployments/{shifted}/drift", headers=owner.headers).json()
    assert ok["rows"] == bad["rows"] == len(rows)
    assert ok["status"] in ("ok", "warn") and ok["features_alert"] == 0, ok
    assert bad["status"] == "alert", bad
    flagged = [f["name"] for f in bad["features"] if f["status"] == "alert"]
    assert flagged == ["mean_radius"], flagged
    assert http.get(f"/api/v1/deployments/{shifted}/drift", headers=caller.headers).status_code == 403
    series = http.get(f"/api/v1/deployments/{shifted}/timeseries", params={"metric": "drift", "minutes": 10},
                      headers=owner.headers).json()
    assert any(p["status"] == "alert" for p in series["points"])


def test_retention_removes_old_predictions(http: Any, services: Any, owner: Any, bc: dict[str, Any]) -> None:
    from consortium.monitoring.recorder import enforce_retention
    from consortium.store.tables.monitoring import PredictionRecord

    name = deploy(http, owner, 1.0, retention_days=2)
    old, new = (predict(http, owner, name, bc["rows"][:1])["prediction_id"] for _ in range(2))
    services.running_monitor().flush()
    with transaction(services.session_factory) as s:
        s.get(PredictionRecord, old).created_at = utcnow() - timedelta(days=3)
    with transaction(services.session_factory) as s:
        assert enforce_retention(s) >= 1
    with services.session_factory() as s:
        assert s.get(PredictionRecord, old) is None and s.get(PredictionRecord, new) is not None


def test_open_inference_protocol_returns_a_prediction_id(http: Any, owner: Any, bc: dict[str, Any]) -> None:
    name = deploy(http, owner, 1.0)
    body = {"inputs": [{"name": "input", "shape": [1, 30], "datatype": "FP32", "data": [0.0] * 30}]}
    r = http.post(f"/v2/models/{name}/infer", json=body, headers=owner.headers)
    assert r.status_code == 200, r.text
    pid = r.headers["consortium-prediction-id"]
    fb = http.post(f"/api/v1/deployments/{name}/feedback", json={"prediction_id": pid, "label": 1},
                   headers=owner.headers)
    assert fb.status_code == 201, fb.text


def test_prometheus_metrics(http: Any, world: Any, owner: Any, bc: dict[str, Any]) -> None:
    name = deploy(http, owner, 0.0)
    predict(http, owner, name, bc["rows"][:2])
    assert http.get("/metrics").status_code == 401  # the test client is not an allow-listed address
    assert http.get("/metrics", headers=owner.headers).status_code == 403
    op = world.actor(world.org(), "owner", operator=True)
    r = http.get("/metrics", headers=op.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert f'consortium_requests_total{{code="200",deployment="{name}",org="{owner.org}"}} 1.0' in text
    assert f'consortium_request_latency_seconds_count{{deployment="{name}",org="{owner.org}"}} 1.0' in text
    batches = re.search(r'^consortium_batch_rows_count\{model="[^"]*bc-risk[^"]*"\} (\S+)$', text, re.M)
    assert batches and float(batches[1]) >= 1 and "consortium_job_queue_depth" in text
    assert 'consortium_jobs{state="queued"}' in text
