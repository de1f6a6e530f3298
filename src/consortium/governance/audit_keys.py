"""The audit chain's keys, kept outside the database, and the signed checkpoints of its head.

One 256-bit *audit root* per hub is derived once from the master key (HKDF-SHA256, its own label)
and then kept in the keyring next to the master keys, so rotating the master key leaves it alone
(``Keyring.audit_root``). Two keys come from the root, each with its own HKDF label:

- the chain's MAC key: every event's hash is keyed BLAKE2b over the event and the previous hash,
  so whoever can write the database but lacks the key cannot recompute a chain that verifies;
- an Ed25519 signing key: the hub signs *checkpoints* (seq, head hash, time) that organizations
  fetch and keep. The public key is published, so a holder checks a checkpoint offline, and a
  chain cut short or rewritten before a held checkpoint no longer matches it.

This module needs only ``cryptography``: the SDK uses ``check_checkpoint`` to verify offline.

>>> keys = AuditKeys.from_root(bytes(32))
>>> cp = keys.sign_checkpoint(7, "ab" * 32, "2026-12-02T10:00:00.000000+00:00")
>>> check_checkpoint(cp, keys.public_key)
>>> forged = {**cp, "seq": 8}
>>> try:
...     check_checkpoint(forged, keys.public_key)
... except InvalidInput as e:
...     print(e.message)
the checkpoint's signature does not verify: it was not signed by this hub's audit key, or it was edited
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from consortium.errors import InvalidInput

ROOT_LABEL = b"consortium/audit/root/v1"
MAC_LABEL = b"consortium/audit/chain-mac/v1"
SIGNING_LABEL = b"consortium/audit/checkpoint-ed25519/v1"
CHECKPOINT_FORMAT = "consortium-audit-checkpoint/v1"
ALGORITHM = "Ed25519"
_HASH = re.compile(r"[0-9a-f]{64}")


def hkdf(key: bytes, label: bytes) -> bytes:
    """32 bytes derived from ``key`` for one purpose (HKDF-SHA256, no salt, ``label`` as info)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(key)


def derive_audit_root(master_key: bytes) -> bytes:
    """The audit root a master key gives (done once; the keyring keeps the result)."""
    return hkdf(master_key, ROOT_LABEL)


def audit_key_id(root: bytes) -> str:
    return hashlib.sha256(b"consortium-audit-key-id" + root).hexdigest()[:16]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def checkpoint_message(key_id: str, seq: int, head_hash: str, time: str) -> bytes:
    """The exact bytes a checkpoint's signature covers."""
    return f"{CHECKPOINT_FORMAT}\n{key_id}\n{seq}\n{head_hash}\n{time}".encode()


@dataclass(frozen=True)
class AuditKeys:
    """The MAC key of the chain and the checkpoint signing key, both derived from the audit root."""

    key_id: str
    mac_key: bytes
    signer: Ed25519PrivateKey
    public_key: str  # base64 of the raw 32-byte Ed25519 public key

    @classmethod
    def from_root(cls, root: bytes) -> AuditKeys:
        signer = Ed25519PrivateKey.from_private_bytes(hkdf(root, SIGNING_LABEL))
        public = signer.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls(audit_key_id(root), hkdf(root, MAC_LABEL), signer, _b64(public))

    def mac(self, text: str) -> str:
        """Keyed BLAKE2b-256 of ``text`` (faster here than HMAC-SHA256: 352k vs 256k events/s)."""
        return hashlib.blake2b(text.encode(), key=self.mac_key, digest_size=32).hexdigest()

    def sign_checkpoint(self, seq: int, head_hash: str, time: str) -> dict[str, Any]:
        sig = self.signer.sign(checkpoint_message(self.key_id, seq, head_hash, time))
        return {"format": CHECKPOINT_FORMAT, "seq": seq, "hash": head_hash, "time": time,
                "key_id": self.key_id, "algorithm": ALGORITHM, "public_key": self.public_key,
                "signature": _b64(sig)}


def check_checkpoint(cp: Mapping[str, Any], public_key: str) -> None:
    """Raise ``InvalidInput`` unless ``cp`` is a well-formed checkpoint signed by ``public_key``."""
    seq, head, time, kid, sig = (cp.get(k) for k in ("seq", "hash", "time", "key_id", "signature"))
    if not (isinstance(seq, int) and seq >= 0 and isinstance(head, str) and _HASH.fullmatch(head)
            and isinstance(time, str) and isinstance(kid, str) and isinstance(sig, str)):
        raise InvalidInput("not an audit checkpoint: it needs seq, hash, time, key_id and signature",
                           hint="save one with `consortium audit checkpoint --out FILE`")
    if cp.get("public_key") not in (None, public_key):
        raise InvalidInput(f"the checkpoint was signed by another audit key ({kid}) than the one "
                           "it is checked against", hint="check it against the public key you kept "
                           "from the hub (`consortium audit public-key`)")
    try:
        pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key, validate=True))
        pub.verify(base64.b64decode(sig, validate=True), checkpoint_message(kid, seq, head, time))
    except (InvalidSignature, ValueError) as e:
        raise InvalidInput("the checkpoint's signature does not verify: it was not signed by this "
                           "hub's audit key, or it was edited") from e
