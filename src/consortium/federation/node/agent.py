"""The agent behind ``consortium node``: registers a site's node with the hub, advertises the
datasets in its data directory (schema and statistics only) and heartbeats.

It only ever connects outbound to the hub (HTTPS/HTTP through the SDK) and never sends rows:
``describe`` reduces each local dataset to its columns, row count, classes and per-column
mean/std/min/max. The node's ``approve`` mode (``auto`` or ``manual``) is the data owner's choice;
in ``manual`` mode each federated job naming the organization's data waits until an admin runs
``consortium nodes approve NODE JOB``.

Training at the site: when a federated job names one of this organization's datasets and the
node advertises a local dataset of the same name, the hub assigns the run to this node (after
approval); the next heartbeat brings the SuperLink address and the agent starts a
``flower-supernode`` process with ``node_config`` pointing at the local dataset. The SuperNode
connects outbound to the SuperLink; rows never leave. With ``publish`` (``consortium node
--publish``) the hub also lists each advertised dataset in its catalog as a node dataset
(``consortium.data.node_datasets``), so grants, projects and recipes can name it. The process
ends when the hub marks the run done, and is restarted when a re-run of the job brings a new
SuperLink address.

Transport security: the agent keeps a SuperNode key pair in ``<data dir>/.node/`` (private key
0600) and sends the public key with its registration; the hub registers it with the job's
SuperLink and sends the SuperLink's CA certificate with the assignment, so the SuperNode
verifies the SuperLink (TLS) and the SuperLink admits only known nodes. A SuperNode that crashed
is restarted at the next heartbeat; the SuperLink refuses its key until it has marked the old
session offline (about a minute), and the agent keeps restarting it until then. A hub served over
HTTPS with a private CA is pinned with ``--ca-cert`` (the SDK's ``ca_cert``); the SuperLink is
reachable from other hosts when the hub sets ``CONSORTIUM_FEDERATION_HOST`` (examples/multisite/).

Start-up: the agent keeps one warm process (``warm_exec.Zygote``: flwr, torch and the ClientApp
imported, one optimizer step taken; about 460 MB resident) from its start, and each run's
SuperExec is a fork of it, so a site answers a job's first message within a second of its
SuperNode joining (a SuperExec warming up by itself took 4-5 s of CPU per site, with three sites
on two cores 6-9 s before the first round). ``warm=False`` (``consortium node --cold``) holds
nothing between runs and pays that at each.

>>> import tempfile
>>> from consortium.data.samples import load_sample
>>> from consortium.federation.app.datasets import save_dataset
>>> root = tempfile.mkdtemp(); _ = save_dataset(root, "bc", load_sample("breast_cancer"))
>>> d = describe(root)[0]; d["name"], d["rows"], d["kind"], "data" in d
('bc', 569, 'tabular', False)
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from consortium.errors import ConsortiumError, InvalidInput, NotFound, Unavailable
from consortium.federation.app.datasets import list_datasets, load_dataset

HEARTBEAT_S = 15.0
KEY_FILE = ".node/supernode.key"
DELETED_FILE = ".node/withdrawn-deleted.json"  # withdrawn copies deleted, not yet reported to the hub


def describe_one(root: str | os.PathLike[str], name: str) -> dict[str, Any]:
    """Schema and aggregate statistics of one local dataset; no row values."""
    data = load_dataset(root, name)
    out: dict[str, Any] = {"name": name, "kind": data.kind, "rows": int(data.n_rows),
                           "classes": [str(c) for c in data.class_names]}
    if data.kind == "image":
        out["shape"] = list(data.image_arrays()[0].shape[1:])
        return out
    import numpy as np

    out["target"] = data.target
    cols, stats = [], {}
    frame = data.table()
    for c in frame.columns:
        s = frame[c]
        cols.append({"name": str(c), "type": str(s.dtype)})
        if np.issubdtype(s.dtype, np.number) and c != data.target:
            stats[str(c)] = {"mean": float(s.mean()), "std": float(s.std(ddof=0)),
                             "min": float(s.min()), "max": float(s.max())}
    out["columns"], out["stats"] = cols, stats
    return out


def describe(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """What a node advertises for every dataset saved under ``root``, with the rules the site
    enforces on it itself (``site_policy``, from ``local_policy``), so its owner sees them at the hub."""
    from consortium.federation.node import local_policy

    out = []
    for n in list_datasets(root):
        d = describe_one(root, n)
        rules = local_policy.load(root, n)
        if rules is not None:
            d["site_policy"] = rules.set_rules()
        out.append(d)
    return out


class NodeAgent:
    """Register once, then heartbeat (re-advertising the datasets) until ``stop`` is set."""

    def __init__(self, client: Any, name: str, data_dir: str | os.PathLike[str], *, approve: str = "auto",
                 interval: float = HEARTBEAT_S, parent_pid: int | None = None, publish: bool = False,
                 warm: bool = True) -> None:
        if approve not in ("auto", "manual"):
            raise InvalidInput(f"--approve must be auto or manual, not {approve!r}")
        self.client, self.name, self.approve, self.interval = client, name, approve, interval
        self.publish = publish  # the hub lists each advertised dataset in its catalog (a node dataset)
        self.data_dir = Path(data_dir)
        if not self.data_dir.is_dir():
            raise InvalidInput(f"node data directory {str(self.data_dir)!r} does not exist",
                               hint="create it and save datasets with `consortium nodes add-data`")
        self.stop = threading.Event()
        self.parent_pid = parent_pid  # stop when this process (e.g. `consortium up`) is gone
        self.node: dict[str, Any] = {}
        self.errors = 0
        self.runs: dict[str, subprocess.Popen[bytes]] = {}  # job id -> its flower-supernode
        self.run_links: dict[str, str] = {}  # job id -> the SuperLink its SuperNode connects to
        self.execs: dict[str, Any] = {}  # job id -> its SuperNode's warm SuperExec
        # one warm process (``warm_exec.Zygote``), started with the agent and kept: each run's SuperExec
        # is a fork of it (False: each run starts a SuperExec that warms up by itself, a few seconds
        # of CPU before the run's first message, and nothing is held between runs)
        self.warm = warm
        self.zygote: Any = None
        self.refused: set[str] = set()  # job ids whose run this site refused against its policy

    def register(self) -> dict[str, Any]:
        from consortium.federation.engine.pki import node_key

        _, public_key = node_key(self.data_dir / KEY_FILE)
        agent = {"host": platform.node(), "python": platform.python_version(), "pid": os.getpid(),
                 "data_dir": str(self.data_dir.resolve()), "public_key": public_key,
                 **({"publish": True} if self.publish else {})}
        self.sweep_withdrawn()
        self.node = self.client.nodes.register(self.name, approve=self.approve, datasets=describe(self.data_dir),
                                               agent=agent)
        if self.delete_withdrawn(self.node.get("withdrawn") or []) or self.pending_deletions():
            self.beat()  # advertise without them and report the deletions
        return self.node

    def beat(self) -> dict[str, Any]:
        deleted = self.pending_deletions()
        self.node = self.client.nodes.heartbeat(self.node["id"], describe(self.data_dir), deleted)
        if deleted:  # the hub recorded them (audited): forget them
            (self.data_dir / DELETED_FILE).unlink(missing_ok=True)
        if self.delete_withdrawn(self.node.get("withdrawn") or []):
            return self.beat()  # advertise without them and report at once
        self.report_refusals()
        self.sync_runs([a for a in self.node.get("assignments") or [] if a["job_id"] not in self.refused])
        return self.node

    def pending_deletions(self) -> list[dict[str, str]]:
        """Withdrawn copies deleted but not yet reported to the hub (they survive a restart)."""
        import json

        f = self.data_dir / DELETED_FILE
        return list(json.loads(f.read_text())) if f.exists() else []

    def delete_withdrawn(self, withdrawn: list[dict[str, Any]]) -> list[str]:
        """Stop offering and delete the local copy of each withdrawn dataset version the hub names,
        when the copy is that version (its schema and statistics give the withdrawn checksum; a
        newer copy of the same name stays). Crash-safe: the deletion is first noted for the hub in
        ``.node/withdrawn-deleted.json``, then the dataset's directory is renamed out of the
        datasets (``.withdrawn-<name>-<id>``, never listed or advertised again) and removed; a
        crash between leaves the renamed directory, which ``sweep_withdrawn`` removes at the next
        start. Only the copy inside the node's data directory is touched (``add-data`` copied the
        user's file there; the original stays). Returns the names deleted."""
        import json
        import shutil

        from consortium.data.node_datasets import digest
        from consortium.fileutil import write_private

        done = []
        for w in withdrawn:
            name = str(w.get("dataset", ""))
            if name not in list_datasets(self.data_dir) or digest(describe_one(self.data_dir, name),
                                                                   self.name) != w.get("checksum"):
                continue
            src = self.data_dir / name
            if src.is_symlink() or src.resolve().parent != self.data_dir.resolve():
                raise InvalidInput(f"node dataset {name!r} is not a directory inside {self.data_dir}: not deleted",
                                   hint="delete it by hand; it was withdrawn by its owner")
            pending = [*self.pending_deletions(), {"withdrawal": str(w["withdrawal"]), "dataset": name}]
            write_private(self.data_dir / DELETED_FILE, json.dumps(pending).encode())
            gone = self.data_dir / f".withdrawn-{name}-{w['withdrawal']}"
            src.rename(gone)  # atomic: from here on the dataset is not offered
            shutil.rmtree(gone)
            done.append(name)
        return done

    def sweep_withdrawn(self) -> None:
        """Finish deletions a crash interrupted (renamed, not yet removed)."""
        import shutil

        for d in self.data_dir.glob(".withdrawn-*"):
            if d.is_dir() and not d.is_symlink():
                shutil.rmtree(d)

    def policy_file(self, a: dict[str, Any]) -> Path | None:
        """The data owner's rules for this run's dataset, written where its ClientApp checks them
        (``federation.app.site_policy``): the stricter of the site's own copy
        (``local_policy``, which the hub never writes) and what the hub sends, read with this
        node's own credential. None when neither has rules (or the hub's catalog does not list
        the dataset and the site keeps none)."""
        import json
        import re

        from consortium.federation.node import local_policy
        from consortium.fileutil import write_private
        from consortium.governance.policy_rules import Rules

        name = re.sub(rf"-v\d+-{re.escape(a['job_id'])}$", "", a["dataset"])  # a copy the hub staged
        local = local_policy.load(self.data_dir, a["dataset"]) if a["dataset"] == name else None
        try:
            hub: Rules | None = Rules.model_validate(self.client.policies.get(f"{self.node['org']}/{name}")["rules"])
        except NotFound:
            hub = None
        rules = local_policy.stricter(local, hub)
        if rules is None:
            return None
        path = self.data_dir / ".node" / f"policy-{a['job_id']}.json"
        write_private(path, json.dumps({"dataset": name, **rules.model_dump(),
                                        "site_rules": sorted(local.set_rules()) if local else []}).encode())
        return path

    def report_refusals(self) -> None:
        """Tell the hub (audited) of each run whose ClientApp refused it, and stop its SuperNode."""
        import json

        from consortium.federation.app.site_policy import refusal_path

        for job_id in list(self.runs):
            policy = self.data_dir / ".node" / f"policy-{job_id}.json"
            refused = refusal_path(policy)
            if job_id in self.refused or not refused.exists():
                continue
            what = json.loads(refused.read_text())
            dataset = json.loads(policy.read_text()).get("dataset", "")
            try:
                self.client.policies.report_refusal(f"{self.node['org']}/{dataset}", job_id, what["rules"],
                                                    what.get("message", ""))
            except NotFound:  # a dataset the hub's catalog does not list (refused under the site's own rules)
                pass  # the run still stops; the SuperNode's log says why
            self.refused.add(job_id)
            self._stop_run(job_id)

    def sync_runs(self, assigned: list[dict[str, Any]]) -> None:
        """Start a SuperNode for each newly assigned run; stop those no longer assigned."""
        want = {a["job_id"]: a for a in assigned}
        for job_id in [j for j in self.runs if j not in want]:
            self._stop_run(job_id)
        for job_id, a in want.items():
            proc = self.runs.get(job_id)
            if proc is not None and self.run_links.get(job_id) != a["superlink"]:
                self._stop_run(job_id)  # the job runs again, on a new SuperLink
                proc = None
            if proc is None or proc.poll() is not None:
                self.runs[job_id] = self._start_supernode(a)
                self.run_links[job_id] = a["superlink"]

    def _start_supernode(self, a: dict[str, Any]) -> subprocess.Popen[bytes]:
        from consortium.federation.app import protocol as P
        from consortium.federation.engine.network import free_port
        from consortium.federation.engine.processes import MARK, parse_job_tag
        from consortium.procutil import die_with_parent

        for v in (str(self.data_dir), a["dataset"], self.node["org"]):
            if "'" in v:
                raise InvalidInput(f"quote characters are not allowed in node settings: {v!r}")
        cfg = f"{P.DATA_DIR}='{self.data_dir}' {P.DATASET}='{a['dataset']}' {P.ORG}='{self.node['org']}'"
        policy = self.policy_file(a)  # the owner's rules, checked again by the ClientApp (issue 19)
        if policy is not None:
            cfg += f" {P.POLICY}='{policy}'"
        tag = {MARK: str(a["tag"])} if parse_job_tag(str(a.get("tag", ""))) else {}  # lets the hub sweep it
        env = {**self._env(), **tag}
        # a SuperNode must not outlive a killed agent (it would hold the run's seat until the job ends)
        guard = die_with_parent if threading.current_thread() is threading.main_thread() else None
        log = self.data_dir / ".logs" / f"supernode-{a['job_id']}.log"
        log.parent.mkdir(exist_ok=True)
        port = free_port()
        with log.open("ab") as f:  # Flower's SuperNode with a 0.25 s poll, ClientApps forked (warm_exec)
            proc = subprocess.Popen(  # noqa: S603 - this interpreter and module, an argument list, no shell
                [sys.executable, "-m", "consortium.federation.engine.supernode", "--isolation", "process",
                 *self._security(a), "--superlink", a["superlink"],
                 "--node-config", cfg, "--host", "127.0.0.1", "--port", str(port)],
                stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True, preexec_fn=guard)
        from consortium.federation.engine import warm_exec

        self.execs[a["job_id"]] = self._warm().spawn(proc, f"127.0.0.1:{port}", log) if self.warm \
            else warm_exec.spawn(proc, port, env, log)
        return proc

    @staticmethod
    def _env() -> dict[str, str]:
        """The environment of the site's Flower processes."""
        from consortium.federation.engine.processes import BIN, python_path

        return {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "PYTHONPATH": python_path(),
                "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": "0.2",  # Flower's default asks for work every 1 s
                "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}

    def _warm(self) -> Any:
        """The agent's warm process, started if it is not running (it ends when the agent closes it,
        or when its stdin, a pipe from this process, closes: the agent died)."""
        from consortium.federation.engine import warm_exec

        if self.zygote is None or self.zygote.proc.poll() is not None:
            log = self.data_dir / ".logs" / "warm-exec.log"
            log.parent.mkdir(exist_ok=True)
            self.zygote = warm_exec.Zygote(self._env(), log, self.data_dir)
        return self.zygote

    def _security(self, a: dict[str, Any]) -> list[str]:
        """TLS with the hub's CA and this node's key; plain HTTP only when the hub says so."""
        from consortium.federation.engine.pki import node_key
        from consortium.fileutil import write_private

        if a.get("insecure"):
            return ["--insecure"]
        if not a.get("root_certificates"):
            raise InvalidInput(f"job {a['job_id']}: the hub sent no CA certificate for its SuperLink")
        ca = self.data_dir / ".node" / f"superlink-ca-{a['job_id']}.pem"
        write_private(ca, str(a["root_certificates"]).encode(), 0o644)
        key, _ = node_key(self.data_dir / KEY_FILE)
        return ["--root-certificates", str(ca), "--auth-supernode-private-key", str(key)]

    def _stop_run(self, job_id: str) -> None:
        self.run_links.pop(job_id, None)
        (self.data_dir / ".node" / f"superlink-ca-{job_id}.pem").unlink(missing_ok=True)
        if job_id not in self.refused:  # a refusal's files stay until it is reported
            (self.data_dir / ".node" / f"policy-{job_id}.json").unlink(missing_ok=True)
        for proc in (self.runs.pop(job_id, None), self.execs.pop(job_id, None)):
            if proc is not None:
                self._end(proc)

    @staticmethod
    def _end(proc: subprocess.Popen[bytes]) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(10)
                break
            except subprocess.TimeoutExpired:
                continue

    def close(self) -> None:
        """Stop every SuperNode this agent started, and its warm process."""
        self.stop.set()
        for job_id in list(self.runs):
            self._stop_run(job_id)
        if self.zygote is not None:
            self.zygote.close()
            self.zygote = None

    def run(self, on_beat: Any = None) -> None:
        """Register (retried while the hub is unreachable), then heartbeat every ``interval`` s;
        a failed beat is retried next time."""
        try:
            if self.warm:  # warms up while the agent registers and waits for work
                self._warm()
            while True:
                try:
                    self.register()
                    break
                except Unavailable as e:
                    self.errors += 1
                    if on_beat is not None:
                        on_beat({"error": str(e), "failures": self.errors})
                    if self.stop.wait(min(self.interval, 2.0)) or self._orphaned():
                        return
            self.errors = 0
            if on_beat is not None:
                on_beat(self.node)
            self._loop(on_beat)
        finally:
            self.close()

    def _orphaned(self) -> bool:
        return self.parent_pid is not None and os.getppid() != self.parent_pid

    def _loop(self, on_beat: Any) -> None:
        while not self.stop.wait(self.interval) and not self._orphaned():
            try:
                self.beat()
                self.errors = 0
            except ConsortiumError as e:
                self.errors += 1
                if on_beat is not None:
                    on_beat({"error": str(e), "failures": self.errors})
                continue
            if on_beat is not None:
                on_beat(self.node)
