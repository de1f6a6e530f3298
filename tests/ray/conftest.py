"""One real local Ray cluster for the whole tests/ray package (``ray_cluster``, session-scoped).

``support.start_ray_cluster``: ``ray start --head --block --num-cpus 2 --object-store-memory
200000000`` in a private temp dir with free ports (two clusters on one machine do not collide),
stopped through its own process group at the end, never with ``ray stop`` (which ends every Ray
process of the machine's user, other sessions' clusters too). Starting it takes a few seconds.

Use it as ``ray_cluster.address`` (a GCS address host:port, what ``CONSORTIUM_RAY_ADDRESS`` and
``ray.init(address=...)`` take), ``ray_cluster.cpus`` and ``ray_cluster.env`` (the variables a
dispatcher or a job process needs to reach it).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import RayCluster, start_ray_cluster, stop_ray_cluster

CPUS = 2
OBJECT_STORE_BYTES = 200_000_000  # Ray's default is 30% of RAM


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    cluster = start_ray_cluster(CPUS, OBJECT_STORE_BYTES)
    try:
        yield cluster
    finally:
        stop_ray_cluster(cluster)
