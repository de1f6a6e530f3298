"""The Ray executor (``CONSORTIUM_EXECUTOR=ray``): a dispatcher claims jobs from the database queue
and runs each as a Ray task on the cluster at ``CONSORTIUM_RAY_ADDRESS``.

Only this module imports Ray, and only the dispatcher process (``python -m
consortium.jobs.ray_executor``, spawned by the hub in place of its local workers, or run by
``consortium worker`` with the executor set) and the cluster's worker processes load it; the hub's
own process never does, with either executor (tests/jobs/test_executor_choice.py).

The database queue stays the source of truth. The dispatcher claims a job (``queue.claim``, the
same lease as a local worker), submits ``run_job`` with the CPUs the job declares, and while the
task is pending or running it heartbeats the job's lease and watches for cancellation. The task
runs the same entry as a local worker, ``jobs.worker.execute``, against the hub's database and
keyring: it re-checks the submitter's membership and every grant when it loads data (a grant
revoked after submission refuses the job there), writes the job's progress and log events to the
database itself, heartbeats, notices cancellation, and finishes the job. So the cluster is inside
the hub's trust boundary: its nodes receive the database URL and the master key (in the task's
arguments) and hold decrypted rows in the job's memory.

When a task dies (its worker process or node is killed, Ray loses it) the dispatcher re-queues the
job while it has attempts left and otherwise fails it with the reason (``queue.release``). A
cancellation the running task does not act on within ``CANCEL_GRACE_S`` (or one of a task still
waiting for CPUs) cancels the Ray task (``ray.cancel(force=True)``). Each task declares
``num_cpus`` and sets torch's threads to match (Ray sets ``OMP_NUM_THREADS=1`` for a task without
``num_cpus``); a data-parallel or parallel-tuning job's coordinator declares none, its Ray Train
workers and Tune trials reserve the CPUs.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayError, RayTaskError, TaskCancelledError

from consortium.config import Settings
from consortium.errors import InvalidInput, Unavailable
from consortium.hub import Hub
from consortium.jobs import executors, queue
from consortium.jobs.executors import START_HINT, job_env
from consortium.recipe import validate_mapping
from consortium.store.db import transaction
from consortium.store.tables.jobs import Job

log = logging.getLogger("consortium.ray")
CANCEL_GRACE_S = float(os.environ.get("CONSORTIUM_RAY_CANCEL_GRACE_S", "10"))
REPORT_S = 5.0  # how often the cluster's size goes to the database and stale leases are reaped


def _probe(address: str, timeout_s: float) -> None:
    """Fail fast when a host:port (GCS) or ray://host:port (client) address does not answer: Ray
    itself retries a silent GCS for a minute or more."""
    if address in ("", "auto", "local"):
        return
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise InvalidInput(f"CONSORTIUM_RAY_ADDRESS={address!r} is not auto, host:port or ray://host:port",
                           hint=START_HINT)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise Unavailable(f"no Ray cluster answers at {address} ({e.strerror or e})", hint=START_HINT) from None


def connect(address: str, timeout_s: float = 5.0) -> None:
    """Join the cluster as a driver (once per process); ``Unavailable`` with how to start one if
    there is none."""
    if ray.is_initialized():
        return
    _probe(address, timeout_s)
    try:
        ray.init(address=address or "auto", namespace="consortium", log_to_driver=False,
                 logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise Unavailable(f"no Ray cluster at CONSORTIUM_RAY_ADDRESS={address}: {str(e).splitlines()[0][:300]}",
                          hint=START_HINT) from None


def cluster_size() -> tuple[int, int, dict[str, Any]]:
    """CPUs (all alive nodes), alive nodes, and the cluster's resources as Ray reports them."""
    resources = {k: float(v) for k, v in ray.cluster_resources().items() if not k.startswith("node:")}
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    return int(resources.get("CPU", 0)), nodes, resources


_hubs: dict[tuple[tuple[str, str], ...], Hub] = {}  # per Ray worker process: the hub core, opened once


def run_job(env: dict[str, str], job_id: str, runner: str, cpus: int, heartbeat_s: float) -> dict[str, Any]:
    """The Ray task: run one claimed job with ``jobs.worker.execute``, as a local worker would.

    ``runner`` is the dispatcher that claimed it; a job that is no longer running under that name
    (cancelled, or released while the task waited for CPUs) is left alone."""
    from consortium.jobs.worker import execute

    for k in [k for k in os.environ if k.startswith("CONSORTIUM_") and k not in env]:
        del os.environ[k]
    os.environ.update(env)
    threads = max(1, cpus)
    os.environ["OMP_NUM_THREADS"] = str(threads)  # jobs.train.threads() reads it for torch.set_num_threads
    import torch

    torch.set_num_threads(threads)
    key = tuple(sorted(env.items()))
    hub = _hubs.get(key)
    if hub is None:
        hub = _hubs[key] = Hub.start(Settings())
    with transaction(hub.session_factory) as s:
        job = s.get(Job, job_id)
        if job is None or job.state != "running" or job.worker_id != runner or job.cancel_requested:
            return {"state": "skipped"}
        ctx = ray.get_runtime_context()
        queue.add_event(s, job_id, "log", {"message": f"running on Ray node {ctx.get_node_id()[:12]} "
                                                      f"(pid {os.getpid()}, {threads} CPU)",
                                           "node_id": ctx.get_node_id(), "pid": os.getpid(), "cpus": cpus})
    return {"state": execute(hub, job_id, runner, heartbeat_s), "pid": os.getpid()}


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:300]}" if text else type(e).__name__


@dataclass
class Flight:
    """A job the dispatcher handed to the cluster."""

    job_id: str
    ref: Any  # ray.ObjectRef
    cancel_seen: float | None = None  # when the dispatcher first saw cancellation requested
    force_cancelled: bool = False


class Dispatcher:
    """Claims jobs while the cluster has room, hands each to a Ray task, keeps their leases and
    settles what the tasks could not (died, cancelled before they ran)."""

    def __init__(self, settings: Settings, hub: Hub, heartbeat_s: float) -> None:
        self.settings, self.hub, self.heartbeat_s = settings, hub, heartbeat_s
        self.name = f"ray:{queue.worker_name()}"
        self.flights: dict[str, Flight] = {}
        self.cpus, self.nodes = 0, 0
        self.env = job_env(settings)
        self._remote = ray.remote(max_retries=0)(run_job)  # retries are the queue's (attempts)

    def report(self) -> None:
        self.cpus, self.nodes, resources = cluster_size()
        with transaction(self.hub.session_factory) as s:
            executors.record(s, self.name, "ray", self.cpus, self.nodes, resources)
        with self.hub.session_factory() as s:
            queue.reap(s, timedelta(seconds=self.settings.job_lease_s))

    def capacity(self) -> int:
        return max(1, self.cpus // self.settings.ray_job_cpus)

    def claim(self) -> bool:
        """Take one queued job and hand it to the cluster; False when the queue is empty."""
        with self.hub.session_factory() as s:
            job = queue.claim(s, self.name)
            if job is None:
                return False
            job_id, recipe = job.id, dict(job.recipe)
        try:
            demand = executors.demand(validate_mapping(recipe))
        except InvalidInput as e:
            self._finish(job_id, "failed", str(e))
            return True
        why = executors.fits(demand, self.cpus)
        if why:
            self._finish(job_id, "failed", why)
            return True
        cpus = demand.task_cpus(self.settings.ray_job_cpus)
        ref = self._remote.options(num_cpus=cpus, name=f"consortium-{job_id}").remote(
            self.env, job_id, self.name, cpus, self.heartbeat_s)
        self.flights[job_id] = Flight(job_id, ref)
        log.info("dispatched %s to the Ray cluster (%d CPU)", job_id, cpus)
        return True

    def _finish(self, job_id: str, state: str, error: str | None = None) -> None:
        """Settle a job this dispatcher still holds as running (a task that finished it wins)."""
        with transaction(self.hub.session_factory) as s:
            job = s.get(Job, job_id)
            if job is not None and job.state == "running" and job.worker_id == self.name:
                queue.finish(s, job_id, state, error=error)

    def _release(self, job_id: str, reason: str) -> None:
        with transaction(self.hub.session_factory) as s:
            job = s.get(Job, job_id)
            if job is not None and job.state == "running" and job.worker_id == self.name:
                log.warning("%s: %s (%s)", job_id, reason, queue.release(s, job, reason))

    def settle(self) -> None:
        """Collect the tasks that ended: a crash re-queues (or fails) the job, a cancelled task's job
        is cancelled; a task that ran the job has already finished it."""
        if not self.flights:
            return
        refs = {f.ref: f for f in self.flights.values()}
        done, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
        for ref in done:
            f = refs[ref]
            del self.flights[f.job_id]
            try:
                out = ray.get(ref, timeout=5)
            except TaskCancelledError:
                self._finish(f.job_id, "cancelled")
            except GetTimeoutError:
                self.flights[f.job_id] = f
            except RayTaskError as e:  # the task's own code raised (e.g. the database unreachable from its node)
                self._release(f.job_id, f"its Ray task failed ({_first_line(e.cause or e)})")
            except RayError as e:  # its worker process or node died, or Ray lost it
                if f.force_cancelled:
                    self._finish(f.job_id, "cancelled")
                else:
                    self._release(f.job_id, f"its Ray task died ({_first_line(e)})")
            else:
                if out.get("state") == "skipped":  # cancelled (or taken back) before the task started
                    self._release(f.job_id, "cancelled before it started on the cluster")

    def beat(self) -> None:
        """Keep every in-flight job's lease (also while its task waits for CPUs); cancel on request."""
        now = time.monotonic()
        for f in list(self.flights.values()):
            with self.hub.session_factory() as s:
                cancel = queue.heartbeat(s, f.job_id, self.name)
            if cancel and f.cancel_seen is None:
                f.cancel_seen = now
            if f.cancel_seen is not None and not f.force_cancelled and now - f.cancel_seen >= CANCEL_GRACE_S:
                log.info("cancelling the Ray task of %s", f.job_id)
                ray.cancel(f.ref, force=True)
                f.force_cancelled = True

    def stop(self) -> None:
        """Cancel the tasks in flight and put their jobs back in the queue (as a stopped worker does)."""
        for f in list(self.flights.values()):
            ray.cancel(f.ref, force=True)
            self._release(f.job_id, f"the Ray dispatcher {self.name} stopped")
        self.flights.clear()
        with transaction(self.hub.session_factory) as s:
            executors.forget(s, self.name)


def run_dispatcher(settings: Settings, *, stop: threading.Event | None = None, poll_s: float = 0.2) -> None:
    """Dispatch queued jobs to the Ray cluster until ``stop`` is set."""
    connect(settings.ray_address)
    hub = Hub.start(settings)
    heartbeat_s = float(os.environ.get("CONSORTIUM_HEARTBEAT_S", "5"))
    d = Dispatcher(settings, hub, heartbeat_s)
    stop = stop or threading.Event()
    last_report = last_beat = 0.0
    log.info("dispatching jobs to the Ray cluster at %s as %s", settings.ray_address, d.name)
    try:
        while not stop.is_set():
            now = time.monotonic()
            if now - last_report >= REPORT_S:
                d.report()
                last_report = now
            d.settle()
            if now - last_beat >= min(heartbeat_s, 1.0):
                d.beat()
                last_beat = now
            while len(d.flights) < d.capacity() and d.claim():
                pass
            stop.wait(poll_s)
    finally:
        d.stop()
        hub.close()
        ray.shutdown()


def check_cluster(settings: Settings) -> str:
    """Connect, and say what the cluster has; ``Unavailable`` with how to start one if none."""
    connect(settings.ray_address)
    cpus, nodes, _ = cluster_size()
    return f"Ray cluster at {settings.ray_address}: {nodes} node(s), {cpus} CPU(s)"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s ray-dispatcher %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = Settings()
    if "--check" in args:
        try:
            print(check_cluster(settings))
        except (Unavailable, InvalidInput) as e:
            sys.exit(f"CONSORTIUM_EXECUTOR=ray: {e.message}; {e.hint}")
        return
    from consortium.store.home import private_umask

    private_umask()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        run_dispatcher(settings, stop=stop)
    except (Unavailable, InvalidInput) as e:
        sys.exit(f"CONSORTIUM_EXECUTOR=ray: {e.message}; {e.hint}")


if __name__ == "__main__":
    main()
