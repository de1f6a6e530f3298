"""Process helpers shared by the hub, its job workers and the site node: nothing here knows about
jobs or Flower.

``die_with_parent`` ties a child to the thread that starts it (Linux ``PR_SET_PDEATHSIG``): the hub's
job workers and a node agent's SuperNodes end when their starter is gone, even after a SIGKILL.
``settle_gc`` keeps the garbage collector's pauses out of a server's answers.
"""

from __future__ import annotations

import gc
import signal
from typing import Any

# young-generation threshold (CPython's default: 700): collections of a few hundred microseconds,
# a hundred times rarer; a full collection after 20 x 100 of them, over what the server made since
GC_THRESHOLDS = (50_000, 20, 100)


def settle_gc() -> None:
    """Once a server has started (imports done, app built): move everything alive into the
    collector's permanent generation (``gc.freeze``) and collect less often. A full collection
    otherwise walks the whole heap of a hub (torch, pandas, SQLAlchemy: millions of objects): at
    32 concurrent requests those pauses made the slowest 1% of answers 10-20x the median
    (``/api/v1/me``: p99 430 ms against a 24 ms median; after: 34-39 ms). Cycles made later are
    still collected, on the thresholds above."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


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
