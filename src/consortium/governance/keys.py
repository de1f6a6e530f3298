"""Key management: the hub's master keyring and each organization's data key (envelope encryption).

The master key lives in ``CONSORTIUM_HOME/master.key`` (mode 0600, created at first start) or
comes from ``CONSORTIUM_MASTER_KEY``. Each organization's 256-bit data key is stored wrapped by
the master key with AES-256-GCM (the organization id is the associated data, so a wrapped key
cannot be moved to another organization). Rotation re-wraps every data key under a new master
key without touching the data it protects; the old master key stays in the keyring file until
the re-wrap has committed, so a crash at any point leaves every data key readable.

The keyring also holds the audit root (``consortium.governance.audit_keys``): derived once from
the master key with its own HKDF label, then kept as it is, so a rotation does not change the keys
that verify the audit chain. With ``CONSORTIUM_MASTER_KEY`` it is derived from that key each start.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.orm import Session

from consortium.errors import Conflict, IntegrityError, InvalidInput, NotFound
from consortium.fileutil import write_private
from consortium.governance.audit_keys import audit_key_id, derive_audit_root
from consortium.governance.encryption import decrypt_chunks, encrypt_chunks
from consortium.store.tables.base import utcnow
from consortium.store.tables.keys import OrgKey


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"consortium-master-key-id" + key).hexdigest()[:16]


@dataclass
class Keyring:
    """Master keys by id; ``active`` wraps new data keys. ``path`` is None when keys come from the env.
    ``audit_root`` keys the audit chain; it survives rotation (derived from ``active`` when absent)."""

    keys: dict[str, bytes]
    active: str
    path: Path | None
    audit_root: bytes = b""

    def __post_init__(self) -> None:
        if not self.audit_root:
            self.audit_root = derive_audit_root(self.keys[self.active])

    @classmethod
    def load(cls, home: Path, env_key: str | None = None) -> Keyring:
        if env_key:
            try:
                raw = base64.b64decode(env_key, validate=True)
            except ValueError:
                raw = b""
            if len(raw) != 32:
                raise InvalidInput("CONSORTIUM_MASTER_KEY must be the base64 of 32 random bytes",
                                   hint="make one with: python -c \"import os,base64;"
                                        "print(base64.b64encode(os.urandom(32)).decode())\"")
            return cls({key_id(raw): raw}, key_id(raw), None)
        path = home / "master.key"
        if not path.exists():
            home.mkdir(parents=True, exist_ok=True)
            raw = secrets.token_bytes(32)
            ring = cls({key_id(raw): raw}, key_id(raw), path)
            ring.save()
            return ring
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        doc = json.loads(path.read_text())
        keys = {k: base64.b64decode(v) for k, v in doc["keys"].items()}
        ring = cls(keys, doc["active"], path, base64.b64decode(doc.get("audit", "")))
        if "audit" not in doc:  # a keyring from before the keyed audit chain: keep the root from now on
            ring.save()
        return ring

    def save(self) -> None:
        if self.path is None:
            raise InvalidInput("the master key comes from CONSORTIUM_MASTER_KEY: there is no keyring file to save",
                               hint="unset it to let the hub keep a keyring file")
        doc = {"active": self.active, "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()},
               "audit": base64.b64encode(self.audit_root).decode()}
        write_private(self.path, json.dumps(doc, indent=1).encode())


class KeyService:
    """Wraps, unwraps and caches organizations' data keys; rotates the master key."""

    def __init__(self, ring: Keyring) -> None:
        self.ring = ring
        self._cache: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def _wrap(self, org_id: str, data_key: bytes, master_id: str) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + AESGCM(self.ring.keys[master_id]).encrypt(nonce, data_key, org_id.encode())

    def _unwrap(self, row: OrgKey) -> bytes:
        master = self.ring.keys.get(row.master_key_id)
        if master is None:
            raise IntegrityError(f"the master key {row.master_key_id} that wraps this organization's "
                                 "data key is not in the keyring",
                                 hint="restore master.key or CONSORTIUM_MASTER_KEY from backup")
        try:
            return AESGCM(master).decrypt(row.wrapped[:12], row.wrapped[12:], row.org_id.encode())
        except (InvalidTag, ValueError) as e:  # altered, or too short to hold a nonce and a tag
            raise IntegrityError("an organization's wrapped data key failed authentication") from e

    def create_org_key(self, session: Session, org_id: str) -> None:
        if session.get(OrgKey, org_id) is not None:
            raise Conflict("this organization already has a data key")
        data_key = secrets.token_bytes(32)
        session.add(OrgKey(org_id=org_id, master_key_id=self.ring.active,
                           wrapped=self._wrap(org_id, data_key, self.ring.active)))

    def data_key(self, session: Session, org_id: str) -> bytes:
        with self._lock:
            if org_id in self._cache:
                return self._cache[org_id]
        row = session.get(OrgKey, org_id)
        if row is None:
            raise NotFound(f"no data key for organization {org_id}")
        key = self._unwrap(row)
        with self._lock:
            self._cache[org_id] = key
        return key

    def encrypt_stream(self, session: Session, org_id: str, plaintext: Iterable[bytes]) -> Iterator[bytes]:
        """Seal a stream with the organization's data key (blobs: ``SealedBlobs``; the prediction log)."""
        return encrypt_chunks(self.data_key(session, org_id), plaintext)

    def decrypt_stream(self, session: Session, org_id: str, sealed: Iterable[bytes]) -> Iterator[bytes]:
        """Open what ``encrypt_stream`` sealed for the organization (``IntegrityError`` if altered)."""
        return decrypt_chunks(self.data_key(session, org_id), sealed)

    def status(self, session: Session) -> dict[str, object]:
        rows = session.scalars(select(OrgKey)).all()
        by_master: dict[str, int] = {}
        for r in rows:
            by_master[r.master_key_id] = by_master.get(r.master_key_id, 0) + 1
        return {"active_master_key": self.ring.active, "source": "file" if self.ring.path else "env",
                "data_keys": len(rows), "wrapped_by": by_master, "audit_key": audit_key_id(self.ring.audit_root)}

    def rotate(self, session: Session) -> dict[str, object]:
        """Re-wrap every data key under a fresh master key. Commits itself, in steps that survive a crash."""
        if self.ring.path is None:
            raise InvalidInput("the master key comes from CONSORTIUM_MASTER_KEY, so the hub cannot replace it",
                               hint="unset it to let the hub keep a keyring file, or rotate by "
                                    "re-deploying with a new key after re-wrapping offline")
        old = self.ring.active
        new = secrets.token_bytes(32)
        new_id = key_id(new)
        # 1. the new key is on disk before anything is wrapped with it
        self.ring.keys[new_id] = new
        self.ring.save()
        # 2. re-wrap all data keys in one transaction
        rows = session.scalars(select(OrgKey)).all()
        for row in rows:
            data_key = self._unwrap(row)
            row.wrapped = self._wrap(row.org_id, data_key, new_id)
            row.master_key_id = new_id
            row.rotated_at = utcnow()
        session.commit()
        # 3. only now switch and forget the old master key
        self.ring.active = new_id
        for k in list(self.ring.keys):
            if k != new_id:
                del self.ring.keys[k]
        self.ring.save()
        return {"previous_master_key": old, "active_master_key": new_id, "rewrapped": len(rows)}
