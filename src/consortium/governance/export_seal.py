"""The format of an audit export and its offline check: no database, no hub, only the hub's public key.

An export (``consortium.governance.audit_export`` writes it) is a text file of lines, JSON Lines
or syslog (RFC 5424), in this order:

1. a header: the organization, the time, and a signed checkpoint of the chain's head taken when
   the export began (``audit_keys``' format, so ``consortium audit verify --checkpoint`` takes it
   too);
2. one line per event, oldest first, each with its chain ``seq``, ``prev_hash`` and ``hash``;
3. a seal: the number of events and the SHA-256 of every byte before it, signed with the hub's
   Ed25519 audit key (its own message format, so that a seal can never pass for a checkpoint).

``verify_export`` checks the checkpoint and the seal with the public key, that events rise in
``seq`` up to the checkpoint and that consecutive events link (``prev_hash``). It proves that the
file is what the hub holding the audit key wrote: no event added, dropped, altered or reordered
since. With the hub, ``consortium audit verify --checkpoint`` then proves that the chain still
holds those events, unchanged.

>>> from consortium.governance.audit_keys import AuditKeys
>>> keys = AuditKeys.from_root(bytes(32))
>>> cp = keys.sign_checkpoint(0, "0" * 64, "2026-12-03T07:00:00.000000+00:00")
>>> lines = [json_line(header("org-a", "2026-12-03T07:00:00Z", cp))]
>>> lines.append(json_line(seal_record(keys.key_id, keys.public_key, 0, digest(lines),
...                                    lambda m: keys.signer.sign(m))))
>>> verify_export(lines, keys.public_key)["events"]
0
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from consortium.errors import IntegrityError, InvalidInput
from consortium.governance.audit_keys import check_checkpoint

EXPORT_FORMAT = "consortium-audit-export/v1"
SD_ID = "consortium@32473"  # RFC 5424 structured-data id (32473: the enterprise number for examples, RFC 5612)
APP = "consortium"
FACILITY = 13  # log audit
HINT = "export it again with `consortium audit export`, and keep the file unchanged"


def header(org: str, time: str, checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "export", "format": EXPORT_FORMAT, "organization": org, "time": time,
            "checkpoint": dict(checkpoint)}


def seal_message(key_id: str, events: int, sha256: str) -> bytes:
    """The exact bytes a seal's signature covers."""
    return f"{EXPORT_FORMAT}\nseal\n{key_id}\n{events}\n{sha256}".encode()


def digest(lines: Iterable[str]) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode() + b"\n")
    return h.hexdigest()


def seal_record(key_id: str, public_key: str, events: int, sha256: str,
                sign: Callable[[bytes], bytes]) -> dict[str, Any]:
    sig = sign(seal_message(key_id, events, sha256))
    return {"type": "seal", "format": EXPORT_FORMAT, "events": events, "sha256": sha256, "key_id": key_id,
            "algorithm": "Ed25519", "public_key": public_key, "signature": base64.b64encode(sig).decode()}


def json_line(record: Mapping[str, Any]) -> str:
    """Compact JSON, keys sorted (the check reads it back with any JSON parser)."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS, default=str).decode()


# -- syslog (RFC 5424) ------------------------------------------------------------------------
def _sd_value(v: Any) -> str:
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def syslog_line(record: Mapping[str, Any], host: str) -> str:
    """``<PRI>1 TIMESTAMP HOST consortium - MSGID [consortium@32473 k="v" ...] JSON``: the JSON
    record is the message, and the fields a SIEM filters on are structured data too."""
    kind = record.get("type", "event")
    if kind == "event":
        severity = 6 if record.get("outcome") == "ok" else 4  # informational; warning for a refusal
        msgid = str(record.get("action") or "-")[:32]
        ts = str(record.get("time"))
        sd = {k: record.get(k) for k in ("seq", "outcome", "actor_org_id", "actor_user_id", "resource_type",
                                         "resource_id", "resource_org_id", "project_id", "hash")}
    else:
        severity, msgid, ts = 5, f"audit-{kind}", str(record.get("time") or "-")
        sd = {"format": EXPORT_FORMAT}
    params = " ".join(f'{k}="{_sd_value(v)}"' for k, v in sd.items() if v is not None)
    msgid = "".join(c if 33 <= ord(c) <= 126 else "_" for c in msgid) or "-"
    return f"<{FACILITY * 8 + severity}>1 {ts} {host or '-'} {APP} - {msgid} [{SD_ID} {params}] {json_line(record)}"


def _syslog_message(line: str) -> str:
    """The message of a syslog line written by ``syslog_line`` (after its structured data)."""
    parts = line.split(" ", 6)
    if len(parts) < 7 or not parts[0].startswith("<") or not parts[6].startswith("["):
        raise InvalidInput("not an RFC 5424 line of a Consortium audit export", hint=HINT)
    rest = parts[6]
    end = rest.find('"] ')  # a value's own quote and bracket are escaped (\\" and \\]): this ends the data
    if end > 0 and rest[end - 1] != "\\":
        return rest[end + 3:]
    i, quoted = 0, False
    while i < len(rest):  # skip the structured data: brackets outside quoted values, escapes inside
        c = rest[i]
        if quoted and c == "\\":
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c == "]" and not quoted and (i + 1 == len(rest) or rest[i + 1] != "["):
            return rest[i + 2:]
        i += 1
    raise InvalidInput("a syslog line's structured data does not end", hint=HINT)


def record_of(line: str) -> dict[str, Any]:
    """The JSON record a line carries (either format)."""
    text = _syslog_message(line) if line.startswith("<") else line
    try:
        rec = json.loads(text)
    except ValueError as e:
        raise InvalidInput(f"a line of the export is not JSON: {e}", hint=HINT) from None
    if not isinstance(rec, dict):
        raise InvalidInput("a line of the export is not a JSON object", hint=HINT)
    return rec


# -- the offline check --------------------------------------------------------------------------
def verify_export(lines: Iterable[str], public_key: str) -> dict[str, Any]:
    """Check an export's lines (without their newlines) against the hub's public key; raises
    ``IntegrityError`` naming the first problem, ``InvalidInput`` for a file that is no export."""
    h = hashlib.sha256()
    head: dict[str, Any] | None = None
    seal: dict[str, Any] | None = None
    count, last_seq, last_hash, first_seq = 0, 0, "", None
    for n, line in enumerate(lines, 1):
        if not line:
            continue
        if seal is not None:
            raise IntegrityError(f"line {n} follows the seal: something was appended to the export", hint=HINT)
        rec = record_of(line)
        kind = rec.get("type")
        if kind == "seal":
            seal = rec
            continue
        h.update(line.encode() + b"\n")
        if n == 1:
            if kind != "export" or rec.get("format") != EXPORT_FORMAT:
                raise InvalidInput(f"the first line is not the header of a {EXPORT_FORMAT} export", hint=HINT)
            check_checkpoint(rec.get("checkpoint") or {}, public_key)
            head = rec
            continue
        if kind != "event" or not isinstance(rec.get("seq"), int):
            raise IntegrityError(f"line {n} is neither an event nor the seal", hint=HINT)
        seq = rec["seq"]
        if seq <= last_seq:
            raise IntegrityError(f"line {n}: event {seq} comes after event {last_seq} (reordered or repeated)")
        if seq == last_seq + 1 and last_hash and rec.get("prev_hash") != last_hash:
            raise IntegrityError(f"line {n}: event {seq} does not link to event {last_seq}")
        first_seq = seq if first_seq is None else first_seq
        last_seq, last_hash, count = seq, str(rec.get("hash")), count + 1
    if head is None:
        raise InvalidInput("the file is empty or has no export header", hint=HINT)
    if seal is None:
        raise IntegrityError("the export has no seal: it was cut short", hint=HINT)
    cp = head["checkpoint"]
    if last_seq > int(cp["seq"]):
        raise IntegrityError(f"event {last_seq} is after the export's checkpoint (event {cp['seq']})")
    if seal.get("public_key") not in (None, public_key) or seal.get("key_id") != cp.get("key_id"):
        raise IntegrityError("the seal was made with another audit key than the checkpoint's", hint=HINT)
    if seal.get("events") != count or seal.get("sha256") != h.hexdigest():
        raise IntegrityError(f"the export's content differs from what was sealed ({count} events read, "
                             f"{seal.get('events')} sealed): a line was added, removed or altered", hint=HINT)
    try:
        pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key, validate=True))
        pub.verify(base64.b64decode(str(seal.get("signature")), validate=True),
                   seal_message(str(seal["key_id"]), count, h.hexdigest()))
    except (InvalidSignature, ValueError) as e:
        raise IntegrityError("the seal's signature does not verify: the export was not sealed by this hub's "
                             "audit key, or the seal was edited", hint=HINT) from e
    return {"ok": True, "organization": head.get("organization"), "events": count, "first_seq": first_seq,
            "last_seq": last_seq or None, "checkpoint": cp, "key_id": cp.get("key_id")}
