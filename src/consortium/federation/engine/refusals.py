"""SuperNodes the SuperLink refused, read from its log: a node whose key was not registered for
this SuperLink (node authentication), or whose signed request did not verify.

Flower 1.42 logs an activation with an unknown key as one error line naming the key (PEM, as a
Python bytes literal), followed by the access-log line with the caller's address and status 412;
a request whose signature or node id does not match gets a 401 in the access log only.
``RefusalLog`` reads the log incrementally (from where it stopped) and turns those lines into
``Refusal`` records; the job that owns the SuperLink audits them
(``consortium.jobs.federated_runs.refusal_event``). A node that pinned another CA never reaches
the SuperLink: its own TLS check refuses the hub, and the node's log says so.

>>> line = ("ERROR :     [/v1/fleet/activate-node][ApiError:2004] Attempted to register SuperNode with public key: "
...         "b'-----BEGIN PUBLIC KEY-----\\\\nAAAA\\\\n-----END PUBLIC KEY-----\\\\n', exception: No SuperNode found "
...         "with the given public key.")
>>> r = parse_lines([line, '2026-12-03T06:58:40Z INFO [uvicorn.access] 10.0.0.2:3777 - "POST /v1/fleet/activate-node '
...                   'HTTP/1.1" 412'])[0]
>>> r.reason, r.peer, r.public_key.startswith("-----BEGIN PUBLIC KEY-----")
('No SuperNode found with the given public key.', '10.0.0.2', True)
"""

from __future__ import annotations

import ast
import base64
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

_KEY_ERROR = re.compile(r"\[(?P<route>/v1/fleet/[a-z-]+)\]\[ApiError:(?P<code>\d+)\] .*?public key: "
                        r"(?P<key>b'[^']*')(?:, exception: (?P<reason>.*))?$")
_ACCESS = re.compile(r'\[uvicorn\.access\] (?P<peer>[^ ]+):\d+ - "POST (?P<route>/v1/fleet/[a-z-]+) [^"]*" '
                     r"(?P<status>401|403|412)\b")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Refusal:
    """One refused SuperNode request: its route, reason, caller address and (when Flower logged
    it) the public key it presented, PEM."""

    route: str
    reason: str
    peer: str | None = None
    public_key: str | None = None

    @property
    def openssh(self) -> str | None:
        """The presented key in OpenSSH form (how the hub stores node keys), if logged."""
        if self.public_key is None:
            return None
        from cryptography.hazmat.primitives import serialization

        try:
            key = serialization.load_pem_public_key(self.public_key.encode())
            return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
        except (ValueError, TypeError):
            return None

    @property
    def fingerprint(self) -> str | None:
        """``SHA256:...`` as ``ssh-keygen -l`` prints it for the presented key."""
        return fingerprint(self.openssh) if self.openssh else None


def fingerprint(openssh: str) -> str:
    """The SHA-256 fingerprint of an OpenSSH public key (``ssh-keygen -l``'s form)."""
    blob = base64.b64decode(openssh.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def parse_lines(lines: list[str]) -> list[Refusal]:
    """The refusals in these SuperLink log lines, in order."""
    out: list[Refusal] = []
    pending: Refusal | None = None  # a key error waits for its access-log line (the address)
    for raw in lines:
        line = _ANSI.sub("", raw).rstrip()
        m = _KEY_ERROR.search(line)
        if m:
            if pending is not None:
                out.append(pending)
            try:
                pem = ast.literal_eval(m["key"]).decode()
            except (ValueError, SyntaxError, UnicodeDecodeError):
                pem = None
            pending = Refusal(m["route"], (m["reason"] or f"ApiError {m['code']}").strip(), public_key=pem)
            continue
        a = _ACCESS.search(line)
        if a is None:
            continue
        if pending is not None and pending.route == a["route"]:
            out.append(Refusal(pending.route, pending.reason, a["peer"], pending.public_key))
            pending = None
        elif a["status"] == "401":
            out.append(Refusal(a["route"], "invalid SuperNode authentication (signature or node id)", a["peer"]))
    if pending is not None:
        out.append(pending)
    return out


class RefusalLog:
    """Reads a SuperLink log from where the last ``new`` call stopped (whole lines only)."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0

    def new(self) -> list[Refusal]:
        """Refusals logged since the previous call."""
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n") + 1
        if end == 0:
            return []
        self.offset += end
        lines = chunk[:end].decode(errors="replace").splitlines()
        return parse_lines(lines)
