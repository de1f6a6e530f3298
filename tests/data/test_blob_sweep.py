"""Blob files no row refers to (a crash between a blob and its row, or after a deletion's commit)
are removed by ``Services.sweep_blobs`` once old enough; every referenced blob stays."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
from registry_models import constant_classifier

from consortium.store.db import transaction


def test_sweep_removes_only_old_unreferenced_blobs(http: Any, world: Any, services: Any) -> None:
    from consortium.registry import models as reg
    from consortium.store.tables.registry import ModelVersion

    a = world.actor(world.org(), "admin")
    r = http.post("/api/v1/datasets/import-sample", json={"sample": "iris", "name": "iris"}, headers=a.headers)
    assert r.status_code == 201, r.text
    with transaction(services.session_factory) as s:
        v = reg.register_version(s, a.org_id, "const", onnx=constant_classifier(1), blobs=services.blobs,
                                 task="classification", class_names=["a", "b", "c"], plots={"roc": b"\x89PNG fake"})
        kept = {v.blob_key, *v.plots.values()}
    root = services.blobs.store.root
    before = {p for p in root.glob("*/*") if p.parent.name != "tmp"}
    assert {p.name for p in before} >= kept
    old, fresh = root / "ab" / "d_stray_old", root / "ab" / "d_stray_new"
    for p in (old, fresh):
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b"left by a crash")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    for p in before:  # referenced blobs are old too: age alone never removes them
        os.utime(p, (two_days_ago, two_days_ago))

    assert services.sweep_blobs() == 1
    assert not old.exists() and fresh.exists()
    assert all(p.exists() for p in before)
    assert http.get(f"/api/v1/datasets/{a.org}/iris/versions/1/download", headers=a.headers).status_code == 200
    with services.session_factory() as s:
        assert reg.read_onnx(s, services.blobs, s.get(ModelVersion, v.id)) == constant_classifier(1)
    fresh.unlink()
