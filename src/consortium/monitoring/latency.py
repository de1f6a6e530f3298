"""Fixed-bucket latency histograms: cheap to count on the hot path, mergeable across minutes,
callers and hub replicas, and good enough for p50/p95/p99 (linear interpolation inside a bucket;
home-made, the usual Prometheus ``histogram_quantile`` method).

>>> counts = empty()
>>> for ms in [0.3] * 90 + [4.0] * 9 + [80.0]:
...     counts[bucket(ms)] += 1
>>> round(quantile(counts, 0.5), 3), round(quantile(counts, 0.95), 2), round(quantile(counts, 0.999), 1)
(0.389, 3.67, 95.0)
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

# Upper bounds (ms) of the buckets; one more bucket holds everything slower.
LATENCY_EDGES_MS: tuple[float, ...] = (0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
N_BUCKETS = len(LATENCY_EDGES_MS) + 1


def empty() -> list[int]:
    return [0] * N_BUCKETS


def bucket(ms: float) -> int:
    """Index of the bucket holding a latency of ``ms`` milliseconds."""
    return bisect.bisect_left(LATENCY_EDGES_MS, ms)


def merge(rows: Iterable[list[int]]) -> list[int]:
    out = empty()
    for r in rows:
        for i, n in enumerate(r[:N_BUCKETS]):
            out[i] += int(n)
    return out


def quantile(counts: list[int], q: float) -> float | None:
    """The ``q`` quantile (0-1) in ms, or None without observations."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            lo = 0.0 if i == 0 else LATENCY_EDGES_MS[i - 1]
            hi = LATENCY_EDGES_MS[i] if i < len(LATENCY_EDGES_MS) else LATENCY_EDGES_MS[-1] * 2
            return lo + (hi - lo) * max(0.0, rank - seen) / n
        seen += n
    return LATENCY_EDGES_MS[-1] * 2


def summary(counts: list[int]) -> dict[str, float | None]:
    """p50, p95 and p99 in ms (rounded)."""
    return {f"p{int(q * 100)}_ms": (round(v, 3) if (v := quantile(counts, q)) is not None else None)
            for q in (0.5, 0.95, 0.99)}
