"""A SuperNode's SuperExec that forks each ClientApp from a warm process instead of starting one.

Flower 1.42 runs every message a SuperNode receives in a fresh ``flwr-clientapp`` process: its
SuperExec polls the SuperNode's Runtime API, gets a one-use token and spawns the process, which
pulls the message, answers it and exits (``flwr.supernode.runtime.run_clientapp``; Flower's
``--isolation process`` only moves that spawning to a SuperExec started separately, and its warm
executors are Kubernetes pods). Starting the process imports flwr, torch and this package: 2-3 s
a message on an idle 2-core machine, 15 s and more when the machine is loaded, and it is paid by
every node in every round.

This module is that SuperExec with one change. It imports everything a ClientApp needs once, then
runs Flower's own loop (``run_superexec``) with an executor that ``fork``s for each token; the
child calls Flower's ``run_clientapp`` with it, so the message, the reply, the task heartbeat and
the exit codes are Flower's. A fork of the warm process costs milliseconds. The SuperNode runs
with ``--isolation process`` and this process beside it (``spawn``); it ends when the node does,
and killing its process group ends the ClientApps it forked.

Flower's own executor is used for any other task type. ``FLWR_SUPEREXEC_TASK_POLL_INTERVAL``
(the deployment sets 0.2 s) is how often it asks the SuperNode for work.

Several SuperNodes on one machine (the hub's own nodes, the tests, the scale benchmark) share one
warm process, a ``Zygote``: it warms up once and forks each node's SuperExec, in a session and
log of its own, instead of each SuperExec importing and warming up by itself (about 5 s of CPU
each: 3 nodes on 2 cores spent 15 s of CPU before the first round).

The SuperLink runs each run's ServerApp the same way: Flower's SuperLink starts a SuperExec that
spawns ``flwr-serverapp`` per run, which imports flwr, torch and this package (about 3 s on an
idle machine) after the run was started, before its first round. The hub's SuperLink runs with
``--isolation process`` instead, and a zygote started with ``server`` (warmed up with the ServerApp
too, while the SuperLink starts) forks its SuperExec against the SuperLink's Runtime API (TLS,
the deployment's CA); the ServerApp of each run is a fork calling Flower's ``run_serverapp``.

Run as ``python -m consortium.federation.engine.warm_exec --runtime-api-address HOST:PORT
--parent-pid PID`` (one node), or ``--zygote [--server]`` (requests on stdin, one JSON line per
SuperExec: ``runtime_api_address``, ``parent_pid``, ``log``, ``root_certificates``; each answered
with the forked SuperExec's pid).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def spawn(supernode: subprocess.Popen[bytes], runtime_port: int, env: dict[str, str], log: Path,
          cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start the warm SuperExec of the SuperNode ``supernode`` (started with ``--isolation process``
    and ``--port runtime_port``) in a session of its own (its forks share its process group); it
    ends with the node (Flower's parent monitor)."""
    with log.open("ab") as f:
        return subprocess.Popen(  # noqa: S603 - this interpreter and module, an argument list, no shell
            [sys.executable, "-m", "consortium.federation.engine.warm_exec", "--runtime-api-address",
             f"127.0.0.1:{runtime_port}", "--parent-pid", str(supernode.pid)],
            stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=cwd,
            start_new_session=True)


def _warm_up(server: bool = False, client: bool = True) -> None:
    """Import what every ClientApp run needs (and with ``server``, a ServerApp run), so that
    forked children start with it. ``client=False`` (a SuperLink whose nodes all run elsewhere)
    leaves out the ClientApp's data path and first optimizer step: 1.7 s of CPU of the 4.3 s."""
    import torch

    from consortium.federation.app import pull_backoff

    if client:  # the ClientApp, and what its handlers import when called (pandas and pyarrow: 1.3 s a fork)
        for name in ("flwr.supernode.runtime.run_clientapp", *(f"consortium.federation.app.{m}" for m in
                                                               ("client_app", "datasets", "features"))):
            importlib.import_module(name)
    if server:  # the ServerApp of the hub's runs, and what it imports when a run starts
        for name in ("flwr.superlink.runtime.run_serverapp", "consortium.federation.app.server_app"):
            importlib.import_module(name)
        only_our_serverapp()
    pull_backoff.shorten()
    only_our_clientapp()
    torch.set_num_threads(int(os.environ.get("CONSORTIUM_TRAIN_THREADS", "1") or 1))
    if client:
        _first_step()


CLIENTAPP = "consortium.federation.app.client_app:app"
CODE_SUFFIXES = {".py", ".pyc", ".pth", ".so", ".pyd", ".pyx", ".ipynb"}


def only_our_clientapp() -> None:
    """A site runs only this package's ClientApp: Flower's ClientApp loader, in this process and
    its forks, is ``clientapp_loader``."""
    from flwr.supernode.runtime import run_clientapp as flower

    flower.get_load_client_app_fn = clientapp_loader  # type: ignore[assignment]  # looked up when a ClientApp runs


def clientapp_loader(**_: Any) -> Callable[[str, str, str], Any]:
    """Flower's ``get_load_client_app_fn``, refusing other apps. Flower loads the ClientApp a run's
    app (FAB) names, from the code the FAB carries; a FAB that names another component or carries
    any code is refused before anything of it is imported (Flower answers the message with the
    error), whoever started the run. The hub's FABs carry a ``pyproject.toml`` alone."""
    from flwr.clientapp.client_app import LoadClientAppError
    from flwr.common.config import get_project_dir

    def load(fab_id: str, fab_version: str, fab_hash: str) -> Any:
        project = Path(get_project_dir(fab_id, fab_version, fab_hash))
        refused = _not_ours(project, "clientapp", CLIENTAPP)
        if refused:
            print(f"consortium: refused the app {fab_id} {fab_version}: {refused}", file=sys.stderr, flush=True)
            raise LoadClientAppError(f"this site runs only Consortium's ClientApp ({CLIENTAPP}, from the installed "
                                     f"package); {refused}")
        from consortium.federation.app.client_app import app

        return app

    return load


def _not_ours(project: Path, component: str, ours: str) -> str | None:
    """Why the app (FAB) unpacked in ``project`` is not this package's (its ``component`` names
    another object, or it carries code); None when it is."""
    from flwr.common.config import get_project_config

    ref = get_project_config(project).get("tool", {}).get("flwr", {}).get("app", {}) \
        .get("components", {}).get(component)
    code = sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.suffix.lower() in CODE_SUFFIXES)
    if ref == ours and not code:
        return None
    carries = f" and carries code ({', '.join(code[:5])})" if code else ""
    return f"the run's app names {ref!r} as its {component}{carries}"


SERVERAPP = "consortium.federation.app.server_app:app"


def only_our_serverapp() -> None:
    """The hub's SuperLink runs only this package's ServerApp: Flower's ServerApp runner, in this
    process and its forks, refuses a run whose app names another component or carries code,
    before anything of it is imported (the run fails with that reason). Only the hub can start
    runs there (``superlink``: the Control API answers this machine only); this holds if that
    ever fails."""
    # the module (its package exports a function of the same name)
    flower = importlib.import_module("flwr.superlink.runtime.run_serverapp")
    run: Any = flower.__dict__["run_"]

    def checked(*, grid: Any, server_app_dir: str, server_app_attr: str | None = None, **kw: Any) -> Any:
        refused = _not_ours(Path(server_app_dir), "serverapp", SERVERAPP)
        if refused or server_app_attr != SERVERAPP:
            raise RuntimeError(f"this hub runs only Consortium's ServerApp ({SERVERAPP}, from the installed "
                               f"package); {refused or f'the run names {server_app_attr!r}'}")
        return run(grid=grid, server_app_dir=server_app_dir, server_app_attr=server_app_attr, **kw)

    flower.__dict__["run_"] = checked  # looked up when a ServerApp runs


def _first_step() -> None:
    """One optimizer step on a two-row model, through the trainer every ClientApp uses: torch's
    first ``optimizer.step()`` imports ``torch._dynamo`` and initializes autograd, 1.4 s on an idle
    2-core machine, which every forked ClientApp paid again in every round (a node's "train_seconds"
    was 2.5 s for one epoch over 143 rows that takes 5 ms once warm)."""
    import numpy as np
    from torch import nn

    from consortium.recipe import TrainSpec
    from consortium.training.trainer import evaluate, train_epochs

    x, y = np.zeros((2, 2), np.float32), np.array([0, 1])
    model = nn.Linear(2, 2)
    train_epochs(model, x, y, TrainSpec(batch_size=2), task="classification", epochs=1, seed=0)
    evaluate(model, x, y, loss="cross_entropy")


def _client_app(spec: Any) -> None:
    """What ``flwr-clientapp`` does with the task's token (``supernode.runtime.run_clientapp``)."""
    from flwr.supercore.tls import validate_and_resolve_root_certificates
    from flwr.supernode.runtime.run_clientapp import run_clientapp

    run_clientapp(runtime_api_address=spec.runtime_api_address, token=spec.token, insecure=spec.insecure,
                  certificates=validate_and_resolve_root_certificates(spec.root_certificates_path, spec.insecure),
                  parent_pid=spec.parent_pid, runtime_dependency_install=spec.runtime_dependency_install)


def _server_app(spec: Any) -> None:
    """What ``flwr-serverapp`` does with the task's token (``superlink.cli.flwr_serverapp``): its
    output mirrored to the queue Flower uploads as the run's log, then the run."""
    from queue import Queue

    from flwr.supercore.logger import mirror_output_to_queue, restore_output
    from flwr.supercore.tls import validate_and_resolve_root_certificates
    from flwr.superlink.runtime.run_serverapp import run_serverapp

    log_queue: Queue[str | None] = Queue()
    mirror_output_to_queue(log_queue)
    run_serverapp(runtime_api_address=spec.runtime_api_address, log_queue=log_queue, token=spec.token,
                  insecure=spec.insecure,
                  certificates=validate_and_resolve_root_certificates(spec.root_certificates_path, spec.insecure),
                  parent_pid=spec.parent_pid, runtime_dependency_install=spec.runtime_dependency_install)
    restore_output()


class ForkExecutor:
    """Flower's subprocess executor, except that a ClientApp or a ServerApp is a fork of this process."""

    def __init__(self) -> None:
        from flwr.supercore.superexec.executor.subprocess_executor import SubprocessExecutor

        self.fallback = SubprocessExecutor()
        self.children: set[int] = set()

    def get_eligible_capacity(self, supported_task_types: set[Any], **kw: Any) -> tuple[set[Any], set[str]]:
        return self.fallback.get_eligible_capacity(supported_task_types, **kw)

    def wait_for_capacity(self, *a: Any, **kw: Any) -> None:
        self.fallback.wait_for_capacity(*a, **kw)

    def launch(self, spec: Any) -> Any:
        from flwr.supercore.constant import TaskType
        from flwr.supercore.superexec.executor.types import LaunchResult

        if spec.task_type not in (TaskType.CLIENT_APP, TaskType.SERVER_APP):
            return self.fallback.launch(spec)
        pid = os.fork()
        if pid == 0:  # the child: one app run, then exit (Flower's run_* functions end in sys.exit)
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                (_client_app if spec.task_type == TaskType.CLIENT_APP else _server_app)(spec)
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            finally:
                os._exit(code)
        self.children.add(pid)
        return LaunchResult.accepted()

    def reconcile(self) -> None:
        """Reap the children that finished."""
        for pid in list(self.children):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.children.discard(pid)

    def close(self) -> None:
        self.fallback.close()


class Forked:
    """A SuperExec the zygote forked: what ``processes.kill_group`` needs of a ``Popen`` (``pid``,
    ``poll``, ``wait``) for a process that is not this one's child. Its pid is read from the
    zygote when first asked (the zygote answers once it has warmed up)."""

    def __init__(self, zygote: Zygote) -> None:
        self.zygote: Zygote = zygote
        self._pid: int | None = None

    @property
    def pid(self) -> int:
        if self._pid is None:
            self._pid = self.zygote.answer(self)
        return self._pid

    def poll(self) -> int | None:
        try:
            with open(f"/proc/{self.pid}/stat") as f:  # a zombie is gone too (the zygote reaps it)
                return 0 if f.read().rsplit(")", 1)[1].split()[0] == "Z" else None
        except (FileNotFoundError, ProcessLookupError):
            return 0

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"superexec {self.pid}", timeout or 0)
            time.sleep(0.05)
        return 0


class Zygote:
    """One warm process for the SuperNodes a deployment runs on this machine (see the module)."""

    def __init__(self, env: dict[str, str], log: Path, cwd: Path | None = None, *, server: bool = False,
                 client: bool = True) -> None:
        with log.open("ab") as f:
            self.proc = subprocess.Popen(  # noqa: S603 - this interpreter and module, an argument list, no shell
                [sys.executable, "-m", "consortium.federation.engine.warm_exec", "--zygote",
                 *(["--server"] if server else []), *([] if client else ["--no-client"])],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=f, env=env, cwd=cwd,
                start_new_session=True)
        self.log = log
        self.pending: list[Forked] = []

    def spawn(self, parent: subprocess.Popen[bytes], runtime_api_address: str, log: Path,
              root_certificates: Path | None = None) -> Forked:
        """Fork the warm SuperExec of ``parent`` (a SuperNode started with ``--isolation process``,
        its Runtime API on loopback; or a SuperLink so started, its Runtime API under TLS verified
        with ``root_certificates``), without waiting; it ends when ``parent`` does."""
        stdin = self.proc.stdin
        if stdin is None:
            raise RuntimeError("the zygote was started without a stdin pipe")
        req = {"runtime_api_address": runtime_api_address, "parent_pid": parent.pid, "log": str(log),
               "root_certificates": str(root_certificates) if root_certificates is not None else None}
        stdin.write((json.dumps(req) + "\n").encode())
        stdin.flush()
        forked = Forked(self)
        self.pending.append(forked)
        return forked

    def answer(self, forked: Forked) -> int:
        """The pid of ``forked``: the zygote answers the requests in their order."""
        from consortium.errors import Unavailable

        while forked._pid is None:
            line = self.proc.stdout.readline() if self.proc.stdout is not None else b""
            if not line:
                raise Unavailable("the warm SuperExec process ended", hint=f"see {self.log}")
            self.pending.pop(0)._pid = int(line)
        return forked._pid

    def close(self) -> None:
        """End the zygote (the SuperExecs it forked end with their nodes)."""
        from consortium.federation.engine.processes import kill_group

        kill_group(self.proc, signal.SIGTERM, 5.0)


def _run(runtime_api_address: str, parent_pid: int | None, root_certificates: str | None = None) -> None:
    """Flower's SuperExec loop against a Runtime API: a SuperNode's (plain HTTP on loopback) or,
    with ``root_certificates``, the SuperLink's (its TLS, verified with that CA file)."""
    from flwr.supercore.superexec import run_superexec as flower

    # Flower's loop, with the executor above (it picks executors through this module-level name)
    flower.get_executor = lambda *a, **kw: ForkExecutor()
    flower.run_superexec(runtime_api_address=runtime_api_address, insecure=root_certificates is None,
                         root_certificates_path=root_certificates, parent_pid=parent_pid)


def _zygote(server: bool, client: bool) -> None:
    """Warm up, then fork a SuperExec per request line; the forks are reaped as they end."""
    _warm_up(server, client)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the node's SuperExec: its own session (its ClientApps share its group) and log
            code = 1
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.setsid()
                out = os.open(req["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0), os.dup2(out, 1), os.dup2(out, 2)
                _run(req["runtime_api_address"], req["parent_pid"], req.get("root_certificates"))
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            finally:
                os._exit(code)
        print(pid, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime-api-address")
    parser.add_argument("--parent-pid", type=int)
    parser.add_argument("--zygote", action="store_true", help="fork a SuperExec per request line on stdin")
    parser.add_argument("--server", action="store_true", help="with --zygote: warm up the ServerApp too")
    parser.add_argument("--no-client", action="store_true",
                        help="with --zygote --server: only the ServerApp (no ClientApp runs here)")
    args = parser.parse_args(argv)
    if args.zygote:
        _zygote(args.server, not args.no_client)
        return
    if not args.runtime_api_address:
        parser.error("--runtime-api-address is required (or --zygote)")
    _warm_up()
    _run(args.runtime_api_address, args.parent_pid)


if __name__ == "__main__":
    main()
