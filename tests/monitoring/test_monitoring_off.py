"""A hub process with ``CONSORTIUM_MONITORING=off``: no sampling, latency or request series, no
writer thread; usage accounting stays, and prediction ids still get feedback."""

from __future__ import annotations

from typing import Any

import pytest
from mon_support import deploy
from support import wait_for

from consortium.monitoring.ids import STORED


@pytest.fixture(scope="module")
def settings(settings: Any) -> Any:
    return settings.model_copy(update={"monitoring": "off"})


def test_monitoring_off(http: Any, services: Any, world: Any, owner: Any, caller: Any, bc: dict[str, Any]) -> None:
    name = deploy(http, owner, 1.0, caller)  # the owner asks for everything; the operator said no
    outs = []
    for i in range(3):
        r = http.post(f"/api/v1/deployments/{name}/predict", json={"inputs": bc["rows"][i:i + 1]},
                      headers=caller.headers)
        assert r.status_code == 200, r.text
        outs.append(r.json())
    assert all(o["prediction_logged"] is False and not STORED.fullmatch(o["prediction_id"]) for o in outs)
    r = http.post(f"/api/v1/deployments/{name}/feedback", json={"prediction_id": outs[0]["prediction_id"],
                                                               "label": bc["labels"][0]}, headers=caller.headers)
    assert r.status_code == 201 and r.json()["correct"] == int(outs[0]["predictions"][0] == bc["labels"][0])
    mon = services.running_monitor()
    assert mon.enabled is False and mon._thread is None and mon.pending() == 0 and not mon.totals
    assert http.get(f"/api/v1/deployments/{name}/predictions", headers=owner.headers).json()["items"] == []
    # usage accounting stays (request counts, quotas); latency figures are not kept
    figures = wait_for(lambda: (f := http.get(f"/api/v1/deployments/{name}/metrics", params={"minutes": 5},
                                              headers=owner.headers).json())["requests"] == 3 and f,
                       10, what="usage flush")
    assert figures["p50_ms"] is None and figures["statuses"] == {}
    op = world.actor(world.org(), "owner", operator=True)
    text = http.get("/metrics", headers=op.headers).text
    assert f'deployment="{name}"' not in text and "consortium_job_queue_depth" in text
