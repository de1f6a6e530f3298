"""Transport security of the Flower engine with real processes: the SuperLink serves TLS from the
hub's CA and admits only SuperNodes whose keys were registered; a process on the same machine
without the key (or without TLS) is refused."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
from pathlib import Path

from support import wait_for

from consortium.federation.engine.deployment import FlowerDeployment
from consortium.federation.engine.network import free_port
from consortium.federation.engine.pki import node_key
from consortium.federation.engine.processes import BIN


def _supernode(dep: FlowerDeployment, name: str, args: list[str]) -> subprocess.Popen[bytes]:
    log = (dep.work / f"{name}.log").open("wb")
    return subprocess.Popen([str(BIN / "flower-supernode"), *args, "--superlink", dep.address, "--max-retries", "1",
                             "--max-wait-time", "5", "--host", "127.0.0.1", "--port", str(free_port())],
                            stdout=log, stderr=subprocess.STDOUT, env=dep.env, start_new_session=True)


def test_only_registered_nodes_with_the_ca_join(tmp_path: Path) -> None:
    with FlowerDeployment(tmp_path / "engine", pki_dir=tmp_path / "pki") as dep:
        assert dep.pki is not None
        for key in ("ca.key", "superlink.key"):
            assert oct((tmp_path / "pki" / key).stat().st_mode & 0o777) == "0o600"
        ctx = ssl.create_default_context(cafile=str(dep.pki.ca_cert))  # the SuperLink speaks TLS for 127.0.0.1
        with socket.create_connection(("127.0.0.1", dep.ports.superlink), 5) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() is not None
        good, _ = node_key(tmp_path / "good.key")
        dep.register_node(node_key(tmp_path / "good.key")[1], "good")
        stranger, _ = node_key(tmp_path / "stranger.key")
        ca = ["--root-certificates", str(dep.pki.ca_cert)]
        procs = {"registered": _supernode(dep, "registered", [*ca, "--auth-supernode-private-key", str(good)]),
                 "unknown key": _supernode(dep, "unknown", [*ca, "--auth-supernode-private-key", str(stranger)]),
                 "no key": _supernode(dep, "nokey", ca),
                 "no tls": _supernode(dep, "notls", ["--insecure", "--auth-supernode-private-key", str(good)])}
        try:
            refused = ("unknown key", "no key", "no tls")
            wait_for(lambda: all(procs[n].poll() is not None for n in refused), 90, 0.2, "the intruders to give up")
            assert all(procs[n].returncode != 0 for n in refused)

            def online() -> list[dict]:  # type: ignore[type-arg]
                out = dep.flwr("supernode", "ls", "consortium", "--format", "json")
                return [n for n in json.loads(out[out.index("{"):])["nodes"] if n["status"] == "online"]
            assert len(wait_for(online, 60, 0.5, "the registered node")) == 1
            assert procs["registered"].poll() is None
        finally:
            for p in procs.values():
                p.kill()
                p.wait(5)


def test_insecure_only_when_asked(tmp_path: Path) -> None:
    dep = FlowerDeployment(tmp_path / "engine", secure=False)
    assert dep.pki is None and dep.root_certificates is None
    dep.register_node("not even a key", "x")  # nothing to register without node authentication
    assert not (tmp_path / "engine" / "pki").exists()


def _outside_address() -> str | None:
    """This machine's address on its first non-loopback interface (what a site elsewhere dials)."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=False).stdout.split()
    return next((a for a in out if ":" not in a and not a.startswith("127.")), None)


def test_a_superlink_for_sites_elsewhere_listens_on_a_public_address_in_the_port_range(tmp_path: Path) -> None:
    import pytest

    from consortium.federation.engine.network import Listen

    public = _outside_address()
    if public is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    lo = free_port()
    listen = Listen("0.0.0.0", public, (lo, lo + 20))
    with FlowerDeployment(tmp_path / "engine", pki_dir=tmp_path / "pki", listen=listen) as dep:
        assert dep.pki is not None and lo <= dep.ports.superlink <= lo + 20
        assert dep.address == f"{public}:{dep.ports.superlink}"
        ctx = ssl.create_default_context(cafile=str(dep.pki.ca_cert))  # the certificate names the public address
        with socket.create_connection((public, dep.ports.superlink), 5) as raw, \
                ctx.wrap_socket(raw, server_hostname=public) as tls:
            assert tls.version() is not None
        key, public_key = node_key(tmp_path / "site.key")
        dep.register_node(public_key, "site")
        node = _supernode(dep, "site", ["--root-certificates", str(dep.pki.ca_cert),
                                        "--auth-supernode-private-key", str(key)])
        try:
            def online() -> list[dict]:  # type: ignore[type-arg]
                out = dep.flwr("supernode", "ls", "consortium", "--format", "json")
                return [n for n in json.loads(out[out.index("{"):])["nodes"] if n["status"] == "online"]
            assert len(wait_for(online, 60, 0.5, "the site's node, dialing the public address")) == 1
        finally:
            node.kill()
            node.wait(5)


def test_federation_port_range_comes_from_settings() -> None:
    from consortium.config import Settings
    from consortium.federation.engine.network import Listen

    listen = Listen.from_settings(Settings(federation_host="0.0.0.0", federation_public_host="hub.example.org",
                                           federation_ports="9100-9199"))
    assert listen == Listen("0.0.0.0", "hub.example.org", (9100, 9199))
    assert listen.local == "127.0.0.1" and listen.dial == "hub.example.org"
