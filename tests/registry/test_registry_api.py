"""Registry through the HTTP API: register, upload, refuse bad files, model card, aliases (audited)."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
from registry_models import constant_classifier, fit_logistic, softmax_onnx, tiny_classifier

from consortium.store.db import transaction


@pytest.fixture(scope="module")
def owner(world: Any) -> Any:
    return world.actor(world.org(), "admin")


def _upload(http: Any, actor: Any, data: bytes, name: str, filename: str = "m.onnx", **params: Any) -> Any:
    return http.post("/api/v1/models/upload", params={"name": name, "filename": filename, **params},
                     content=data, headers={**actor.headers, "content-type": "application/octet-stream"})


def test_register_version_from_a_job_builds_a_model_card(http: Any, services: Any, owner: Any) -> None:
    from consortium.data.samples import load_sample
    from consortium.processing.preprocessor import Preprocessor
    from consortium.registry import models as reg

    data = load_sample("iris")
    prep = Preprocessor.fit(data, [{"normalize": {"method": "standard"}}], task="classification")
    X, y = prep.transform(data)
    w, b = fit_logistic(X, y, 3)
    lineage = {"job_id": "job_123", "recipe": {"name": "iris"}, "datasets": [{"dataset": "a/iris", "version": 2}],
               "organizations": [owner.org, "riverside"], "epsilon": 3.5}
    with transaction(services.session_factory) as s:
        v = reg.register_version(s, owner.org_id, "iris-clf", onnx=softmax_onnx(w, b), blobs=services.blobs,
                                 preprocessing=prep.state(), metrics={"accuracy": 0.96}, lineage=lineage,
                                 task="classification", class_names=prep.class_names,
                                 reference_stats={"mean": [0.0] * 4}, plots={"roc": b"\x89PNG..."},
                                 description="iris species")
        assert v.version == 1
    r = http.get(f"/api/v1/models/{owner.org}/iris-clf", headers=owner.headers)
    assert r.status_code == 200, r.text
    card = r.json()
    assert card["name"] == f"{owner.org}/iris-clf" and card["task"] == "classification"
    v1 = card["versions"][0]
    assert v1["metrics"] == {"accuracy": 0.96}
    assert v1["lineage"]["epsilon"] == 3.5 and v1["lineage"]["datasets"][0]["version"] == 2
    assert v1["lineage"]["organizations"] == [owner.org, "riverside"]
    assert v1["signature"]["inputs"][0]["shape"] == [-1, 4]
    full = http.get(f"/api/v1/models/{owner.org}/iris-clf/versions/1", headers=owner.headers).json()
    assert full["has_preprocessing"] and full["preprocessing"]["input_columns"] == prep.input_columns
    assert full["plots"] == ["roc"]
    png = http.get(f"/api/v1/models/{owner.org}/iris-clf/versions/1/plots/roc", headers=owner.headers)
    assert png.content == b"\x89PNG..."
    onnx_back = http.get(f"/api/v1/models/{owner.org}/iris-clf/versions/1/onnx", headers=owner.headers)
    assert onnx_back.content == softmax_onnx(w, b)
    r = http.patch(f"/api/v1/models/{owner.org}/iris-clf", json={"intended_use": "teaching"}, headers=owner.headers)
    assert r.json()["intended_use"] == "teaching"


def test_versions_are_stored_encrypted(services: Any, owner: Any, http: Any) -> None:
    data = tiny_classifier(7)
    r = _upload(http, owner, data, "enc-check")
    assert r.status_code == 201, r.text
    from consortium.store.tables.registry import ModelVersion

    with services.session_factory() as s:
        v = s.get(ModelVersion, r.json()["id"])
        stored = b"".join(services.blobs.store.get(v.blob_key))  # the raw store: sealed bytes
    assert data not in stored and stored[:4] == b"CSE1"


def test_upload_onnx_adds_versions(http: Any, owner: Any) -> None:
    r1 = _upload(http, owner, tiny_classifier(1), "uploaded", task="classification", class_names="a,b,c")
    r2 = _upload(http, owner, tiny_classifier(2), "uploaded")
    assert r1.status_code == 201 and r2.status_code == 201, (r1.text, r2.text)
    assert (r1.json()["version"], r2.json()["version"]) == (1, 2)
    assert r1.json()["signature"]["outputs"][0]["name"] == "probabilities"
    assert r1.json()["class_names"] == ["a", "b", "c"] and r1.json()["source_format"] == "onnx"
    listed = http.get("/api/v1/models", headers=owner.headers).json()["items"]
    assert any(m["name"].endswith("/uploaded") and m["latest_version"] == 2 for m in listed)


@pytest.mark.parametrize("data,filename,needle", [
    (b"\x08\x07garbage-not-onnx" * 10, "broken.onnx", "onnxruntime cannot load"),
    (b"PK\x03\x04 truncated zip", "broken.keras", "Keras"),
    (pickle.dumps({"w": [1, 2]}), "model.pkl", "pickle"),
    (pickle.dumps({"w": [1, 2]}), "model.bin", "pickle"),
    (b"", "empty.onnx", "empty"),
])
def test_bad_uploads_are_refused_and_register_nothing(http: Any, owner: Any, data: bytes, filename: str,
                                                      needle: str) -> None:
    r = _upload(http, owner, data, "refused", filename=filename)
    assert r.status_code == 422, r.text
    assert needle in r.json()["error"]["message"] + r.json()["error"].get("hint", "")
    assert http.get(f"/api/v1/models/{owner.org}/refused", headers=owner.headers).status_code == 404


def test_too_large_upload_is_413(http: Any, owner: Any, settings: Any) -> None:
    r = _upload(http, owner, b"\x08" * (settings.max_upload_bytes + 10), "huge")
    assert r.status_code == 413


def test_viewer_cannot_upload_and_other_org_cannot_see(http: Any, world: Any, owner: Any) -> None:
    viewer = world.actor(owner.org, "viewer")
    assert _upload(http, viewer, tiny_classifier(), "nope").status_code == 403
    _upload(http, owner, tiny_classifier(), "private")
    other = world.actor(world.org(), "owner")
    assert http.get(f"/api/v1/models/{owner.org}/private", headers=other.headers).status_code == 404
    assert http.get(f"/api/v1/models/{owner.org}/private", headers=viewer.headers).status_code == 200


def test_alias_moves_are_audited(http: Any, owner: Any) -> None:
    for label in (0, 1):
        _upload(http, owner, constant_classifier(label), "aliased")
    base = f"/api/v1/models/{owner.org}/aliased"
    r = http.put(f"{base}/aliases/production", json={"version": 1}, headers=owner.headers)
    assert r.status_code == 200 and r.json()["version"] == 1 and r.json()["previous"] is None
    r = http.put(f"{base}/aliases/production", json={"version": 2}, headers=owner.headers)
    assert r.json() == {**r.json(), "version": 2, "previous": 1}
    assert http.get(f"{base}/versions/production", headers=owner.headers).json()["version"] == 2
    assert http.put(f"{base}/aliases/production", json={"version": 9}, headers=owner.headers).status_code == 404
    assert http.put(f"{base}/aliases/Bad Alias", json={"version": 1}, headers=owner.headers).status_code in (404, 422)
    events = http.get("/api/v1/audit", params={"action": "set_alias"}, headers=owner.headers).json()["items"]
    moves = [(e["details"].get("from_version"), e["details"].get("to_version")) for e in events
             if e["outcome"] == "ok"]
    assert (1, 2) in moves and (None, 1) in moves
    assert http.get(base, headers=owner.headers).json()["aliases"] == {"production": 2}
    r = http.delete(f"{base}/aliases/production", headers=owner.headers)
    assert r.status_code == 200 and http.get(base, headers=owner.headers).json()["aliases"] == {}


def test_register_training_result(services: Any, owner: Any) -> None:
    from consortium.data.samples import load_sample
    from consortium.registry import models as reg
    from consortium.training.pipeline import run_training

    res = run_training({"name": "iris", "data": {"target": "target"}, "process": [{"normalize": {}}],
                        "model": {"type": "logistic"}, "train": {"lr": 0.1, "epochs": 5}}, load_sample("iris"))
    with transaction(services.session_factory) as s:
        v = reg.register_training_result(s, owner.org_id, "trained", res, blobs=services.blobs,
                                         lineage={"job_id": "job_1"})
        assert v.source_format == "training" and v.lineage["job_id"] == "job_1"
        assert v.lineage["recipe"]["name"] == "iris" and v.class_names == res.class_names
        assert set(v.plots) == set(res.plots) and v.preprocessing == res.preprocessing
        assert reg.read_onnx(s, services.blobs, v) == res.onnx
    assert np.isfinite(v.metrics["accuracy"])
