"""``/metrics`` as Prometheus reads it (issue 21, point 21), parsed with prometheus-client's own
text parser from a real uvicorn hub on loopback (an allow-listed scraper address): 429s per
deployment and calling organization, the ``code`` label, no ``_created`` series, batch ``model``
labels without the version, process and runtime series, the non-prediction API by route template,
job and round duration histograms, and the documented, bounded series count per pair."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from mon_support import deploy
from prometheus_client.parser import text_string_to_metric_families

from consortium.monitoring.prometheus import EXPORT_EDGES_MS, series_per_pair
from consortium.store.db import transaction
from consortium.store.tables.base import utcnow

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def scrape(live_url: str) -> dict[str, Any]:
    r = httpx.get(f"{live_url}/metrics")
    assert r.status_code == 200, r.text
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def samples(families: dict[str, Any], name: str, **labels: str) -> list[Any]:
    return [s for s in families[name].samples if all(s.labels.get(k) == v for k, v in labels.items())]


def test_metrics_follow_prometheus_conventions(live_url: str, http: Any, services: Any, owner: Any,
                                                caller: Any, bc: dict[str, Any]) -> None:
    name = deploy(http, owner, 0.0)
    g = http.post("/api/v1/grants", json={"resource_type": "deployment", "resource": name, "permission": "invoke",
                                          "grantee_org": caller.org, "limits": {"per_minute": 2}},
                  headers=owner.headers)
    assert g.status_code == 201, g.text
    url = f"{live_url}/api/v1/deployments/{name}/predict"
    codes = [httpx.post(url, json={"inputs": bc["rows"][:1]}, headers=caller.headers).status_code for _ in range(4)]
    assert codes == [200, 200, 429, 429]
    for _ in range(5):  # made-up names: refused before a deployment resolves, never a label of their own
        httpx.post(f"{live_url}/api/v1/deployments/nope-{secrets.token_hex(4)}/predict",
                   json={"inputs": [[0.0]]}, headers=caller.headers)
    for _ in range(3):  # the rest of the API, by route template
        httpx.get(f"{live_url}/api/v1/jobs/job_{secrets.token_hex(6)}", headers=owner.headers)
        httpx.get(f"{live_url}/no-such-{secrets.token_hex(4)}", headers=owner.headers)
    _add_finished_jobs(services, owner)

    f = scrape(live_url)
    # 429s by deployment and calling organization, with the conventional `code` label
    rej = samples(f, "consortium_requests_rejected", deployment=name, org=caller.org, code="429")
    assert [s.value for s in rej] == [2.0]
    unresolved = samples(f, "consortium_requests_rejected", org=caller.org, code="404")
    assert [s.labels["deployment"] for s in unresolved] == [""] and unresolved[0].value >= 5
    ok = samples(f, "consortium_requests", deployment=name, org=caller.org)
    assert [(s.labels["code"], s.value) for s in ok] == [("200", 2.0)]
    assert all("status" not in s.labels for fam in f.values() for s in fam.samples)
    # no _created series anywhere
    assert not [s.name for fam in f.values() for s in fam.samples if s.name.endswith("_created")]
    # the batch model label carries no version
    models = {s.labels["model"] for s in f["consortium_batch_rows"].samples}
    assert f"{owner.org}/bc-risk" in models and not any(re.search(r":\d+$", m) for m in models)
    # process and runtime series
    for fam in ("process_cpu_seconds", "process_resident_memory_bytes", "python_info", "python_gc_objects_collected"):
        assert fam in f and f[fam].samples, fam
    # the non-prediction API: route templates, not raw paths; predictions not counted there
    routes = {s.labels["route"] for s in f["consortium_http_requests"].samples}
    assert "/api/v1/jobs/{job_id}" in routes and "unmatched" in routes
    assert not any(re.search(r"job_[0-9a-f]{12}|no-such-", r) or r.endswith(("/predict", "/infer"))
                   for r in routes), routes
    jobs = samples(f, "consortium_http_requests", route="/api/v1/jobs/{job_id}", method="GET", code="404")
    assert jobs and jobs[0].value == 3.0
    assert samples(f, "consortium_http_request_duration_seconds", route="/api/v1/jobs/{job_id}")
    # job and round durations
    dur = samples(f, "consortium_job_duration_seconds", kind="train", state="succeeded")
    count = next(s.value for s in dur if s.name.endswith("_count"))
    assert count >= 1 and any(s.labels.get("le") == "60.0" and s.value >= 1 for s in dur)
    rounds = samples(f, "consortium_federated_round_duration_seconds", strategy="fedavg")
    assert next(s.value for s in rounds if s.name.endswith("_count")) == 2.0
    assert next(s.value for s in rounds if s.name.endswith("_sum")) == 50.0
    # a second scrape does not count the same jobs again
    f2 = scrape(live_url)
    again = samples(f2, "consortium_federated_round_duration_seconds", strategy="fedavg")
    assert next(s.value for s in again if s.name.endswith("_count")) == 2.0

    # the series one deployment x organization pair makes: as documented, and bounded
    pair = [s for fam in ("consortium_requests", "consortium_request_latency_seconds")
            for s in samples(f, fam, deployment=name, org=caller.org)]
    assert len(pair) == series_per_pair(codes=1) == len(EXPORT_EDGES_MS) + 4 == 9
    doc = DOC.read_text()
    assert f"{series_per_pair()} series" in doc
    emitted = {n for n in f if n.startswith("consortium_")}
    assert not [n for n in emitted if n not in doc], "families missing from docs/metrics.md"
    assert "docs/metrics.md" in (DOC.parents[1] / "README.md").read_text()


def _add_finished_jobs(services: Any, owner: Any) -> None:
    """A finished training job (45 s) and a federated job with rounds 0..2 (20 s and 30 s)."""
    from consortium.store.tables.jobs import Job, JobEvent

    now = utcnow()
    with transaction(services.session_factory) as s:
        user = owner.user_id
        s.add(Job(id=f"job_{secrets.token_hex(6)}", org_id=owner.org_id, user_id=user, kind="train", name="t",
                  state="succeeded", recipe={}, started_at=now - timedelta(seconds=45), finished_at=now))
        fid = f"job_{secrets.token_hex(6)}"
        s.add(Job(id=fid, org_id=owner.org_id, user_id=user, kind="federated", name="f", state="running",
                  recipe={"federated": {"strategy": "fedavg"}}, started_at=now - timedelta(seconds=60)))
        s.flush()
        for r, ago in ((0, 55), (1, 35), (2, 5)):
            s.add(JobEvent(job_id=fid, time=now - timedelta(seconds=ago), kind="progress",
                           data={"stage": "training", "round": r, "rounds": 2}))
