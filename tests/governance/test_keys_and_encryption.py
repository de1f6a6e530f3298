"""Master keyring, envelope-wrapped organization keys, rotation, and chunked authenticated encryption."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from consortium.errors import IntegrityError, InvalidInput
from consortium.governance.encryption import decrypt_chunks, encrypt_chunks
from consortium.governance.keys import Keyring, KeyService
from consortium.store.db import transaction


def test_master_key_file_is_created_private(tmp_path: Path) -> None:
    ring = Keyring.load(tmp_path)
    mode = stat.S_IMODE((tmp_path / "master.key").stat().st_mode)
    assert mode == 0o600
    assert Keyring.load(tmp_path).active == ring.active  # same key on the next start


def test_master_key_from_environment(tmp_path: Path) -> None:
    raw = os.urandom(32)
    ring = Keyring.load(tmp_path, base64.b64encode(raw).decode())
    assert ring.path is None and ring.keys[ring.active] == raw
    assert not (tmp_path / "master.key").exists()
    with pytest.raises(InvalidInput, match="base64 of 32"):
        Keyring.load(tmp_path, "not-a-key")


def _roundtrip(key: bytes, data: bytes, chunk: int) -> bytes:
    sealed = b"".join(encrypt_chunks(key, [data[i:i + 7] for i in range(0, len(data), 7)] or [b""], chunk))
    return b"".join(decrypt_chunks(key, [sealed[i:i + 5] for i in range(0, len(sealed), 5)]))


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 640, 1000])
def test_stream_roundtrip_at_chunk_boundaries(size: int) -> None:
    key = os.urandom(32)
    data = os.urandom(size)
    assert _roundtrip(key, data, 64) == data


def test_truncated_altered_or_reordered_blobs_are_refused() -> None:
    key = os.urandom(32)
    sealed = b"".join(encrypt_chunks(key, [os.urandom(1000)], chunk_size=100))
    header = 31
    step = 116
    cases = {
        "truncated at a chunk boundary": sealed[: header + 3 * step],
        "truncated mid-chunk": sealed[:-10],
        "altered": sealed[:200] + bytes([sealed[200] ^ 1]) + sealed[201:],
        "reordered": sealed[:header] + sealed[header + step: header + 2 * step]
        + sealed[header: header + step] + sealed[header + 2 * step:],
        "no header": sealed[:10],
    }
    for name, blob in cases.items():
        with pytest.raises(IntegrityError):
            b"".join(decrypt_chunks(key, [blob]))
        assert name
    with pytest.raises(IntegrityError):  # another key
        b"".join(decrypt_chunks(os.urandom(32), [sealed]))


def test_org_keys_are_separate_and_survive_rotation(services: Any, world: Any) -> None:
    a, b = world.org(), world.org()
    from consortium.governance.identity import org_by_name

    f = services.session_factory
    with transaction(f) as s:
        a_id, b_id = org_by_name(s, a).id, org_by_name(s, b).id
        sealed = b"".join(services.keys.encrypt_stream(s, a_id, [b"patient 42: diagnosis"]))
        with pytest.raises(IntegrityError):
            b"".join(services.keys.decrypt_stream(s, b_id, [sealed]))
    if services.keys.ring.path is None:
        pytest.skip("master key from env")
    before = services.keys.ring.active
    fresh = KeyService(Keyring.load(services.settings.home))  # a separate process's view of the keyring
    with transaction(f) as s:
        result = services.keys.rotate(s)
    assert result["active_master_key"] != before and result["rewrapped"] >= 2
    # a new process (empty cache) reads the new keyring and unwraps the re-wrapped key
    restarted = KeyService(Keyring.load(services.settings.home))
    assert before not in restarted.ring.keys
    with transaction(f) as s:
        key = restarted.data_key(s, a_id)
        assert b"".join(decrypt_chunks(key, [sealed])) == b"patient 42: diagnosis"
    assert fresh.ring.active == before


def test_rotation_through_api_and_operator_only(http: Any, world: Any) -> None:
    op = world.actor(world.org(), operator=True)
    owner = world.actor(world.org())
    assert http.post("/api/v1/keys/rotate", headers=owner.headers).status_code == 403
    r = http.post("/api/v1/keys/rotate", headers=op.headers)
    assert r.status_code == 200, r.text
    status = http.get("/api/v1/keys", headers=op.headers).json()
    assert status["active_master_key"] == r.json()["active_master_key"]
    assert list(status["wrapped_by"]) == [status["active_master_key"]]



def test_an_altered_or_cut_wrapped_data_key_is_an_integrity_error(services: Any, world: Any) -> None:
    """A wrapped key changed in the database (one bit, or cut short) is refused as an integrity
    failure, by a fresh key service (no cached key)."""
    from consortium.governance.identity import org_by_name
    from consortium.store.tables.keys import OrgKey

    org = world.org()
    with transaction(services.session_factory) as s:
        org_id = org_by_name(s, org).id
        row = s.get(OrgKey, org_id)
        good = bytes(row.wrapped)
    for bad in (good[:-1] + bytes([good[-1] ^ 1]), good[:8]):
        with transaction(services.session_factory) as s:
            s.get(OrgKey, org_id).wrapped = bad
        fresh = KeyService(services.keys.ring)
        with services.session_factory() as s, pytest.raises(IntegrityError, match="failed authentication"):
            fresh.data_key(s, org_id)
    with transaction(services.session_factory) as s:
        s.get(OrgKey, org_id).wrapped = good
    with services.session_factory() as s:
        assert len(KeyService(services.keys.ring).data_key(s, org_id)) == 32
