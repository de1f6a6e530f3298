"""Flower processes started by the hub, found and ended by the tag in their environment.

Every process a ``FlowerDeployment`` starts (SuperLink, SuperNodes and whatever they spawn: SuperExec,
``flwr-serverapp``, ``flwr-clientapp``) inherits ``CONSORTIUM_FL_DEPLOYMENT=<tag>``; a job's tag is
``job-<job id>.<attempt>``. They run in their own sessions, so a worker killed with SIGKILL leaves
them behind: ``sweep(tag)`` finds them through ``/proc/<pid>/environ`` (Linux; only processes of
the same user are readable) and kills them. A job's next attempt sweeps the earlier attempts'
tags before it starts; workers sweep the tags of jobs that no longer run (at their start and
after re-queueing jobs of dead workers).

>>> job_tag("job_1", 2), parse_job_tag("job-job_1.2"), parse_job_tag("3f2a")
('job-job_1.2', ('job_1', 2), None)
>>> tagged("job-does-not-exist.1")
[]
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

MARK = "CONSORTIUM_FL_DEPLOYMENT"
JOB_PREFIX = "job-"
BIN = Path(sys.executable).parent  # flower-superlink, flower-supernode, flwr: installed beside python


def python_path(env: Mapping[str, str] | None = None) -> str:
    """``PYTHONPATH`` for a child that imports this package (``flwr-*app`` processes, node agents):
    the directory holding ``consortium`` first, then the entries of ``env`` (default: ours)."""
    src = str(Path(__file__).resolve().parents[3])  # .../src: consortium/federation/engine/processes.py
    given = (os.environ if env is None else env).get("PYTHONPATH", "")
    return os.pathsep.join([src, *[p for p in given.split(os.pathsep) if p]])


def job_tag(job_id: str, attempt: int) -> str:
    """The deployment tag of the processes of one attempt of a federated job."""
    return f"{JOB_PREFIX}{job_id}.{attempt}"


def parse_job_tag(tag: str) -> tuple[str, int] | None:
    """(job id, attempt) of a job tag; None for other tags."""
    if not tag.startswith(JOB_PREFIX):
        return None
    job_id, _, attempt = tag[len(JOB_PREFIX):].rpartition(".")
    return (job_id, int(attempt)) if job_id and attempt.isdigit() else None


def _environ_tag(pid: int) -> str | None:
    try:
        env = (Path("/proc") / str(pid) / "environ").read_bytes()
        if (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return None
    except (OSError, IndexError):
        return None
    for item in env.split(b"\0"):
        if item.startswith(MARK.encode() + b"="):
            return item.split(b"=", 1)[1].decode(errors="replace")
    return None


def all_tagged() -> dict[str, list[int]]:
    """Every live tagged process on this machine (readable to us): tag -> pids."""
    out: dict[str, list[int]] = {}
    me = os.getpid()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == me:
            continue
        tag = _environ_tag(int(d.name))
        if tag:
            out.setdefault(tag, []).append(int(d.name))
    return out


def tagged(tag: str) -> list[int]:
    """Pids of live processes carrying ``tag``."""
    return all_tagged().get(tag, [])


def sweep(tag: str, timeout: float = 5.0) -> list[int]:
    """SIGKILL every process carrying ``tag`` (and its process group); returns the pids found."""
    found = tagged(tag)
    for pid in found:
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    deadline = time.monotonic() + timeout
    while tagged(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def kill_group(popen: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    """Send ``sig`` to the process group of ``popen``; SIGKILL what is left after ``timeout``."""
    if popen.poll() is None or group_alive(popen.pid):
        try:
            os.killpg(popen.pid, sig)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (popen.poll() is None or group_alive(popen.pid)):
        time.sleep(0.05)
    if popen.poll() is None or group_alive(popen.pid):
        try:
            os.killpg(popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        popen.wait(timeout=5)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False

