"""``flower-supernode`` with a shorter idle poll: Flower 1.42's SuperNode, unchanged otherwise.

Flower's SuperNode asks the SuperLink for a message, and when there is none it sleeps 3 s before
asking again; after handing a message to its ClientApp it checks for the reply every 0.5 s
(``flwr.supernode.start_client_internal``: ``time.sleep(3)`` and ``time.sleep(0.5)``, not
configurable). A round's message arrives just after the node answered the previous one, so nearly
every round waits most of those 3 s at every node: the largest share of a round's time when
training takes milliseconds. This launcher caps those waits at ``CONSORTIUM_SUPERNODE_POLL_S``
(default 0.25 s) by giving that module a ``time`` whose ``sleep`` is capped, then runs Flower's
own ``flower-supernode`` entry point with the same arguments. At 0.25 s an idle node makes 4
authenticated requests a second to the SuperLink (20 nodes: 80). The node's pulls of a message's
arrays retry after 50 ms instead of 1 s (``app/pull_backoff.py``).

Run as ``python -m consortium.federation.engine.supernode <flower-supernode arguments>``.
"""

from __future__ import annotations

import os
import sys
import time
import types

DEFAULT_POLL_S = 0.25


def capped_time(cap: float) -> types.SimpleNamespace:
    """A stand-in for the ``time`` module whose ``sleep`` waits at most ``cap`` seconds.

    >>> t = capped_time(0.01); s = time.monotonic(); t.sleep(3); time.monotonic() - s < 1
    True
    """
    real = time.sleep
    ns = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("__")})
    ns.sleep = lambda seconds: real(min(float(seconds), cap))
    return ns


def main() -> int:
    from flwr.supernode import start_client_internal
    from flwr.supernode.cli import flower_supernode  # the function behind the flower-supernode script

    from consortium.federation.app import pull_backoff

    pull_backoff.shorten()  # the node's pulls of a message's arrays from the SuperLink
    cap = float(os.environ.get("CONSORTIUM_SUPERNODE_POLL_S", DEFAULT_POLL_S) or DEFAULT_POLL_S)
    start_client_internal.time = capped_time(max(cap, 0.05))  # type: ignore[assignment]
    sys.argv[0] = "flower-supernode"
    flower_supernode()
    return 0


if __name__ == "__main__":
    sys.exit(main())
