"""Signed prediction ids: what they carry, what breaks them, and how long they get."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from consortium.errors import NotFound
from consortium.monitoring.ids import MAX_ID_CHARS, MAX_OUTPUT_BYTES, PredictionIds, derive_key

DEP, VER, ORG = "dep_00000000000000aa", "mv_00000000000000bb", "org_00000000000000cc"


def test_round_trip_of_each_kind_of_answer() -> None:
    ids = PredictionIds(derive_key("s" * 32))
    cls = ids.verify(DEP, ids.sign(DEP, VER, ORG, "predict", {"predictions": ["c", "a", "c"],
                                                               "class_names": ["a", "b", "c"]}) or "")
    assert (cls.version_id, cls.caller_org_id, cls.rows, cls.classes, cls.indices, cls.values) == \
        (VER, ORG, 3, 3, [2, 0, 2], None)
    reg = ids.verify(DEP, ids.sign(DEP, VER, "org_x", "predict", {"predictions": [1.5, [-2.25, 9.0]]}) or "")
    assert (reg.caller_org_id, reg.values, reg.indices) == ("org_x", [1.5, -2.25], None)
    y = np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]], dtype=np.float32)
    both = ids.verify(DEP, ids.sign(DEP, VER, ORG, "v2", {"probabilities": y}) or "")
    assert both.indices == [1, 0] and both.classes == 3 and both.values == pytest.approx([0.1, 0.6])
    one = ids.verify(DEP, ids.sign(DEP, VER, ORG, "v2", {"p": np.array([0.9, 0.2])}) or "")
    assert one.values == pytest.approx([0.9, 0.2]) and one.indices is None
    a, b = (ids.sign(DEP, VER, ORG, "predict", {"predictions": [1.0]}) for _ in range(2))
    assert a != b and ids.verify(DEP, a or "").key != ids.verify(DEP, b or "").key  # one feedback row each


def test_any_change_key_or_deployment_is_refused() -> None:
    ids = PredictionIds(derive_key("s" * 32))
    pid = ids.sign(DEP, VER, ORG, "predict", {"predictions": ["b"], "class_names": ["a", "b"]}) or ""
    raw = base64.urlsafe_b64decode(pid[4:] + "=" * (-len(pid[4:]) % 4))
    for i in range(len(raw)):
        bad = bytearray(raw)
        bad[i] ^= 0x10
        with pytest.raises(NotFound):
            ids.verify(DEP, "prd_" + base64.urlsafe_b64encode(bytes(bad)).rstrip(b"=").decode())
    for dep, key in [("dep_00000000000000ab", "s" * 32), (DEP, "t" * 32)]:
        with pytest.raises(NotFound):
            PredictionIds(derive_key(key)).verify(dep, pid)
    for junk in ["", "prd_", "prd_!!!", "prd_" + "A" * 300, pid[:-1], pid + "AA", "xyz" + pid[3:]]:
        with pytest.raises(NotFound):
            ids.verify(DEP, junk)


def test_length_is_bounded() -> None:
    ids = PredictionIds(b"k" * 32)
    most = [ids.sign(DEP, VER, ORG, "predict", {"predictions": ["a"] * (MAX_OUTPUT_BYTES * 8),
                                                "class_names": ["a", "b"]}),
            ids.sign(DEP, VER, ORG, "predict", {"predictions": [0.5] * (MAX_OUTPUT_BYTES // 4)}),
            ids.sign(DEP, VER, ORG, "v2", {"y": np.zeros((MAX_OUTPUT_BYTES // 5, 10))})]
    assert all(p is not None and len(p) <= MAX_ID_CHARS for p in most), [len(p or "") for p in most]
    too_long = [ids.sign(DEP, VER, ORG, "predict", {"predictions": ["a"] * (MAX_OUTPUT_BYTES * 8 + 1),
                                                    "class_names": ["a", "b"]}),
                ids.sign(DEP, VER, ORG, "predict", {"predictions": [0.5] * (MAX_OUTPUT_BYTES // 4 + 1)}),
                ids.sign(DEP, "v" * 120, ORG, "predict", {"predictions": [0.5] * 20}),
                ids.sign(DEP, VER, ORG, "predict", {"predictions": [1e300]}),  # not a float32
                ids.sign(DEP, VER, ORG, "predict", {"predictions": ["zebra"], "class_names": ["a", "b"]})]
    assert too_long == [None] * 5  # the monitor keeps these answers in the log instead


def test_ids_survive_a_key_rotation_while_the_old_key_is_kept(tmp_path: Path) -> None:
    old = PredictionIds(derive_key("o" * 32))
    pid = old.sign(DEP, VER, ORG, "predict", {"predictions": ["b"], "class_names": ["a", "b"]}) or ""
    rotated = PredictionIds(derive_key("n" * 32), [derive_key("o" * 32)])
    assert rotated.verify(DEP, pid).indices == [1]
    assert rotated.sign(DEP, VER, ORG, "predict", {"predictions": ["a"], "class_names": ["a", "b"]}) is not None
    with pytest.raises(NotFound):  # once the old key is dropped, its ids are unknown
        PredictionIds(derive_key("n" * 32)).verify(DEP, pid)
    from consortium.config import Settings
    from consortium.monitoring.recorder import Monitor
    from consortium.services import Services

    svc = Services.start(Settings(home=tmp_path, secret_key="n" * 32, previous_secret_keys=["o" * 32]))
    try:  # the hub's monitor takes the kept keys from the settings (CONSORTIUM_PREVIOUS_SECRET_KEYS)
        assert Monitor(svc, interval=0).ids.verify(DEP, pid).indices == [1]
    finally:
        svc.close()
