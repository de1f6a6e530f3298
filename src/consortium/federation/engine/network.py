"""Where the Flower engine listens: free ports, waiting for a port to open, and the SuperLink's
address (``Listen``: loopback by default; an interface, a public name and a port range for sites on
other machines).

>>> free_port() > 0
True
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from consortium.errors import InvalidInput, Unavailable


def free_port(host: str = "127.0.0.1", span: tuple[int, int] | None = None) -> int:
    """A port nothing listens on: any (the kernel's pick) or the first free one in ``span``."""
    if span is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            return int(s.getsockname()[1])
    for port in range(span[0], span[1] + 1):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise Unavailable(f"no free port in {span[0]}-{span[1]} for a SuperLink",
                      hint="widen CONSORTIUM_FEDERATION_PORTS or wait for running federated jobs to end")


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None,
              host: str = "127.0.0.1") -> None:
    """Poll until something accepts on host:port; ``Unavailable`` on timeout or exit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise Unavailable(f"process exited with code {proc.returncode} before opening port {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise Unavailable(f"nothing listens on {host}:{port} after {timeout:.0f} s")


ALL_INTERFACES = ("0.0.0.0", "::", "")  # noqa: S104 - to recognize a wildcard host, never to bind one


@dataclass(frozen=True)
class Listen:
    """Where a SuperLink listens and how nodes reach it. The default is loopback only.

    For sites on other machines: ``host="0.0.0.0"`` (or one interface's address), ``public`` the
    name or address the sites dial (it goes into the TLS certificate) and ``ports`` a range a
    firewall admits. Flower 1.42 serves its Control and Runtime APIs on the same address as the
    Fleet API, so admit only the sites' addresses to that range.

    >>> Listen("0.0.0.0", "hub.example.org").local, Listen("0.0.0.0", "hub.example.org").dial
    ('127.0.0.1', 'hub.example.org')
    """

    host: str = "127.0.0.1"
    public: str | None = None
    ports: tuple[int, int] | None = None

    @property
    def local(self) -> str:
        """The address the hub itself dials (its own flwr CLI, the SuperNodes it starts)."""
        return "127.0.0.1" if self.host in ALL_INTERFACES else self.host

    @property
    def dial(self) -> str:
        """The host nodes elsewhere dial."""
        return self.public or self.local

    @classmethod
    def from_settings(cls, settings: Any) -> Listen:
        span = settings.federation_ports
        ports: tuple[int, int] | None = None
        if span:  # low-high (Settings checks the pattern)
            low, high = (int(p) for p in span.split("-"))
            ports = (low, high)
        if ports is not None and not 0 < ports[0] <= ports[1] < 65536:
            raise InvalidInput(f"CONSORTIUM_FEDERATION_PORTS={span!r} is not a port range",
                               hint="write it low-high, e.g. 9100-9199")
        return cls(settings.federation_host, settings.federation_public_host, ports)


@dataclass
class Ports:
    """Loopback ports; 0 picks a free one. In Flower 1.42 the SuperLink serves its Fleet,
    Control and Runtime APIs over HTTP on one ``--host/--port``."""

    superlink: int = 0

    def resolve(self, listen: Listen | None = None) -> Ports:
        listen = listen or Listen()
        return Ports(self.superlink or free_port(listen.local, listen.ports))
