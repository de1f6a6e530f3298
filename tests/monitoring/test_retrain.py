"""The retraining trigger end to end: bad feedback drops live accuracy below the threshold, the
monitor submits the version's recipe on the newest dataset version as the owner, a real worker
trains and registers version 2, and no alias or deployment moves."""

from __future__ import annotations

from typing import Any

import pytest
from mon_support import deploy
from support import wait_for

pytestmark = pytest.mark.one_backend  # a real worker trains; the monitoring queries run on both in test_monitoring_api


def test_low_live_accuracy_retrains_without_promoting(http: Any, owner: Any, caller: Any, bc: dict[str, Any],
                                                      worker: Any) -> None:
    r = http.put(f"/api/v1/models/{owner.org}/bc-risk/aliases/production", json={"version": 1}, headers=owner.headers)
    assert r.status_code in (200, 201), r.text
    name = deploy(http, owner, 1.0, caller)
    url = f"/api/v1/deployments/{name}"
    # opt-in: nothing happens until the trigger is enabled
    assert http.post(f"{url}/monitoring/check", headers=owner.headers).json() == {"enabled": False, "fired": False}
    r = http.patch(f"{url}/monitoring", json={"retrain": {"enabled": True, "min_accuracy": 0.8, "min_feedback": 20}},
                   headers=owner.headers)
    assert r.status_code == 200, r.text
    flip = {bc["class_names"][0]: bc["class_names"][1], bc["class_names"][1]: bc["class_names"][0]}
    for i in range(0, 24, 4):  # the caller reports the opposite of the truth: live accuracy ~0
        out = http.post(f"{url}/predict", json={"inputs": bc["rows"][i:i + 4]}, headers=caller.headers).json()
        fb = http.post(f"{url}/feedback", json={"prediction_id": out["prediction_id"],
                                                "labels": [flip[x] for x in bc["labels"][i:i + 4]]},
                       headers=caller.headers)
        assert fb.status_code == 201, fb.text
    cfg = http.get(f"{url}/monitoring", headers=owner.headers).json()
    assert len(cfg["retrain_triggers"]) == 1, cfg  # fired once, when the 20th labelled row arrived
    trig = cfg["retrain_triggers"][0]
    assert "live accuracy" in trig["reason"] and trig["from_version"] == 1
    # a second check does not start another run (job still running, or cooling down)
    again = http.post(f"{url}/monitoring/check", headers=owner.headers).json()
    assert again["fired"] is False and again["reasons"] and again["blocked"]

    def finished() -> dict[str, Any] | None:
        j = http.get(f"/api/v1/jobs/{trig['job_id']}", headers=owner.headers).json()
        return j if j["state"] in ("succeeded", "failed", "cancelled") else None

    job = wait_for(finished, 120, 0.5, "retraining job")
    assert job["state"] == "succeeded", job.get("error")
    assert job["recipe"]["data"]["version"] is None and job["recipe"]["register"]["model"] == "bc-risk"
    model = http.get(f"/api/v1/models/{owner.org}/bc-risk", headers=owner.headers).json()
    assert max(v["version"] for v in model["versions"]) == 2
    assert model["aliases"] == {"production": 1}  # registered, not promoted
    assert http.get(url, headers=owner.headers).json()["version"] == 1
    trail = http.get("/api/v1/audit", params={"limit": 200}, headers=owner.headers).json()["items"]
    assert any(e["action"] == "deployment.retrain_triggered" for e in trail)
    # the caller never learns about the owner's job
    assert http.get(f"/api/v1/jobs/{trig['job_id']}", headers=caller.headers).status_code == 404


def test_drift_alert_retrains_when_opted_in(http: Any, owner: Any, caller: Any, bc: dict[str, Any],
                                            worker: Any) -> None:
    import numpy as np

    name = deploy(http, owner, 1.0, caller, retrain={"enabled": True, "on_drift": True})
    url = f"/api/v1/deployments/{name}"
    rows = np.asarray(bc["rows"])
    rows[:, bc["columns"].index("mean_texture")] *= 3  # a new scanner reads texture on another scale
    for i in range(0, 100, 20):
        assert http.post(f"{url}/predict", json={"inputs": rows[i:i + 20].tolist()},
                         headers=caller.headers).status_code == 200
    res = http.post(f"{url}/monitoring/check", headers=owner.headers).json()
    assert res["fired"] is True and "drift" in res["reasons"][0], res
    assert res["checks"]["drift"]["status"] == "alert"

    def finished() -> dict[str, Any] | None:
        j = http.get(f"/api/v1/jobs/{res['job_id']}", headers=owner.headers).json()
        return j if j["state"] in ("succeeded", "failed", "cancelled") else None

    assert wait_for(finished, 120, 0.5, "retraining job")["state"] == "succeeded"
