"""Run a federated job on Flower's deployment engine: real SuperLink and SuperNode processes.

``FlowerDeployment`` starts ``flower-superlink`` (its own loopback ports, runtime dependency
installation off) and one ``flower-supernode`` per organization, each with a ``node_config``
naming its local data store. ``submit`` writes a minimal Flower app (a ``pyproject.toml`` whose
components point at ``consortium.federation.app.server_app:app`` / ``client_app:app``; no code is
shipped) and starts the run through the SuperLink's Control API from this process (``control``:
the requests ``flwr run`` sends, without a CLI process; ``FLWR_HOME``'s ``config.toml`` still
names the SuperLink for an operator's ``flwr`` CLI). Progress is read from the ServerApp's
``progress.jsonl``; every wait polls with a deadline. ``close`` ends every process it started
(process groups, then a sweep for anything still tagged with this deployment's id).

Transport security (default): the SuperLink serves TLS with a certificate from ``pki.ensure_pki``
(CA and keys under ``pki_dir``, created at first start) and runs with ``--enable-supernode-auth``:
a SuperNode joins only with a private key whose public half was registered for this SuperLink
(``register_node``; ``add_node`` does it for the nodes it starts) and verifies the SuperLink with
the CA certificate. ``secure=False`` (``CONSORTIUM_FEDERATION_INSECURE``) runs plain HTTP
without node authentication. Each SuperNode polls the SuperLink every 0.25 s instead of 3 s
(``supernode``) and runs with ``--isolation process`` beside a warm SuperExec that forks its
ClientApps (``warm_exec``); so does the SuperLink, whose ServerApp of each run is a fork of the
same warm process, warmed up while the SuperLink starts. ``tuned=False`` runs Flower's processes
as shipped (``flwr`` CLI processes, a ``flwr-serverapp`` and ``flwr-clientapp`` process a run and
a message). A SuperNode the
SuperLink refuses (a key not registered for it, a request whose signature does not verify) is read
from its log (``check_refusals``, also while ``wait`` follows a run) and handed to ``on_refusal``:
the hub's jobs audit it. The SuperLink serves other hosts its Fleet API only (``superlink``): its
Control and Runtime APIs, which Flower leaves unauthenticated, answer only this machine.

>>> from consortium.federation.engine.simulation import job_run_config   # doctest: +SKIP
>>> out = Path("/tmp/fl/out")                                               # doctest: +SKIP
>>> with FlowerDeployment("/tmp/fl") as d:                                  # doctest: +SKIP
...     for org, path in {"a": "/data/a", "b": "/data/b"}.items():
...         d.add_node(org, path, "bc")
...     run_id = d.submit(job_run_config(recipe, out))
...     d.wait(out, run_id, progress=print)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consortium.data.frame import DataFrameSet
from consortium.errors import ConsortiumError, InvalidInput, Unavailable
from consortium.federation.app import protocol as P
from consortium.federation.app.progress import ProgressSink, read_progress
from consortium.federation.engine.network import ALL_INTERFACES, Listen, Ports, free_port, wait_port
from consortium.federation.engine.pki import PKI, ensure_pki, node_key
from consortium.federation.engine.processes import BIN, MARK, kill_group, python_path, tagged
from consortium.federation.engine.refusals import Refusal, RefusalLog
from consortium.federation.engine.result import FederatedResult, load_result, raise_if_failed
from consortium.federation.engine.superlink import LOCAL_ENV


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    extra: dict[str, Any] = field(default_factory=dict)


class FlowerDeployment:
    """Flower's deployment engine on this machine: a SuperLink and the SuperNodes it starts, as
    processes, for one or more runs (not a serving deployment of a model); a context manager."""

    def __init__(self, work_dir: str | Path, *, ports: Ports | None = None, poll_interval: float = 0.2,
                 start_timeout: float = 60.0, secure: bool = True, pki_dir: str | Path | None = None,
                 tag: str | None = None, listen: Listen | None = None,
                 on_refusal: Callable[[Refusal], None] | None = None, tuned: bool = True,
                 local_nodes: bool = True) -> None:
        self.work = Path(work_dir)
        self.work.mkdir(parents=True, exist_ok=True)
        self.listen = listen or Listen()
        self.ports = (ports or Ports()).resolve(self.listen)
        self.tag = tag or uuid.uuid4().hex
        self.secure = secure
        hosts = tuple(h for h in {self.listen.local, self.listen.dial} if h not in ALL_INTERFACES)
        self.pki: PKI | None = ensure_pki(pki_dir or self.work / "pki", hosts) if secure else None
        self.registered: set[str] = set()
        self.home = self.work / "flwr_home"
        self.home.mkdir(exist_ok=True)
        self.poll_interval = poll_interval
        self.start_timeout = start_timeout
        self.superlink: _Proc | None = None
        self.nodes: dict[str, _Proc] = {}
        self.env = self._env()
        self.on_refusal = on_refusal
        # SuperNodes poll every 0.25 s (``supernode``) and fork their ClientApps from a warm process
        # (``warm_exec``); False runs Flower's processes as shipped (3 s idle poll, a process a message)
        self.tuned = tuned
        # False: every node runs elsewhere (``consortium node``): the warm process only serves ServerApps
        self.local_nodes = local_nodes
        self.zygote: Any = None  # warm_exec.Zygote: the one warm process the nodes' SuperExecs fork from
        self.refused: list[Refusal] = []  # SuperNodes the SuperLink turned away (``check_refusals``)
        self._refusal_log = RefusalLog(self.work / "logs" / "superlink.log")
        self._control: Any = None

    # ------------------------------------------------------------------ processes
    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = python_path(env)  # so the flwr-*app processes import us
        env.update({"FLWR_HOME": str(self.home), MARK: self.tag, "FLWR_TELEMETRY_ENABLED": "0",
                    "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": str(self.poll_interval),
                    "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"})
        return env

    def _spawn(self, name: str, args: list[str]) -> _Proc:
        log = self.work / "logs" / f"{name}.log"
        log.parent.mkdir(exist_ok=True)
        with log.open("ab") as f:
            popen = subprocess.Popen(  # noqa: S603 - Flower's own binaries, an argument list, no shell
                args, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env, cwd=self.work,
                start_new_session=True)
        return _Proc(name, popen, log)

    def start(self) -> FlowerDeployment:
        """Start the SuperLink and wait until its HTTP APIs accept connections."""
        if self.superlink is not None:
            return self
        p = self.ports
        if self.pki is None:
            security = ["--insecure"]
        else:
            security = ["--ssl-ca-certfile", str(self.pki.ca_cert), "--ssl-certfile", str(self.pki.server_cert),
                        "--ssl-keyfile", str(self.pki.server_key), "--enable-supernode-auth"]
        # Flower's SuperLink with its Control and Runtime APIs refused to other hosts (``superlink``)
        self.env[LOCAL_ENV] = self.listen.local
        if self.tuned:  # the warm process imports torch and the apps while the SuperLink starts
            self._warm()
        self.superlink = self._spawn("superlink", [
            sys.executable, "-m", "consortium.federation.engine.superlink", *security,
            "--disable-runtime-dependency-installation", *(["--isolation", "process"] if self.tuned else []),
            "--host", self.listen.host, "--port", str(p.superlink), "--database", ":flwr-in-memory:"])
        try:
            wait_port(p.superlink, self.start_timeout, self.superlink.popen, self.listen.local)
        except Unavailable as e:
            log = self.superlink.log
            self.close()
            raise Unavailable(f"the SuperLink did not start: {e}", hint=f"see {log}") from None
        if self.tuned:  # its ServerApps are forks of the warm process (``warm_exec``)
            self.superlink.extra["exec"] = self._warm().spawn(
                self.superlink.popen, self.local_address, self.work / "logs" / "serverapp.log",
                self.pki.ca_cert if self.pki is not None else None)
        self._write_connection()
        return self

    def _warm(self) -> Any:
        """The deployment's warm process (``warm_exec.Zygote``), started if it is not running."""
        from consortium.federation.engine import warm_exec

        if self.zygote is None or self.zygote.proc.poll() is not None:
            (self.work / "logs").mkdir(exist_ok=True)
            self.zygote = warm_exec.Zygote(self.env, self.work / "logs" / "warm-exec.log", self.work, server=True,
                                           client=self.local_nodes)
        return self.zygote

    def add_node(self, org: str, data_dir: str | Path, dataset: str) -> None:
        """Start (or restart) the SuperNode of ``org`` reading ``dataset`` from ``data_dir``."""
        self.add_nodes([(org, data_dir, dataset)])

    def add_nodes(self, nodes: list[tuple[str, str | Path, str]]) -> None:
        """Start (or restart) SuperNodes, ``(org, data dir, dataset)`` each: their keys are registered
        in one process, then all start at once and are waited for together."""
        if self.superlink is None:
            self.start()
        for org, data_dir, dataset in nodes:
            if org in self.nodes and self.nodes[org].popen.poll() is None:
                raise InvalidInput(f"the node of {org!r} is already running")
            for v in (org, str(data_dir), dataset):
                if "'" in v:
                    raise InvalidInput(f"quote characters are not allowed in node settings: {v!r}")
        keys: dict[str, Path] = {}
        if self.pki is not None:
            # a fresh key per start: the SuperLink refuses a key whose node still counts as online
            # (up to a minute after a crash), so a restarted node joins under a new node id
            for org, _, _ in nodes:
                starts = len(list((self.work / "keys").glob(f"{org}.*.key"))) if (self.work / "keys").exists() else 0
                keys[org], public = node_key(self.work / "keys" / f"{org}.{starts}.key")
                keys[org].with_suffix(".pub").write_text(public + "\n")
            self._register({org: keys[org].with_suffix(".pub") for org in keys})
        for org, data_dir, dataset in nodes:
            self._start_node(org, data_dir, dataset, keys.get(org))
        for org, _, _ in nodes:
            try:
                wait_port(self.nodes[org].extra["port"], self.start_timeout, self.nodes[org].popen)
            except Unavailable as e:
                self.kill_node(org)
                raise Unavailable(f"the SuperNode of {org!r} did not start: {e}",
                                  hint=f"see {self.nodes[org].log}") from None

    def _start_node(self, org: str, data_dir: str | Path, dataset: str, key: Path | None) -> None:
        port = free_port()
        cfg = f"{P.DATA_DIR}='{data_dir}' {P.DATASET}='{dataset}' {P.ORG}='{org}'"
        security = ["--insecure"]
        if self.pki is not None and key is not None:
            security = ["--root-certificates", str(self.pki.ca_cert), "--auth-supernode-private-key", str(key)]
        run = [sys.executable, "-m", "consortium.federation.engine.supernode", "--isolation", "process"] \
            if self.tuned else [str(BIN / "flower-supernode")]
        self.nodes[org] = self._spawn(f"node-{org}", [
            *run, *security, "--superlink", self.local_address,
            "--node-config", cfg, "--host", "127.0.0.1", "--port", str(port)])
        self.nodes[org].extra["port"] = port
        if self.tuned:
            self.nodes[org].extra["exec"] = self._warm().spawn(self.nodes[org].popen, f"127.0.0.1:{port}",
                                                               self.nodes[org].log)

    @property
    def address(self) -> str:
        """Where SuperNodes elsewhere reach the SuperLink (``host:port``)."""
        return f"{self.listen.dial}:{self.ports.superlink}"

    @property
    def local_address(self) -> str:
        """Where the hub's own flwr CLI and the SuperNodes it starts reach the SuperLink."""
        return f"{self.listen.local}:{self.ports.superlink}"

    @property
    def root_certificates(self) -> str | None:
        """The CA certificate (PEM) SuperNodes verify the SuperLink with; None when insecure."""
        return self.pki.ca_cert.read_text() if self.pki is not None else None

    def register_node(self, public_key: str, name: str) -> None:
        """Allow the SuperNode holding the private half of ``public_key`` (OpenSSH) to join."""
        if self.pki is None or public_key.strip() in self.registered:
            return
        from consortium.federation.engine.pki import check_public_key

        path = self.work / "keys" / f"{uuid.uuid4().hex[:12]}.pub"
        path.parent.mkdir(exist_ok=True)
        path.write_text(check_public_key(public_key) + "\n")
        self._register({name: path})

    def _register(self, keys: dict[str, Path]) -> None:
        """Register public key files (name -> OpenSSH ``.pub``): through the Control API from this
        process (``control``), or untuned as Flower ships it, ``flwr supernode register`` a key."""
        for name, path in keys.items():
            public = path.read_text().strip()
            if public in self.registered:
                continue
            if self.tuned:
                self.control.register(name[:60], public)
            else:
                self.flwr("supernode", "register", str(path), "consortium", "--name", name[:60], timeout=60)
            self.registered.add(public)

    def check_refusals(self) -> list[Refusal]:
        """SuperNodes refused since the last call (unknown key, bad signature), read from the
        SuperLink's log; each also goes to ``on_refusal``."""
        new = self._refusal_log.new()
        self.refused.extend(new)
        if self.on_refusal is not None:
            for r in new:
                self.on_refusal(r)
        return new

    def kill_node(self, org: str) -> None:
        """Kill ``org``'s SuperNode and everything it started, at once (a crash, not a stop)."""
        proc = self.nodes.get(org)
        if proc is not None:
            for p in (proc.popen, proc.extra.get("exec")):
                if p is not None:
                    _kill(p, signal.SIGKILL, 5.0)

    def close(self, timeout: float = 10.0) -> None:
        """Stop every process this deployment started; nothing is left behind."""
        if self._control is not None:  # its keep-alive connection would hold the SuperLink's exit 10 s
            self._control.close()
            self._control = None
        procs = [p for proc in [*self.nodes.values(), *([self.superlink] if self.superlink else [])]
                 for p in (proc.popen, proc.extra.get("exec")) if p is not None]
        for p in procs:  # all asked at once (each takes about 0.5 s to stop), then each waited for
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError, Unavailable):
                pass
        for p in procs:
            _kill(p, signal.SIGTERM, timeout)
        if self.zygote is not None:
            self.zygote.close()
            self.zygote = None
        if self.superlink is not None:
            self.check_refusals()  # the last lines the SuperLink wrote
        for pid in self.leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.superlink = None

    def leftovers(self) -> list[int]:
        """Pids of live processes that carry this deployment's tag in their environment."""
        return tagged(self.tag)

    def __enter__(self) -> FlowerDeployment:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ runs
    def _write_connection(self) -> None:
        security = "insecure = true" if self.pki is None else f'root-certificates = "{self.pki.ca_cert}"'
        (self.home / "config.toml").write_text(
            '[superlink]\ndefault = "consortium"\n\n[superlink.consortium]\n'
            f'address = "{self.local_address}"\n{security}\n')

    def _write_app(self) -> Path:
        app = self.work / "app"
        app.mkdir(exist_ok=True)
        defaults = "\n".join(f"{k} = {json.dumps(v)}" for k, v in P.DEFAULT_RUN_CONFIG.items())
        (app / "pyproject.toml").write_text(f"""[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "consortium-federated"
version = "1.0.0"
description = "Consortium federated job (components live in the installed consortium package)"
license = "Apache-2.0"
dependencies = []

[tool.flwr.app]
publisher = "consortium"

[tool.flwr.app.components]
serverapp = "consortium.federation.app.server_app:app"
clientapp = "consortium.federation.app.client_app:app"

[tool.flwr.app.config]
{defaults}
""")
        return app

    @property
    def control(self) -> Any:
        """The SuperLink's Control API from this process (``control.Control``; the ``flwr`` CLI
        would be a process a call)."""
        if self._control is None:
            from consortium.federation.engine.control import Control

            self._control = Control(self.local_address, self.pki.ca_cert if self.pki is not None else None)
        return self._control

    def flwr(self, *args: str, timeout: float = 120.0) -> str:
        """Run the ``flwr`` CLI against this deployment's SuperLink (its connection is in
        ``FLWR_HOME``'s ``config.toml``); its stdout."""
        res = subprocess.run(  # noqa: S603 - the venv's flwr, an argument list, no shell
            [str(BIN / "flwr"), *args], env=self.env, cwd=self.work, capture_output=True, text=True,
            timeout=timeout, stdin=subprocess.DEVNULL)
        if res.returncode != 0:
            raise Unavailable(f"flwr {args[0]} failed: {(res.stderr or res.stdout).strip()[-800:]}")
        return res.stdout

    def submit(self, run_config: dict[str, Any]) -> int:
        """Start a run with these run-config values; returns the run id. Tuned, through the Control
        API from this process; untuned, as Flower ships it, with ``flwr run``."""
        app = self._write_app()
        if self.tuned:
            return int(self.control.start_run(app, run_config))
        cfg_file = self.work / f"run-config-{uuid.uuid4().hex[:8]}.toml"
        cfg_file.write_text("\n".join(f"{k} = {json.dumps(v)}" for k, v in run_config.items()) + "\n")
        out = self.flwr("run", str(app), "consortium", "--run-config", str(cfg_file), "--format", "json")
        try:
            return int(json.loads(out[out.index("{"):])["run-id"])
        except (ValueError, KeyError) as e:
            raise Unavailable(f"flwr run gave no run id: {out[-500:]}") from e

    def run_status(self, run_id: int) -> str:
        """The run's status as ``flwr ls`` reports it (e.g. ``running``, ``finished:completed``)."""
        return str(self.control.status(run_id))

    def wait(self, out_dir: Path, run_id: int, *, progress: ProgressSink | None = None,
             timeout: float = 1800.0, status_every: float = 60.0,
             on_record: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Follow ``progress.jsonl`` until the run is done or failed, with a deadline.

        The run's status (``flwr ls``: a CLI process, 2-7 s of CPU on a 2-core machine) is asked
        only after ``status_every`` seconds without a new record."""
        path = out_dir / "progress.jsonl"
        seen = 0
        deadline = time.monotonic() + timeout
        next_status = time.monotonic() + status_every
        while True:
            for rec in read_progress(path, start=seen):
                seen += 1
                next_status = time.monotonic() + status_every
                if progress is not None:
                    progress(rec)
                if on_record is not None:
                    on_record(rec)
                if rec.get("kind") == "error":
                    raise_if_failed(out_dir)
                if rec.get("kind") == "done" and (out_dir / "result.json").exists():
                    return
            self.check_refusals()
            if self.superlink is None or self.superlink.popen.poll() is not None:
                raise Unavailable("the SuperLink stopped during the run", hint=f"see {self.work / 'logs'}")
            if time.monotonic() > next_status:
                next_status = time.monotonic() + status_every
                status = self.run_status(run_id)
                if status.startswith("finished") and not (out_dir / "result.json").exists():
                    time.sleep(0.5)  # the last lines may still be in flight
                    if not read_progress(path, start=seen):
                        raise Unavailable(f"run {run_id} ended as {status} without a result",
                                          hint=f"see the logs in {self.work / 'logs'}")
            if time.monotonic() > deadline:
                raise Unavailable(f"run {run_id} did not finish within {timeout:.0f} s")
            time.sleep(0.2)


def run_deployment(recipe: Any, partitions: dict[str, DataFrameSet], *,
                   validation: DataFrameSet | None = None, progress: ProgressSink | None = None,
                   work_dir: str | Path | None = None, ports: Ports | None = None,
                   round_timeout: float = 300.0, straggler_grace: float = 8.0, node_wait: float = 120.0,
                   shapley_samples: int = 0, timeout: float = 1800.0, secure: bool = True) -> FederatedResult:
    """Run the recipe's federated job with one real SuperNode per organization on loopback.

    Each organization's rows are written to its own node store first (in a real deployment
    they are already at the site and only ``add_node`` is needed). Returns the same
    ``FederatedResult`` as ``run_simulation``.
    """
    from consortium.federation.engine.simulation import job_run_config, prepare

    tmp = None
    if work_dir:
        work = Path(work_dir)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="consortium-fl-")
        work = Path(tmp.name)
    t0 = time.monotonic()
    try:
        recipe, configs, vdir = prepare(recipe, partitions, validation, work)
        out = work / "out"
        cfg = job_run_config(recipe, out, validation_dir=vdir, round_timeout=round_timeout,
                             straggler_grace=straggler_grace, node_wait=node_wait,
                             shapley_samples=shapley_samples)
        timings: dict[str, float] = {}
        with FlowerDeployment(work / "engine", ports=ports, secure=secure) as dep:
            dep.add_nodes([(c[P.ORG], c[P.DATA_DIR], c[P.DATASET]) for c in configs])
            timings["engine_start_s"] = time.monotonic() - t0
            run_id = dep.submit(cfg)
            timings["submitted_s"] = time.monotonic() - t0
            dep.wait(out, run_id, progress=progress, timeout=timeout)
        timings["total_s"] = time.monotonic() - t0
        return load_result(out, "deployment (flower-superlink + flower-supernode processes)", timings)
    except ConsortiumError:
        raise
    finally:
        if tmp is not None:
            tmp.cleanup()


def _kill(p: Any, sig: int, timeout: float) -> None:
    """``kill_group`` for a node's process or its SuperExec; a SuperExec the warm process never
    forked (it ended first) is skipped: the deployment's tag still finds what is left."""
    try:
        kill_group(p, sig, timeout)
    except Unavailable:
        pass
