"""Monitoring through the SDK and the CLI against a real uvicorn server: settings, feedback,
figures, drift, the live table (``--once``), and ``/metrics`` open to loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from mon_support import deploy

from consortium.errors import InvalidInput, NotFound, PermissionDenied


def test_sdk_monitoring(live_url: str, http: Any, owner: Any, caller: Any, bc: dict[str, Any]) -> None:
    from consortium import Client

    name = deploy(http, owner, None, caller)
    with Client(live_url, owner.token) as own, Client(live_url, caller.token) as c:
        s = own.monitoring.configure(name, sample_rate=1.0, drift={"min_rows": 10})
        assert s["sample_rate"] == 1.0 and s["drift"]["min_rows"] == 10 and s["drift"]["psi_alert"] == 0.25
        outs = [c.deployments.predict(name, bc["rows"][i:i + 1]) for i in range(12)]
        for i, out in enumerate(outs):
            fb = c.monitoring.feedback(name, out["prediction_id"], label=bc["labels"][i])
            assert fb["rows"] == 1 and fb["correct"] in (0, 1)
        with pytest.raises(NotFound):
            c.monitoring.feedback(name, "prd_unknown", label=bc["labels"][0])
        with pytest.raises(InvalidInput):
            c.monitoring.feedback(name, outs[0]["prediction_id"], label="not-a-class")
        with pytest.raises(PermissionDenied):
            c.monitoring.drift(name)
        q = c.monitoring.quality(name)
        assert q["labelled_rows"] == 12 and q["live"] >= 0.75
        m = c.monitoring.metrics(name, minutes=5)
        assert m["requests"] >= 12 and set(m["orgs"]) == {caller.org}
        d = own.monitoring.drift(name)
        assert d["rows"] == 12 and d["status"] in ("ok", "warn", "alert")
        assert len(own.monitoring.predictions(name, limit=5)) == 5
        ts = own.monitoring.timeseries(name, "latency", minutes=10, step=5)
        assert sum(p["requests"] for p in ts["points"]) >= 12
        assert own.monitoring.check(name) == {"enabled": False, "fired": False}
        # sampling off: the id itself carries the answer, and feedback still counts
        own.monitoring.configure(name, sample_rate=0.0)
        out = c.deployments.predict(name, bc["rows"][20:22])
        assert out["prediction_logged"] is False
        fb = c.monitoring.feedback(name, out["prediction_id"], labels=bc["labels"][20:22])
        assert fb["rows"] == 2 and fb["replaced"] is False
        assert c.monitoring.quality(name)["labelled_rows"] == 14


def test_cli_monitor_and_feedback(live_url: str, http: Any, owner: Any, bc: dict[str, Any], tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from consortium.cli.main import app

    monkeypatch.setenv("CONSORTIUM_URL", live_url)
    monkeypatch.setenv("CONSORTIUM_TOKEN", owner.token)
    monkeypatch.setenv("CONSORTIUM_CONFIG", str(tmp_path / "cli.json"))
    runner = CliRunner()
    name = deploy(http, owner, None)
    r = runner.invoke(app, ["monitoring", "set", name, "--sample-rate", "1", "--retention-days", "7", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["retention_days"] == 7, r.output
    out = http.post(f"/api/v1/deployments/{name}/predict", json={"inputs": bc["rows"][:2]},
                    headers=owner.headers).json()
    r = runner.invoke(app, ["feedback", name, out["prediction_id"], *bc["labels"][:2], "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["rows"] == 2, r.output
    r = runner.invoke(app, ["feedback", name, "prd_nope", bc["labels"][0]])
    assert r.exit_code == 1 and "not_found" in r.output and "prd_nope" in r.output
    r = runner.invoke(app, ["monitor", name, "--once", "--minutes", "5"])
    assert r.exit_code == 0 and name in r.output and "p95" in r.output and owner.org in r.output, r.output
    r = runner.invoke(app, ["monitor", name, "--json"])
    snap = json.loads(r.output)
    assert snap["requests"] == 1 and snap["labelled_rows"] == 2 and snap["p50_ms"] is not None
    r = runner.invoke(app, ["monitoring", "drift", name])
    assert r.exit_code == 0 and "insufficient_data" in r.output, r.output
    r = runner.invoke(app, ["monitoring", "predictions", name, "--json"])
    assert r.exit_code == 0 and out["prediction_id"] in r.output
    # sampling off: the signed id works the same
    assert runner.invoke(app, ["monitoring", "set", name, "--sample-rate", "0"]).exit_code == 0
    out = http.post(f"/api/v1/deployments/{name}/predict", json={"inputs": bc["rows"][2:3]},
                    headers=owner.headers).json()
    r = runner.invoke(app, ["feedback", name, out["prediction_id"], bc["labels"][2], "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["rows"] == 1, r.output


def test_metrics_open_to_loopback(live_url: str) -> None:
    r = httpx.get(f"{live_url}/metrics")
    assert r.status_code == 200 and "consortium_requests_total" in r.text
