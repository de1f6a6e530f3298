"""Process helpers shared by the hub, its job workers and the site node: nothing here knows about
jobs or Flower.

``die_with_parent`` ties a child to the thread that starts it (Linux ``PR_SET_PDEATHSIG``): the hub's
job workers and a node agent's SuperNodes end when their starter is gone, even after a SIGKILL.
"""

from __future__ import annotations

import signal
from typing import Any


def _libc_prctl() -> Any:
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (AttributeError, OSError):  # not Linux: children are not tied to their starter
        return None


# Resolved here, in the parent: between fork and exec, in a process with other threads, loading
# a library (dlopen takes locks another thread may have held at the fork) could hang the child.
_PRCTL = _libc_prctl()


def die_with_parent() -> None:
    """``preexec_fn`` for a child that must not outlive its starter (Linux ``PR_SET_PDEATHSIG``):
    the kernel sends it SIGTERM when the thread that started it exits, even after a SIGKILL.
    Use it only from a thread that lives as long as the child should (the main thread)."""
    PR_SET_PDEATHSIG = 1
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)
