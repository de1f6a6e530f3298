"""The hub's resident memory around large uploads: few glibc malloc arenas, and freed memory handed
back after each upload.

Home-made glue over glibc's ``mallopt`` and ``malloc_trim`` (through ``ctypes``); on another C
library both are no-ops. glibc gives each thread that allocates its own arena, and an upload
passes 1 MiB buffers between the request thread, the ingest thread and Arrow's I/O thread, so each
arena kept its own high-water mark: two shared arenas (the hub's setting; one did no better)
lowered the upload's peak by about 6 MB at no measurable CPU cost (bench/bench_upload.py).
Arrow's own buffers come from its pool, not from malloc.

>>> limit_arenas(2)  # doctest: +SKIP
True
"""

from __future__ import annotations

import ctypes
from typing import Any

M_ARENA_MAX = -8  # from glibc's malloc.h


def _libc() -> Any:
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def limit_arenas(count: int = 2) -> bool:
    """Let at most ``count`` malloc arenas serve the process's threads (threads created later; call
    it before the server starts its threads). True if glibc took the setting."""
    libc = _libc()
    try:
        return bool(libc.mallopt(M_ARENA_MAX, count)) if libc is not None else False
    except AttributeError:  # not glibc
        return False


def release(pool: Any = None) -> None:
    """Return freed memory to the system: an Arrow memory pool's cached pages, then glibc's heaps."""
    if pool is not None:
        pool.release_unused()
    libc = _libc()
    try:
        if libc is not None:
            libc.malloc_trim(0)
    except AttributeError:  # not glibc
        pass
