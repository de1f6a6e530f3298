"""Uploads through the HTTP API: every format, immutable versions, checksums, and bad input
refused with a 422 that names the fault while nothing is stored."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import numpy as np
import pandas as pd
import pytest
from data_files import API, csv_bytes, image_zip, npz_bytes, png, stored_blobs, temp_files, upload


@pytest.fixture(scope="module")
def owner(world: Any) -> Any:
    return world.actor(world.org(), "member")


def test_csv_upload_records_schema_and_versions_are_immutable(http: Any, owner: Any) -> None:
    data = csv_bytes(30).replace(b"\n25,", b"\n,", 1)  # one missing age
    r = upload(http, owner, "people", data, target="label", filename="people.csv")
    assert r.status_code == 201, r.text
    v = r.json()
    assert (v["version"], v["format"], v["kind"]) == (1, "csv", "tabular")
    assert (v["rows"], v["target"]) == (30, "label")
    assert v["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
    cols = {c["name"]: c for c in v["schema"]["columns"]}
    assert cols["age"]["type"] == "integer" and cols["age"]["missing"] == 1
    assert cols["city"]["type"] == "string" and "min" not in cols["city"]
    assert v["schema"]["classes"] == {"0": 15, "1": 15}

    again = upload(http, owner, "people", data, target="label", filename="people.csv")
    assert again.status_code == 200 and again.json()["created"] is False and again.json()["version"] == 1
    v2 = upload(http, owner, "people", csv_bytes(12), target="label").json()
    assert v2["version"] == 2 and v2["rows"] == 12
    first = http.get(f"{API}/{owner.org}/people/versions/1", headers=owner.headers).json()
    assert first["rows"] == 30 and first["checksum"] == v["checksum"]  # version 1 did not change
    got = http.get(f"{API}/{owner.org}/people/versions/1/download", headers=owner.headers)
    assert got.status_code == 200 and got.content == data
    assert got.headers["x-content-sha256"] == v["checksum"]
    listed = http.get(API, headers=owner.headers).json()["items"]
    assert any(d["name"] == "people" and d["latest_version"] == 2 and d["access"] == "owner" for d in listed)


def test_parquet_npz_and_image_zip(http: Any, owner: Any) -> None:
    buf = io.BytesIO()
    pd.DataFrame({"x": [1.5, 2.5, None, 4.0], "y": ["a", "b", "a", "a"]}).to_parquet(buf)
    r = upload(http, owner, "pq", buf.getvalue(), target="y", filename="t.parquet")
    assert r.status_code == 201, r.text
    s = r.json()["schema"]
    assert r.json()["format"] == "parquet" and s["classes"] == {"a": 3, "b": 1}
    x = dict(s["columns"][0])
    hist = x.pop("histogram")  # the profile's bins: every value counted once, from the minimum's bin
    assert x == {"name": "x", "type": "float", "missing": 1, "min": 1.5, "max": 4.0,
                 "mean": pytest.approx(8 / 3), "distinct": 3}
    assert sum(hist["counts"]) == 3 and hist["start"] <= 1.5 < hist["start"] + hist["width"]

    imgs = np.random.default_rng(0).integers(0, 255, (6, 5, 7, 3), dtype=np.uint8)  # NHWC
    r = upload(http, owner, "arrays", npz_bytes(imgs, np.array([0, 1, 2, 0, 1, 2])), filename="a.npz")
    assert r.status_code == 201, r.text
    s = r.json()["schema"]
    assert (s["image_shape"], s["channels"], s["rows"]) == ([3, 5, 7], 3, 6)
    assert s["classes"] == {"0": 2, "1": 2, "2": 2}

    z = image_zip({"cats/1.png": png(), "cats/2.png": png(value=9), "dogs/1.png": png(mode="RGB"),
                   "__MACOSX/._x": b"junk"})
    r = upload(http, owner, "pets", z, filename="pets.zip")
    assert r.status_code == 201, r.text
    s = r.json()["schema"]
    assert r.json()["format"] == "image_zip" and s["class_names"] == ["cats", "dogs"]
    assert (s["image_shape"], s["classes"]) == ([3, 8, 8], {"0": 2, "1": 1})
    pre = http.get(f"{API}/{owner.org}/pets/versions/latest/preview?rows=2", headers=owner.headers).json()
    assert len(pre["rows_preview"]) == 2 and np.array(pre["rows_preview"][0]["image"]).shape == (3, 8, 8)


BAD = [
    ("ragged", b"a,b,label\n1,2,0\n3,4,1\n5,6\n", {"target": "label"}, "line 4"),
    ("too-many", b"a,b,label\n1,2,0\n3,4,1,9\n", {"target": "label"}, "line 3"),
    ("latin1", "a,label\nd\u00e9j\u00e0,1\n".encode("latin-1"), {"target": "label"}, "line 2"),
    ("empty", b"", {}, "empty"),
    ("header-only", b"a,b\n", {}, "no rows"),
    ("no-target", b"a,b\n1,2\n", {"target": "outcome"}, "'outcome'"),
    ("bad-image", image_zip({"cats/ok.png": png(), "cats/broken.png": b"\x89PNG not really"}), {},
     "cats/broken.png"),
    ("mixed-sizes", image_zip({"a/1.png": png((8, 8)), "b/2.png": png((9, 8))}), {}, "b/2.png"),
    ("escape", image_zip({"cats/1.png": png(), "../evil.png": png()}), {}, "../evil.png"),
    ("broken-zip", b"PK\x03\x04broken zip", {"format": "npz"}, "not a readable"),
    ("bad-checksum", b"a,label\n1,0\n", {"sha256": "0" * 64}, "checksum mismatch"),
]


@pytest.mark.parametrize("case,data,params,needle", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_refused_and_nothing_is_stored(http: Any, services: Any, owner: Any, case: str,
                                                    data: bytes, params: dict[str, str], needle: str) -> None:
    before = stored_blobs(services)
    r = upload(http, owner, f"bad-{case}", data, **params)
    assert r.status_code == 422, r.text
    assert needle in r.json()["error"]["message"], r.json()
    assert stored_blobs(services) == before and temp_files(services) == []
    assert http.get(f"{API}/{owner.org}/bad-{case}", headers=owner.headers).status_code == 404


def test_pickled_npz_is_refused(http: Any, owner: Any) -> None:
    buf = io.BytesIO()
    np.savez(buf, images=np.zeros((2, 4, 4), np.uint8), labels=np.array([{"a": 1}, {"b": 2}], dtype=object))
    r = upload(http, owner, "pickled", buf.getvalue(), filename="p.npz")
    assert r.status_code == 422 and "pickled" in r.json()["error"]["message"]


def test_oversized_upload_gets_413_and_stores_nothing(http: Any, services: Any, owner: Any) -> None:
    limit = services.settings.max_upload_bytes
    before = stored_blobs(services)
    r = upload(http, owner, "huge", b"a,label\n" + b"1,0\n" * (limit // 4 + 10))
    assert r.status_code == 413

    def chunked():  # no content-length: the limit is enforced while streaming
        yield b"a,label\n"
        for _ in range(limit // (1 << 16) + 2):
            yield b"1,0\n" * (1 << 14)

    r = upload(http, owner, "huge", chunked())
    assert r.status_code == 413
    assert stored_blobs(services) == before and temp_files(services) == []
    assert http.get(f"{API}/{owner.org}/huge", headers=owner.headers).status_code == 404


def test_viewer_cannot_upload_and_names_are_checked(http: Any, world: Any, owner: Any) -> None:
    viewer = world.actor(owner.org, "viewer")
    assert upload(http, viewer, "nope", csv_bytes(3)).status_code == 403
    r = upload(http, owner, "Bad_Name!", csv_bytes(3))
    assert r.status_code == 422 and "not valid" in r.json()["error"]["message"]
