"""Deployments through the HTTP API: predict with preprocessing, bad input, grants with quotas,
usage accounting, revocation, undeploy, and alias switches under load without dropped requests."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
from registry_models import constant_classifier, fit_logistic, softmax_onnx

from consortium.store.db import transaction


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll with a deadline instead of sleeping."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
    return value


@pytest.fixture(scope="module")
def owner(world: Any) -> Any:
    return world.actor(world.org(), "admin")


@pytest.fixture(scope="module")
def iris_deployment(http: Any, services: Any, owner: Any) -> dict[str, Any]:
    """A logistic regression trained on iris with fitted preprocessing, deployed as 'iris-<org>'."""
    from consortium.data.samples import load_sample
    from consortium.processing.preprocessor import Preprocessor
    from consortium.registry import models as reg

    data = load_sample("iris")
    prep = Preprocessor.fit(data, [{"normalize": {"method": "standard"}}], task="classification")
    X, y = prep.transform(data)
    w, b = fit_logistic(X, y, 3)
    with transaction(services.session_factory) as s:
        reg.register_version(s, owner.org_id, "iris", onnx=softmax_onnx(w, b), blobs=services.blobs,
                             preprocessing=prep.state(), task="classification", class_names=prep.class_names)
    name = f"iris-{owner.org}"
    r = http.post("/api/v1/deployments", json={"name": name, "model": "iris"}, headers=owner.headers)
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1 and r.json()["pinned_version"] == 1
    rows = data.frame[prep.input_columns].to_numpy().tolist()
    labels = [prep.class_names[i] for i in y]
    return {"name": name, "rows": rows, "labels": labels, "columns": prep.input_columns}


def test_predict_applies_preprocessing_and_names_classes(http: Any, owner: Any,
                                                         iris_deployment: dict[str, Any]) -> None:
    d = iris_deployment
    r = http.post(f"/api/v1/deployments/{d['name']}/predict", json={"inputs": d["rows"]}, headers=owner.headers)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["class_names"] == ["setosa", "versicolor", "virginica"] and out["version"] == 1
    acc = np.mean([p == t for p, t in zip(out["predictions"], d["labels"], strict=True)])
    assert acc > 0.9, acc
    probs = np.array(out["probabilities"])
    assert probs.shape == (150, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    by_name = [dict(zip(d["columns"], row, strict=True)) for row in d["rows"][:3]]  # objects by column work too
    r2 = http.post(f"/api/v1/deployments/{d['name']}/predict", json={"inputs": by_name}, headers=owner.headers)
    assert r2.json()["predictions"] == out["predictions"][:3]


@pytest.mark.parametrize("body,status,needle", [
    ({"inputs": [[1.0, 2.0]]}, 400, "4 values"),
    ({"inputs": [["a", "b", "c", "d"]]}, 400, ""),
    ({"inputs": []}, 400, "non-empty"),
    ({"rows": [[1, 2, 3, 4]]}, 400, "inputs"),
])
def test_bad_input_is_400_naming_the_expected_shape(http: Any, owner: Any, iris_deployment: dict[str, Any],
                                                    body: Any, status: int, needle: str) -> None:
    r = http.post(f"/api/v1/deployments/{iris_deployment['name']}/predict", json=body, headers=owner.headers)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"] + r.json()["error"].get("hint", "")


def test_unknown_deployment_is_404_and_too_large_is_413(http: Any, owner: Any, iris_deployment: dict[str, Any],
                                                        settings: Any) -> None:
    assert http.post("/api/v1/deployments/nope-nope/predict", json={"inputs": [[1]]},
                     headers=owner.headers).status_code == 404
    big = b'{"inputs": [[' + b"1.0," * (settings.max_body_bytes // 4) + b"1.0]]}"
    r = http.post(f"/api/v1/deployments/{iris_deployment['name']}/predict", content=big,
                  headers={**owner.headers, "content-type": "application/json"})
    assert r.status_code == 413


def clear_of_minute_end(margin_s: float = 20.0) -> None:
    """Wait for the next clock minute when fewer than ``margin_s`` seconds of this one are left
    (a quota's minute is epoch // 60; a loaded machine can take seconds over a few calls)."""
    left = 60 - time.time() % 60
    if left < margin_s:
        time.sleep(left + 0.05)


def test_grant_quota_usage_and_revocation(http: Any, world: Any, owner: Any, iris_deployment: dict[str, Any]) -> None:
    name = iris_deployment["name"]
    other = world.actor(world.org(), "member")
    url = f"/api/v1/deployments/{name}/predict"
    row = {"inputs": iris_deployment["rows"][:1]}
    assert http.post(url, json=row, headers=other.headers).status_code == 404  # no grant: hidden
    g = http.post("/api/v1/grants", json={"resource_type": "deployment", "resource": name, "permission": "invoke",
                                          "grantee_org": other.org, "limits": {"per_minute": 3}},
                  headers=owner.headers)
    assert g.status_code == 201, g.text
    clear_of_minute_end()  # the quota is per clock minute: the four calls must fall in one
    codes = [http.post(url, json=row, headers=other.headers).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    r = http.post(url, json=row, headers=other.headers)
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
    assert http.post(url, json=row, headers=owner.headers).status_code == 200  # the owner has no quota
    listed = http.get("/api/v1/deployments", headers=other.headers).json()["items"]
    assert [d["limits"] for d in listed if d["name"] == name] == [{"per_minute": 3}]

    def counted() -> dict[str, Any] | None:
        u = http.get(f"/api/v1/deployments/{name}/usage", headers=owner.headers).json()["totals"]
        mine = u.get(other.org, {})
        return u if mine.get("count") == 3 and mine.get("rejected", 0) >= 1 else None

    wait_for(counted, timeout=10, what="usage and the refusal flushed to the database")
    mine = http.get(f"/api/v1/deployments/{name}/usage", headers=other.headers).json()["totals"]
    assert set(mine) == {other.org}  # a grantee sees only its own usage
    denied = http.get("/api/v1/audit", params={"outcome": "quota_exceeded"}, headers=owner.headers).json()["items"]
    assert len(denied) == 1  # the first refusal of the minute is audited, the rest counted
    http.delete(f"/api/v1/grants/{g.json()['id']}", headers=owner.headers)
    t0 = time.monotonic()
    wait_for(lambda: http.post(url, json=row, headers=other.headers).status_code == 404, timeout=5,
             what="revocation to take effect")
    assert time.monotonic() - t0 < 2.5


def test_quota_holds_across_processes_via_the_database(services: Any, iris_deployment: dict[str, Any],
                                                       owner: Any, world: Any) -> None:
    """Two meters (two hub processes) share the quota through the database's counters: together
    they admit the quota, never more; what one reserved and did not use goes back to the day."""
    from consortium.errors import QuotaExceeded
    from consortium.serving.hub.usage import UsageMeter

    a, b = UsageMeter(services.session_factory, interval=0), UsageMeter(services.session_factory, interval=0)
    limits = {"per_minute": 5, "per_day": 1000}  # batches of 1 (a tenth of 5, at least 1)
    for _ in range(4):
        a.admit("dep_x", owner.org_id, "org_y", limits)
    b.admit("dep_x", owner.org_id, "org_y", limits)
    for m in (a, b):
        with pytest.raises(QuotaExceeded, match="5 calls per minute"):
            m.admit("dep_x", owner.org_id, "org_y", limits)
    big = {"per_minute": 100}  # batches of 10: c holds 9 unused after one call
    c, d = UsageMeter(services.session_factory, interval=0), UsageMeter(services.session_factory, interval=0)
    c.admit("dep_z", owner.org_id, "org_y", big)
    admitted = 1
    for _ in range(200):
        try:
            d.admit("dep_z", owner.org_id, "org_y", big)
            admitted += 1
        except QuotaExceeded:
            break
    assert admitted == 91  # the quota less c's unused reservation, never more than the quota
    assert c.give_back(final=True) == 9
    d._exhausted.clear()  # a new minute's first try, as it would be for d after the minute ends
    for _ in range(9):
        d.admit("dep_z", owner.org_id, "org_y", big)
    with pytest.raises(QuotaExceeded):
        d.admit("dep_z", owner.org_id, "org_y", big)


def test_undeploy(http: Any, owner: Any, services: Any) -> None:
    from consortium.registry import models as reg

    with transaction(services.session_factory) as s:
        reg.register_version(s, owner.org_id, "short-lived", onnx=constant_classifier(0), blobs=services.blobs)
    name = f"gone-{owner.org}"
    assert http.post("/api/v1/deployments", json={"name": name, "model": "short-lived:1"},
                     headers=owner.headers).status_code == 201
    assert http.post("/api/v1/deployments", json={"name": name, "model": "short-lived"},
                     headers=owner.headers).status_code == 409
    assert http.post(f"/api/v1/deployments/{name}/predict", json={"inputs": [[0, 0, 0, 0]]},
                     headers=owner.headers).status_code == 200
    assert http.delete(f"/api/v1/deployments/{name}", headers=owner.headers).status_code == 200
    wait_for(lambda: http.post(f"/api/v1/deployments/{name}/predict", json={"inputs": [[0, 0, 0, 0]]},
                               headers=owner.headers).status_code == 404, timeout=3, what="undeploy")


def test_alias_switch_under_load_drops_nothing(live_url: str, owner: Any, services: Any) -> None:
    from consortium.registry import models as reg

    with transaction(services.session_factory) as s:
        for label in (0, 2):
            reg.register_version(s, owner.org_id, "switch", onnx=constant_classifier(label), blobs=services.blobs,
                                     task="classification", class_names=["a", "b", "c"])
        model = reg.find_model(s, owner.org, "switch")
        s.add(reg.ModelAlias(model_id=model.id, alias="production", version_id=reg.get_version(s, model, 1).id))
    name = f"switch-{owner.org}"
    with httpx.Client(base_url=live_url, headers=owner.headers, timeout=30) as c:
        assert c.post("/api/v1/deployments", json={"name": name, "model": "switch@production"}).status_code == 201
        results: list[tuple[int, str]] = []
        stop = threading.Event()

        def hammer() -> None:
            with httpx.Client(base_url=live_url, headers=owner.headers, timeout=30) as h:
                while not stop.is_set():
                    r = h.post(f"/api/v1/deployments/{name}/predict", json={"inputs": [[1, 2, 3, 4]]})
                    results.append((r.status_code, r.json()["predictions"][0] if r.status_code == 200 else r.text))

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        wait_for(lambda: len(results) > 50, timeout=20, what="traffic before the switch")
        r = c.put(f"/api/v1/models/{owner.org}/switch/aliases/production", json={"version": 2})
        assert r.status_code == 200 and r.json()["deployments"] == [name]
        n = len(results)
        wait_for(lambda: len(results) > n + 100, timeout=20, what="traffic after the switch")
        stop.set()
        for t in threads:
            t.join(10)
    bad = [x for x in results if x[0] != 200]
    assert not bad, bad[:3]
    labels = [x[1] for x in results]
    assert labels[0] == "a" and labels[-1] == "c"
    first_c = labels.index("c")
    assert all(x == "c" for x in labels[first_c + 20:])  # switched for good (in-flight stragglers aside)


def test_serving_front_answers_like_the_router(services: Any, http: Any, owner: Any,
                                               iris_deployment: dict[str, Any]) -> None:
    """The front (consortium.api.front) and the routes behind it give the same answers and errors."""
    from fastapi.testclient import TestClient

    from consortium.web import create_app

    d = iris_deployment
    url = f"/api/v1/deployments/{d['name']}/predict"
    calls = [(url, {"json": {"inputs": d["rows"][:5]}}),
             (url, {"content": b"{not json", "headers": {"content-type": "application/json"}}),
             (url, {"json": {"inputs": [[1.0, 2.0]]}}),
             ("/api/v1/deployments/no-such-deployment/predict", {"json": {"inputs": [[1.0]]}}),
             ("/v2/models/no-such-deployment/infer", {"json": {"inputs": []}})]
    with TestClient(create_app(services.settings, services=services, serving_front=False)) as router:
        for path, kw in calls:
            kw = {**kw, "headers": {**kw.get("headers", {}), **owner.headers}}
            a, b = http.post(path, **kw), router.post(path, **kw)
            assert a.status_code == b.status_code, (path, a.text, b.text)
            ja, jb = a.json(), b.json()
            for j in (ja, jb):
                j.pop("prediction_id", None)
            assert ja == jb, (path, ja, jb)
            assert a.headers["x-request-id"] and b.headers["x-request-id"]
    assert http.post(url, json={"inputs": d["rows"][:1]}, headers={**owner.headers, "x-request-id": "trace-42"}
                     ).headers["x-request-id"] == "trace-42"


def test_predict_with_a_session_cookie_needs_the_csrf_token(services: Any, owner: Any,
                                                            iris_deployment: dict[str, Any]) -> None:
    """A browser session may predict (the UI's try-it form) only with the page's CSRF token."""
    from fastapi.testclient import TestClient

    from consortium.governance import credentials
    from consortium.governance.secrets import sign
    from consortium.web import create_app

    with TestClient(create_app(services.settings, services=services)) as browser:  # its own cookie jar
        r = browser.post("/api/v1/auth/login", json={"email": owner.email, "password": "correct horse battery"})
        assert r.status_code == 200, r.text
        with services.session_factory() as s:
            via = credentials.resolve_session(s, r.json()["session_token"]).via
        url = f"/api/v1/deployments/{iris_deployment['name']}/predict"
        body = {"inputs": iris_deployment["rows"][:1]}
        refused = browser.post(url, json=body)
        assert refused.status_code == 403 and "CSRF" in refused.json()["error"]["message"]
        assert browser.post(url, json=body, headers={"x-csrf-token": "forged"}).status_code == 403
        ok = browser.post(url, json=body, headers={"x-csrf-token": sign(services.settings.secret_key, f"csrf:{via}")})
        assert ok.status_code == 200, ok.text
        assert ok.json()["predictions"] == [iris_deployment["labels"][0]]


def test_concurrent_predictions_are_preprocessed_per_batch_each_answer_its_own(
        services: Any, owner: Any, iris_deployment: dict[str, Any]) -> None:
    """Concurrent /predict calls are decoded one by one and preprocessed, run and post-processed
    as one batch (``Endpoint.stage``): each caller still gets exactly its answer alone, and a
    bad request in a batch gets its own error, naming its own row, without failing the others."""
    import asyncio

    from consortium.errors import BadRequest
    from consortium.serving.service import BatchingConfig

    d = iris_deployment
    rows, cols = d["rows"], d["columns"]
    good: list[Any] = [rows[i:i + 1 + i % 3] for i in range(0, 40, 4)]  # 1 to 3 rows each
    good.append([dict(zip(cols, r, strict=True)) for r in rows[50:52]])  # objects by column batch with lists
    bad = {3: [rows[0], [rows[1][0], None, *rows[1][2:]]], 7: [[1.0, 2.0]]}  # a missing value; 2 of 4 values
    raws = [bad.get(i, g) for i, g in enumerate(good)]
    mon = services.running_monitor()
    rt = services.serving_runtime(BatchingConfig(max_batch_size=8, inline_below_ms=0.0))

    async def main() -> tuple[list[Any], list[Any]]:
        target = await rt.target(f"{owner.org}~{d['name']}")
        ep = await rt.endpoint(target.version_id)

        async def one(raw: Any) -> Any:
            try:
                return ep.answer(target.name, await ep.predict(rt.inference(), raw))
            except BadRequest as e:
                return e

        together = await asyncio.gather(*(one(r) for r in raws))
        alone = [await one(r) for r in raws]
        await rt.aclose()
        return together, alone

    info_label = f"{owner.org}/iris"  # the batch series is per model: every version in one
    before = mon.batches.get(info_label)
    calls0, served0 = (sum(before.requests), before.requests_sum) if before else (0, 0)
    together, alone = asyncio.run(main())
    after = mon.batches[info_label]
    assert after.requests_sum - served0 > sum(after.requests) - calls0  # some calls served several requests
    for i, (a, b) in enumerate(zip(together, alone, strict=True)):
        if i in bad:
            assert isinstance(a, BadRequest) and isinstance(b, BadRequest) and a.message == b.message, (a, b)
            continue
        assert a["predictions"] == b["predictions"] and len(a["predictions"]) == len(raws[i])
        np.testing.assert_allclose(a["probabilities"], b["probabilities"], rtol=1e-6)
        expected = [d["labels"][rows.index(r if isinstance(r, list) else [r[c] for c in cols])] for r in raws[i]]
        assert np.mean([p == t for p, t in zip(a["predictions"], expected, strict=True)]) >= 0.5
    assert "row 1 has a missing value" in together[3].message and "4 values" in together[7].hint + together[7].message


def test_a_revoked_token_stops_predicting_within_the_gate_ttl(http: Any, owner: Any,
                                                              iris_deployment: dict[str, Any]) -> None:
    """Admissions are remembered between calls (``ServingRuntime._remember``), never beyond the
    gate's entries behind them: a revoked token is refused within ``2 * ttl`` (1 s each)."""
    tok = http.post("/api/v1/tokens", json={"name": "predictor"}, headers=owner.headers).json()
    url, body = f"/api/v1/deployments/{iris_deployment['name']}/predict", {"inputs": iris_deployment["rows"][:1]}
    bearer = {"authorization": f"Bearer {tok['token']}"}
    for _ in range(20):  # admitted, and remembered
        assert http.post(url, json=body, headers=bearer).status_code == 200
    assert http.delete(f"/api/v1/tokens/{tok['id']}", headers=owner.headers).status_code in (200, 204)
    revoked = time.monotonic()
    wait_for(lambda: http.post(url, json=body, headers=bearer).status_code == 401, timeout=5, what="refusal")
    assert time.monotonic() - revoked < 2.5


def test_serving_outlives_an_app_its_usage_flushing_starts_again(services: Any, http: Any, owner: Any,
                                                                  iris_deployment: dict[str, Any]) -> None:
    """``Services.serving`` is built once: an app's shutdown stops it (its counts written), and the
    next call starts it again, so calls after that still reach the database without a flush."""
    from fastapi.testclient import TestClient

    from consortium.web import create_app

    url, body = f"/api/v1/deployments/{iris_deployment['name']}/predict", {"inputs": iris_deployment["rows"][:1]}
    usage = f"/api/v1/deployments/{iris_deployment['name']}/usage"

    def count() -> int:
        return int(http.get(usage, headers=owner.headers).json()["totals"].get(owner.org, {}).get("count", 0))

    rt = services.serving
    with TestClient(create_app(services.settings, services=services)) as other:
        assert other.post(url, json=body, headers=owner.headers).status_code == 200
    assert services.serving is rt and not rt.running  # stopped, and everything counted is written
    before = count()
    assert http.post(url, json=body, headers=owner.headers).status_code == 200
    assert rt.running
    wait_for(lambda: count() == before + 1, timeout=5, what="the restarted meter to flush the new call")
