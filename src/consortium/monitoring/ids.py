"""Prediction ids that carry what was predicted, so every prediction can get feedback without a
row per prediction (home-made format on standard-library primitives: keyed BLAKE2b as the MAC).

A signed id is ``prd_`` + base64url of::

    format (1) | created, unix seconds (4) | nonce (4) | version id | caller org id | outputs | tag (12)

``outputs`` is what feedback needs to score a label: class indices bit-packed (classification
through ``/predict``), float32 values (regression, one-column tensors), or both (wider tensors:
the argmax for classification and the first column for regression; the task is read from the
model version when the label arrives). The tag is keyed BLAKE2b (RFC 7693's MAC mode; a third of
HMAC-SHA256's cost on this hot path) over the deployment id and all of the above, with a key
derived from the hub's ``secret_key`` for this one purpose (HMAC-SHA256 with a purpose label), so
an id cannot be forged, edited, or moved to another deployment (it then fails verification: 404).
All hub replicas share ``secret_key``, so any of them verifies any id; changing it voids the ids
issued before (their feedback gets 404).

Outputs longer than ``MAX_OUTPUT_BYTES`` are not signed (``sign`` returns None): the monitor
keeps those predictions in the log instead and returns a short stored id (``prd_`` + 20 hex).

>>> ids = PredictionIds(b"k" * 32)
>>> pid = ids.sign("dep_1", "mv_00000000000000aa", "org_00000000000000bb", "predict",
...                {"predictions": ["b", "a"], "class_names": ["a", "b", "c"]})
>>> pid.startswith("prd_"), len(pid) < 80
(True, True)
>>> s = ids.verify("dep_1", pid)
>>> s.version_id, s.caller_org_id, s.classes, s.indices
('mv_00000000000000aa', 'org_00000000000000bb', 3, [1, 0])
>>> ids.verify("dep_2", pid)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
consortium.errors.NotFound: prediction id 'prd_...' is not one this deployment returned ...
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import re
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from consortium.errors import NotFound

PREFIX = "prd_"
STORED = re.compile(r"prd_[0-9a-f]{20}")  # ids of rows in the prediction log
FORMAT = 1
TAG = 12
MAX_OUTPUT_BYTES = 120  # outputs section: an id stays under about 250 characters
MAX_ID_CHARS = 256  # longer ones are never issued (the answer is kept in the log instead)
PURPOSE = b"consortium/prediction-id/v1"
PERSON = b"consortium-pid-1"  # BLAKE2b personalization (16 bytes)
# kinds of outputs section
CLASSES, VALUES, BOTH = 1, 2, 3
_REF = re.compile(r"([a-z]{1,7})_([0-9a-f]{16})")
_HEAD = struct.Struct("<BII")


@dataclass(frozen=True)
class SignedPrediction:
    """What a verified id says: who asked which version when, and what it answered."""

    key: str  # short unique key for the feedback row (``prs_`` + the tag)
    version_id: str
    caller_org_id: str
    created_at: datetime
    rows: int
    classes: int | None  # number of classes the indices refer to
    indices: list[int] | None  # per row: predicted class index (or the argmax of a tensor)
    values: list[float] | None  # per row: value (regression) or first tensor column


def shorten(prediction_id: str) -> str:
    """An id as messages show it (signed ids are long)."""
    return prediction_id if len(prediction_id) <= 32 else prediction_id[:32] + "..."


def derive_key(secret_key: str) -> bytes:
    """The MAC key for prediction ids, derived from the hub's ``secret_key`` with a purpose label."""
    return hmac.digest(secret_key.encode(), PURPOSE, "sha256")


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _pack_ref(s: str) -> bytes | None:
    """A resource id, compact when it has the usual ``prefix_<16 hex>`` form."""
    m = _REF.fullmatch(s)
    if m:
        return bytes([0x80 | len(m[1])]) + m[1].encode() + bytes.fromhex(m[2])
    raw = s.encode()
    return bytes([len(raw)]) + raw if len(raw) < 0x80 else None


def _pack_indices(idx: list[int], classes: int) -> bytes:
    bits = max(1, (classes - 1).bit_length())
    v = 0
    for j, i in enumerate(idx):
        v |= i << (bits * j)
    return v.to_bytes((bits * len(idx) + 7) // 8, "little")


class _Reader:
    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("truncated")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def uvarint(self) -> int:
        n = shift = 0
        while True:
            b = self.take(1)[0]
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                return n
            shift += 7
            if shift > 28:
                raise ValueError("varint too long")

    def ref(self) -> str:
        b = self.take(1)[0]
        if b & 0x80:
            return f"{self.take(b & 0x7F).decode()}_{self.take(8).hex()}"
        return self.take(b).decode()

    def indices(self, n: int, classes: int) -> list[int]:
        bits = max(1, (classes - 1).bit_length())
        v = int.from_bytes(self.take((bits * n + 7) // 8), "little")
        mask = (1 << bits) - 1
        out = [(v >> (bits * j)) & mask for j in range(n)]
        if any(i >= classes for i in out):
            raise ValueError("class index out of range")
        return out


def _tensor_section(outputs: Any) -> bytes | None:
    """Outputs of the Open Inference Protocol (or of a model without a task): the first tensor."""
    y = np.asarray(next(iter(outputs.values())))
    n = int(y.shape[0]) if y.ndim else 1
    y2 = y.reshape(n, -1)
    if y2.shape[1] <= 1:
        if n * 4 > MAX_OUTPUT_BYTES:
            return None
        return bytes([VALUES]) + _uvarint(n) + y2[:, 0].astype("<f4").tobytes()
    k = int(y2.shape[1])
    packed = _pack_indices([int(i) for i in y2.argmax(axis=1)], k)
    if len(packed) + n * 4 > MAX_OUTPUT_BYTES:
        return None
    return bytes([BOTH]) + _uvarint(k) + _uvarint(n) + packed + y2[:, 0].astype("<f4").tobytes()



def unknown_id(prediction_id: str) -> NotFound:
    """The answer for a signed id this deployment did not return to the caller (forged, garbled, of
    another deployment, or another organization's: those stay unseen)."""
    return NotFound(f"prediction id {shorten(prediction_id)!r} is not one this deployment returned",
                    hint="send the prediction_id returned by this deployment's predict call (or its "
                         "Consortium-Prediction-Id header), unchanged")

class PredictionIds:
    """Signs prediction ids with ``key`` and verifies them with it or any of ``previous`` (the keys
    of earlier secret keys, kept through a rotation); see the module docstring for the format."""

    def __init__(self, key: bytes, previous: Sequence[bytes] = ()) -> None:
        self.key = key
        self.previous = tuple(previous)
        self._classes: dict[tuple[str, ...], tuple[dict[str, int], bytes, int]] = {}
        self._last: tuple[Any, tuple[dict[str, int], bytes, int]] = (None, ({}, b"", 1))  # same list each call
        self._refs: dict[str, bytes | None] = {}
        # not the global generator, which training seeds
        self._nonce = random.Random().getrandbits  # noqa: S311 - uniqueness only: the MAC carries the security

    def _mac(self, deployment_id: str, body: bytes, key: bytes | None = None) -> bytes:
        return hashlib.blake2b(deployment_id.encode() + b"\0" + body, key=key or self.key, digest_size=TAG,
                               person=PERSON).digest()

    def _names(self, names: list[str]) -> tuple[dict[str, int], bytes, int]:
        """Index by class name, the encoded class count, and bits per index, for a list of classes."""
        last, entry = self._last
        if last is not names:
            t = tuple(names)
            got = self._classes.get(t)
            if got is None:
                if len(self._classes) > 256:
                    self._classes.clear()
                k = len(names)
                got = self._classes[t] = ({n: i for i, n in enumerate(names)}, bytes([CLASSES]) + _uvarint(k),
                                          max(1, (k - 1).bit_length()))
            entry = got
            self._last = (names, entry)
        return entry

    def _ref(self, s: str) -> bytes | None:
        r = self._refs.get(s, b"")
        if r == b"":
            if len(self._refs) > 4096:
                self._refs.clear()
            r = self._refs[s] = _pack_ref(s)
        return r

    def _outputs(self, protocol: str, outputs: Any) -> bytes | None:
        if protocol != "predict":
            return _tensor_section(outputs)
        names = outputs.get("class_names")
        preds = outputs["predictions"]
        if names is not None:
            index, head, bits = self._names(names)
            if len(preds) == 1 and bits <= 8:  # the common case, quickly
                return head + b"\x01" + bytes((index[preds[0]],))
            packed = _pack_indices([index[p] for p in preds], len(names))
            return head + _uvarint(len(preds)) + packed if len(packed) <= MAX_OUTPUT_BYTES else None
        if "outputs" in outputs:  # a model without a task: its tensors
            return _tensor_section(outputs["outputs"])
        if len(preds) * 4 > MAX_OUTPUT_BYTES:  # regression: one value per row (the first of a list)
            return None
        vals = [p[0] if isinstance(p, list) else p for p in preds]
        return bytes([VALUES]) + _uvarint(len(vals)) + struct.pack(f"<{len(vals)}f", *vals)

    def sign(self, deployment_id: str, version_id: str, caller_org_id: str, protocol: str,
             outputs: Any, now: float | None = None) -> str | None:
        """A signed id for this prediction, or None when its outputs are too long to carry."""
        try:
            out = self._outputs(protocol, outputs)
        except (KeyError, TypeError, ValueError, IndexError, StopIteration, AttributeError, OverflowError,
                struct.error):
            return None
        ver, org = self._ref(version_id), self._ref(caller_org_id)
        if out is None or ver is None or org is None:
            return None
        body = _HEAD.pack(FORMAT, int(now if now is not None else time.time()), self._nonce(32)) + ver + org + out
        pid = PREFIX + base64.urlsafe_b64encode(body + self._mac(deployment_id, body)).rstrip(b"=").decode()
        return pid if len(pid) <= MAX_ID_CHARS else None  # only with unusually long resource ids

    def verify(self, deployment_id: str, prediction_id: str) -> SignedPrediction:
        """What a signed id says; ``NotFound`` when it is garbled, forged or of another deployment."""
        unknown = unknown_id(prediction_id)
        if not prediction_id.startswith(PREFIX) or len(prediction_id) > MAX_ID_CHARS:
            raise unknown
        try:
            s = prediction_id[len(PREFIX):]
            raw = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
        except ValueError:
            raise unknown from None
        if len(raw) <= _HEAD.size + TAG:
            raise unknown
        body, tag = raw[:-TAG], raw[-TAG:]
        if not any(hmac.compare_digest(tag, self._mac(deployment_id, body, k)) for k in (self.key, *self.previous)):
            raise unknown
        try:
            fmt, created, _ = _HEAD.unpack_from(body)
            if fmt != FORMAT:
                raise ValueError("format")
            r = _Reader(body, _HEAD.size)
            version_id, caller = r.ref(), r.ref()
            kind = r.take(1)[0]
            classes = indices = values = None
            if kind in (CLASSES, BOTH):
                classes = r.uvarint()
                n = r.uvarint()
                indices = r.indices(n, classes)
            else:
                n = r.uvarint()
            if kind in (VALUES, BOTH):
                values = [float(v) for v in np.frombuffer(r.take(4 * n), dtype="<f4")]
            if kind not in (CLASSES, VALUES, BOTH) or r.pos != len(body):
                raise ValueError("layout")
        except (ValueError, UnicodeDecodeError, struct.error):  # signed by us, so a bug or an old format
            raise unknown from None
        key = "prs_" + base64.urlsafe_b64encode(tag).decode()
        return SignedPrediction(key, version_id, caller, datetime.fromtimestamp(created, tz=UTC), n, classes,
                                indices, values)
