"""Zip and decompression bombs: image zip and NPZ uploads over the hub's archive limits get a 413
that names the limit and its setting, from the zip directory and from the bytes actually read,
and nothing is stored."""

from __future__ import annotations

import io
import struct
import zipfile
from typing import Any

import numpy as np
import pytest
from data_files import image_zip, png, stored_blobs, temp_files, upload

from consortium.data.archive import LimitedZip, ZipLimits
from consortium.errors import PayloadTooLarge

LIMITS = {"zip_max_members": 6, "zip_max_bytes": 1 << 20, "zip_max_ratio": 50, "image_max_pixels": 64 * 64}


@pytest.fixture(scope="module")
def settings(settings: Any) -> Any:  # the shared settings, with small archive limits
    return settings.model_copy(update=LIMITS)


@pytest.fixture(scope="module")
def owner(world: Any) -> Any:
    return world.actor(world.org(), "member")


def deflated(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def refused(http: Any, services: Any, owner: Any, data: bytes, *words: str) -> None:
    before = stored_blobs(services)
    r = upload(http, owner, "bomb", data, filename="bomb.zip")
    assert r.status_code == 413, r.text
    msg = r.json()["error"]["message"] + " " + (r.json()["error"].get("hint") or "")
    for w in words:
        assert w in msg, msg
    assert stored_blobs(services) == before and temp_files(services) == []
    assert http.get(f"/api/v1/datasets/{owner.org}/bomb", headers=owner.headers).status_code == 404


def test_archive_within_limits_is_accepted(http: Any, owner: Any) -> None:
    entries = {f"{c}/{i}.png": png((64, 64), value=i) for c in ("a", "b") for i in range(3)}
    r = upload(http, owner, "ok-images", deflated(entries), filename="ok.zip")
    assert r.status_code == 201, r.text
    assert r.json()["schema"]["image_shape"] == [1, 64, 64]


def test_too_many_members(http: Any, services: Any, owner: Any) -> None:
    entries = {f"c{i % 2}/{i}.png": png() for i in range(7)}
    refused(http, services, owner, image_zip(entries), "7 entries", "6", "CONSORTIUM_ZIP_MAX_MEMBERS")


def test_total_uncompressed_size_from_the_directory(http: Any, services: Any, owner: Any) -> None:
    noise = np.random.default_rng(0).integers(0, 255, 600_000, dtype=np.uint8).tobytes()  # incompressible
    entries = {"a/1.png": noise, "b/2.png": noise}
    refused(http, services, owner, deflated(entries), "expands to 1,200,000 bytes", "1,048,576",
            "CONSORTIUM_ZIP_MAX_BYTES")


def test_compression_ratio(http: Any, services: Any, owner: Any) -> None:
    refused(http, services, owner, deflated({"a/1.png": b"\0" * (512 << 10), "b/2.png": png()}),
            "'a/1.png' expands", "CONSORTIUM_ZIP_MAX_RATIO")


def test_npz_bomb(http: Any, services: Any, owner: Any) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, images=np.zeros((40, 128, 128), np.uint8), labels=np.zeros(40, np.int64))
    refused(http, services, owner, buf.getvalue(), "images.npy", "CONSORTIUM_ZIP_MAX_RATIO")


def test_image_pixels_from_the_header(http: Any, services: Any, owner: Any) -> None:
    entries = {"a/1.png": png((64, 64)), "b/2.png": png((65, 64))}
    refused(http, services, owner, image_zip(entries), "'b/2.png' is 65x64 = 4,160 pixels", "4,096",
            "CONSORTIUM_IMAGE_MAX_PIXELS")


def understated(name: str, data: bytes, claimed: int) -> bytes:
    """A zip whose central directory claims ``claimed`` uncompressed bytes for ``data``."""
    raw = bytearray(deflated({name: data}))
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24:cd + 28] = struct.pack("<I", claimed)  # central directory: uncompressed size
    return bytes(raw)


def test_a_directory_that_lies_about_sizes(http: Any, services: Any, owner: Any) -> None:
    """zipfile stops inflating at the size the directory declares, so a lie about a bomb's size
    yields at most that many bytes and then fails the CRC check: refused, nothing stored."""
    data = understated("a/1.png", b"\0" * (8 << 20), claimed=1000)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.infolist()[0].file_size == 1000  # the directory passes every limit
    before = stored_blobs(services)
    r = upload(http, owner, "liar", data, filename="liar.zip")
    assert r.status_code == 422 and "a/1.png" in r.text, r.text
    assert stored_blobs(services) == before


def test_inflated_bytes_are_counted_while_reading() -> None:
    """The limits hold for the bytes actually inflated, re-reads included, not only for the
    directory's figures."""
    payload = np.random.default_rng(1).integers(0, 255, 600_000, dtype=np.uint8).tobytes()
    z = LimitedZip(io.BytesIO(deflated({"a/1.bin": payload})), "zip archive", ZipLimits(max_bytes=1_000_000))
    assert z.read("a/1.bin") == payload  # 600,000 bytes: within the limit
    with pytest.raises(PayloadTooLarge, match="more than 1,0"):
        z.read("a/1.bin")  # 1,200,000 inflated in all
    unlimited = LimitedZip(io.BytesIO(deflated({"a/1.bin": payload})), "zip archive", None)
    for _ in range(3):
        assert len(unlimited.read("a/1.bin")) == len(payload)
