# ruff: noqa: S603, S607, S311 - runs iproute2 and this interpreter by argument list; random picks a subnet
"""A consortium whose sites are separate hosts: a hub host and three site hosts as Linux network
namespaces joined by veth links to a bridge in the hub's namespace (iproute2; needs root).

    sudo .venv/bin/python examples/multisite/multisite.py      # builds, runs one federated job, removes all

What it builds (every address on links it creates, in one 10.213.N.0/24 with a free N):

- namespace ``<prefix>-hub``: bridge ``br0`` at 10.213.N.1; ``consortium serve`` over HTTPS (a test
  CA made here with ``cryptography``) with one job worker, its SuperLinks on 10.213.N.1 (TLS,
  SuperNode authentication);
- namespaces ``<prefix>-s1..s3``: 10.213.N.11-13, each running its organization's
  ``consortium node --publish --ca-cert`` (the hub's CA pinned) on a data directory of its own;
  the site's rows are a CSV saved there with ``consortium nodes add-data``, nothing else;
- a veth from this (the operator's) namespace at 10.213.N.254, to submit the job over HTTPS.

The hub's home holds no site row: the CSVs carry a random marker value that ``main`` looks for in
the hub's home (database, blobs, logs) and its log after the job. ``Consortium.close`` kills the
processes and deletes the namespaces and links, also after a failure.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SITES = ("st-marys-hospital", "riverside-clinic", "northgate-lab")
PORT = 8443  # inside the hub's own namespace: nothing else listens there


def why_not() -> str | None:
    """Why network namespaces cannot be made here (None: they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root (run as root or with CAP_NET_ADMIN)"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    probe = f"csm-probe-{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return f"`ip netns add` failed: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str, ns: str | None = None) -> None:
    cmd = ["ip", *(["-n", ns] if ns else []), *args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")


def _free_subnet() -> int:
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    free = [n for n in range(1, 255) if f"10.213.{n}." not in used]
    return random.choice(free)


@dataclass
class Consortium:
    """The namespaces, links and processes of one run; ``close`` removes them all."""

    root: Path
    prefix: str = field(default_factory=lambda: f"csm{os.getpid() % 100000}")
    net: int = field(default_factory=_free_subnet)
    namespaces: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    # False: the same processes on this machine's loopback, no namespace (the benchmark's baseline)
    namespaced: bool = True
    port: int = PORT

    @property
    def hub_ns(self) -> str:
        return f"{self.prefix}-hub"

    def site_ns(self, i: int) -> str:
        return f"{self.prefix}-s{i + 1}"

    def addr(self, host: int) -> str:
        return f"10.213.{self.net}.{host}" if self.namespaced else "127.0.0.1"

    @property
    def hub_ip(self) -> str:
        return self.addr(1)

    @property
    def url(self) -> str:
        return f"https://{self.hub_ip}:{self.port}"

    @property
    def home(self) -> Path:
        return self.root / "hub-home"

    @property
    def ca(self) -> Path:
        return self.root / "hub-tls" / "ca.pem"

    def site_dir(self, i: int) -> Path:
        return self.root / f"site-{i + 1}"

    # -- network ------------------------------------------------------------------------------
    def build(self) -> Consortium:
        if not self.namespaced:  # every process on loopback; the hub on a free port
            from consortium.federation.engine.network import free_port

            self.port = free_port()
            return self
        hub = self.hub_ns
        self._netns(hub)
        _ip("link", "add", "br0", "type", "bridge", ns=hub)
        _ip("addr", "add", f"{self.hub_ip}/24", "dev", "br0", ns=hub)
        _ip("link", "set", "br0", "up", ns=hub)
        for i in range(len(SITES)):
            ns = self.site_ns(i)
            self._netns(ns)
            self._veth(f"{self.prefix}s{i + 1}", ns, self.addr(11 + i))
        self._veth(f"{self.prefix}op", None, self.addr(254))  # the operator's end, in this namespace
        return self

    def _netns(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self.namespaces.append(ns)
        _ip("link", "set", "lo", "up", ns=ns)

    def _veth(self, name: str, ns: str | None, address: str) -> None:
        """A veth pair: ``name`` in ``ns`` (None: this namespace) at ``address``, its peer on the hub's bridge."""
        peer = f"{name}h"
        _ip("link", "add", name, "type", "veth", "peer", "name", peer)
        self.links.append(name)
        _ip("link", "set", peer, "netns", self.hub_ns)
        _ip("link", "set", peer, "master", "br0", ns=self.hub_ns)
        _ip("link", "set", peer, "up", ns=self.hub_ns)
        if ns is not None:
            _ip("link", "set", name, "netns", ns)
        _ip("addr", "add", f"{address}/24", "dev", name, ns=ns)
        _ip("link", "set", name, "up", ns=ns)

    # -- processes ----------------------------------------------------------------------------
    def _env(self, **extra: str) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith("CONSORTIUM_")}
        return {**keep, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), **extra}

    def _in(self, ns: str) -> list[str]:
        """The command prefix that runs a process in ``ns`` (nothing on loopback)."""
        return ["ip", "netns", "exec", ns] if self.namespaced else []

    def _run(self, ns: str, *args: str, **env: str) -> str:
        r = subprocess.run([*self._in(ns), sys.executable, *args], env=self._env(**env),
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} in {ns}: {r.stdout}{r.stderr}")
        return r.stdout

    def _start(self, key: str, ns: str, log: Path, *args: str, **env: str) -> None:
        with log.open("ab") as f:
            self.procs[key] = subprocess.Popen([*self._in(ns), sys.executable, *args], env=self._env(**env),
                                               stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                               start_new_session=True)

    def hub_env(self) -> dict[str, str]:
        return {"CONSORTIUM_HOME": str(self.home), "CONSORTIUM_HOST": self.hub_ip, "CONSORTIUM_PORT": str(self.port),
                "CONSORTIUM_WORKERS": "1", "CONSORTIUM_FEDERATION_HOST": self.hub_ip,
                "CONSORTIUM_FEDERATION_PUBLIC_HOST": self.hub_ip, "CONSORTIUM_DEMO_NODES": "false"}

    def start_hub(self) -> None:
        """HTTPS certificate (a test CA), the organizations and their owners' tokens, then the hub."""
        from consortium.federation.engine.pki import ensure_pki

        tls = ensure_pki(self.root / "hub-tls", hosts=(self.hub_ip,))  # a CA and a server cert for the hub's address
        out = self._run(self.hub_ns, str(Path(__file__).with_name("bootstrap.py")), **self.hub_env())
        self.tokens = dict(line.split(" ", 1) for line in out.split("\n") if line.strip())
        self._start("hub", self.hub_ns, self.root / "hub.log", "-m", "consortium.cli.main", "serve",
                    "--tls-cert", str(tls.server_cert), "--tls-key", str(tls.server_key), **self.hub_env())
        self.wait(lambda: self._healthy(), 90, "the hub to serve HTTPS")

    def _healthy(self) -> bool:
        import httpx

        if self.procs["hub"].poll() is not None:
            raise RuntimeError(f"the hub exited: {(self.root / 'hub.log').read_text()[-2000:]}")
        try:
            return httpx.get(f"{self.url}/healthz", verify=self.client_ssl(), timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def client_ssl(self) -> Any:
        import ssl

        return ssl.create_default_context(cafile=str(self.ca))

    def client(self, org: str) -> Any:
        from consortium.sdk.client import Client

        return Client(self.url, self.tokens[org], ca_cert=str(self.ca))

    def start_site(self, i: int, csv: Path, name: str = "bc") -> None:
        """The site's rows into its own directory (`nodes add-data`), then its `consortium node`."""
        org, ns, d = SITES[i], self.site_ns(i), self.site_dir(i)
        d.mkdir(mode=0o700, exist_ok=True)
        self._run(ns, "-m", "consortium.cli.main", "nodes", "add-data", str(d), name, str(csv), "--target", "target")
        self._start(org, ns, self.root / f"node-{i + 1}.log", "-m", "consortium.cli.main", "node",
                    "--hub", self.url, "--ca-cert", str(self.ca), "--data-dir", str(d), "--name", f"site-{i + 1}",
                    "--publish", "--interval", "1", CONSORTIUM_TOKEN=self.tokens[org])

    @staticmethod
    def wait(check: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = check()
            if got:
                return got
            time.sleep(0.3)
        raise TimeoutError(f"timed out waiting for {what}")

    def stop(self, key: str) -> None:
        p = self.procs.pop(key, None)
        if p is None or p.poll() is not None:
            return
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)

    def close(self) -> None:
        """Stop every process (sites first), delete the links and namespaces."""
        for key in [k for k in self.procs if k != "hub"] + ["hub"]:
            try:
                self.stop(key)
            except ProcessLookupError:
                pass
        for link in self.links:  # the operator's veth lives here; the others go with their namespaces
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "pids", ns], capture_output=True)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.namespaces, self.links = [], []

    def __enter__(self) -> Consortium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def site_csv(path: Path, part: int, marker_seed: int) -> list[bytes]:
    """Site ``part``'s third of breast_cancer as a CSV with a marker value planted; returns its forms."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
    from sitemarks import plant

    from consortium.data.samples import load_sample, partition

    frame = partition(load_sample("breast_cancer"), len(SITES), skew="iid", seed=0)[part].frame
    frame, needles = plant(frame, "mean_radius", marker_seed)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    frame.to_csv(path, index=False)
    return needles


RECIPE = {"name": "multisite", "data": {"target": "target"}, "process": [{"normalize": {"method": "standard"}}],
          "model": {"type": "logistic"}, "train": {"lr": 0.05},
          "federated": {"datasets": [f"{o}/bc" for o in SITES], "rounds": 1, "min_nodes": 3},
          "register": {"model": "multisite"}}


def grant_and_wait(c: Consortium) -> None:
    """Each site's node published ``bc``; the clinic and the lab let the hospital compute on theirs."""
    for org in SITES:
        cl = c.client(org)
        c.wait(lambda cl=cl, org=org: _published(cl, org), 60, f"{org}'s node dataset")
        if org != SITES[0]:
            cl.grants.create("dataset", f"{org}/bc", "compute", grantee_org=SITES[0])


def _published(cl: Any, org: str) -> bool:
    from consortium.errors import NotFound

    try:
        return cl.datasets.get(f"{org}/bc")["latest_version"] is not None
    except NotFound:
        return False


def main() -> int:
    reason = why_not()
    if reason:
        print(f"cannot build the sites here: {reason}")
        return 2
    root = Path(tempfile.mkdtemp(prefix="multisite-"))
    with Consortium(root) as c:
        c.build()
        print(f"hub {c.hub_ns} at {c.url}; sites {', '.join(c.site_ns(i) for i in range(len(SITES)))}")
        c.start_hub()
        needles = []
        for i in range(len(SITES)):
            csv = c.site_dir(i) / "rows.csv"
            needles += site_csv(csv, i, random.randrange(1 << 30))
            c.start_site(i, csv)
        grant_and_wait(c)
        hospital = c.client(SITES[0])
        job = hospital.jobs.submit(RECIPE)
        final = hospital.jobs.wait(job["id"], timeout_s=300)
        print(f"job {job['id']}: {final['state']} {final.get('error') or ''}")
        lineage = hospital.models.version("multisite", 1)["lineage"]
        for d in lineage["datasets"]:
            print(f"  {d['dataset']}: {d['rows']} rows, {d['location']}")
        c.stop("hub")
        sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
        from sitemarks import found_in

        hits = found_in(c.home, needles) + found_in(root / "hub.log", needles)
        if not found_in(c.site_dir(0), needles):
            raise RuntimeError("the search does not find the marker where it is")
        print("site rows under the hub's home or in its log:", hits or "none")
    shutil.rmtree(root, ignore_errors=True)
    return 0 if final["state"] == "succeeded" and not hits else 1


if __name__ == "__main__":
    raise SystemExit(main())
