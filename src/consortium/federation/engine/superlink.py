"""``flower-superlink`` that serves only its Fleet API to other hosts: Flower 1.42's SuperLink, with
one middleware in front of its routes.

Flower 1.42 serves the SuperLink's three APIs on one address: the Fleet API (``/v1/fleet/``, what
SuperNodes call, with node authentication), the Control API (``/v1/control/``: start, stop, list
runs, read their logs) and the Runtime API (``/v1/runtime/``: a SuperExec acquires the ServerApp's
task and token, the ServerApp pushes and pulls messages). Without Flower's enterprise plugins the
last two authenticate nobody: a partner site that can reach the address to join a job (and holds
the hub's CA certificate, as every site does) could start a run of its own app there, whose
ServerApp code the hub's SuperExec runs on the hub's machine and whose ClientApp code every other
site's SuperNode would be sent, or take a run's ServerApp token and read the sites' updates.

The hub only ever calls those two APIs from its own machine (the job worker's ``flwr`` CLI, the
SuperExec the SuperLink starts). So this launcher adds, in front of Flower's routes, a middleware
(home-made: Flower has no hook for it but its enterprise extensions) that answers 403 to any
request but ``/v1/fleet/`` and ``/health`` from an address outside ``CONSORTIUM_SUPERLINK_LOCAL``
(comma-separated; loopback always counts), and logs the refusal. Then it runs Flower's own
``flower-superlink`` entry point with the same arguments.

Run as ``python -m consortium.federation.engine.superlink <flower-superlink arguments>``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

LOCAL_ENV = "CONSORTIUM_SUPERLINK_LOCAL"
OPEN_PATHS = ("/v1/fleet/", "/health")  # what other hosts may call (the Fleet API authenticates nodes)
REFUSAL = "consortium: refused"  # the log line's start (``refusals`` reads the SuperLink's log)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def local_hosts(spec: str | None) -> frozenset[str]:
    """The addresses that count as this machine: loopback, and those ``spec`` names.

    >>> sorted(local_hosts("10.0.0.1, 127.0.0.1"))
    ['10.0.0.1', '127.0.0.1', '::1']
    """
    return frozenset(h.strip() for h in (spec or "").split(",") if h.strip()) | {"127.0.0.1", "::1"}


def is_local(host: str | None, local: frozenset[str]) -> bool:
    """Whether a client address is this machine's.

    >>> is_local("127.0.0.5", frozenset()), is_local("10.0.0.2", frozenset({"10.0.0.1"}))
    (True, False)
    """
    if not host:
        return False
    if host in local:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class FleetOnlyForOthers:
    """ASGI middleware: other hosts reach only the Fleet API and the health check (see the module)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], local: frozenset[str] | None = None
                 ) -> None:
        self.app = app
        self.local = local if local is not None else local_hosts(os.environ.get(LOCAL_ENV))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope.get("path", "")
            client = scope.get("client") or (None, None)
            if not path.startswith(OPEN_PATHS) and not is_local(client[0], self.local):
                print(f"{REFUSAL} {scope.get('method', '?')} {path} from {client[0]}: only the Fleet API is "
                      "served to other hosts", file=sys.stderr, flush=True)
                body = json.dumps({"detail": f"{path} is not served to {client[0]}: other hosts reach only the "
                                             "Fleet API (/v1/fleet/)"}).encode()
                await send({"type": "http.response.start", "status": 403,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def main() -> int:
    from flwr.superlink import extensions
    from flwr.superlink.cli.flower_superlink import flower_superlink
    from starlette.middleware import Middleware

    flower = extensions.get_middleware
    # the outermost middleware of Flower's app (``flwr.superlink.main._get_middleware`` puts these first)
    extensions.get_middleware = lambda: (Middleware(FleetOnlyForOthers), *flower())
    sys.argv[0] = "flower-superlink"
    flower_superlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
