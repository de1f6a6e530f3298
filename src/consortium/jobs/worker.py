"""A job worker: claims queued jobs from the database and runs them, heartbeating while it works.

Run by the hub as child processes (``WorkerPool``), or elsewhere with ``consortium worker`` against
the same database and data directory.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from datetime import timedelta
from typing import Any

from consortium.config import Settings
from consortium.errors import ConsortiumError, InvalidInput
from consortium.hub import Hub
from consortium.jobs import queue
from consortium.jobs.context import JobCancelled, JobContext
from consortium.jobs.kinds import handler
from consortium.store.db import transaction

log = logging.getLogger("consortium.worker")
HEARTBEAT_S = float(os.environ.get("CONSORTIUM_HEARTBEAT_S", "5"))
RETENTION_EVERY_S = float(os.environ.get("CONSORTIUM_RETENTION_EVERY_S", "300"))  # expired data's purge
_current: dict[str, Any] = {}  # the job this process is running, for a graceful stop


def execute(services: Hub, job_id: str, worker: str, heartbeat_s: float | None = None) -> str:
    """Run one claimed job to a terminal state, heartbeating every ``heartbeat_s`` (default
    ``CONSORTIUM_HEARTBEAT_S``); returns the state."""
    every = HEARTBEAT_S if heartbeat_s is None else heartbeat_s
    with transaction(services.session_factory) as s:
        job = queue.get(s, job_id)
        try:
            ctx = JobContext.of(services, job)
        except InvalidInput as e:  # its recipe no longer validates: the job fails, the worker goes on
            queue.finish(s, job_id, "failed", error=str(e))
            return "failed"
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            try:
                with services.session_factory() as s:
                    if queue.heartbeat(s, job_id, worker):
                        ctx.cancel.set()
            except Exception:  # a missed beat is retried; the lease tolerates several
                log.exception("heartbeat failed for %s", job_id)

    t = threading.Thread(target=beat, daemon=True)
    t.start()
    state, result, error = "failed", None, None
    try:
        result = handler(ctx.kind)(ctx)
        state = "succeeded"
    except JobCancelled:
        state = "cancelled"
    except ConsortiumError as e:
        if e.code == "cancelled" or ctx.cancel.is_set():  # training stopped on request
            state = "cancelled"
        else:
            error = str(e)
    except Exception as e:  # noqa: BLE001 - a crash fails this job (recorded with its traceback), not the worker
        error = f"internal error: {type(e).__name__}: {e}"
        ctx.log("job crashed", traceback=traceback.format_exc()[-4000:])
    finally:
        stop.set()
        t.join(2)
    with transaction(services.session_factory) as s:
        queue.finish(s, job_id, state, result=result, error=error)
    return state


def rss_mb() -> float:
    """This process's resident memory in MB."""
    import psutil

    return float(psutil.Process().memory_info().rss) / 1e6


def run_worker(settings: Settings, *, once: bool = False, poll_s: float = 0.5,
               kinds: list[str] | None = None, stop: threading.Event | None = None) -> bool:
    """Claim and run jobs until ``stop`` (or one job with ``once``). Returns True when the worker
    should be replaced by a fresh process: a job left it above ``settings.worker_max_rss_mb``
    (``recycle`` does it)."""
    services = Hub.start(settings)  # a job needs the database, keys, blobs and audit only
    worker = queue.worker_name()
    stop = stop or threading.Event()
    last_reap = last_purge = 0.0
    try:
        while not stop.is_set():
            if time.monotonic() - last_purge > RETENTION_EVERY_S:
                _purge(services)
                last_purge = time.monotonic()
            if time.monotonic() - last_reap > 5:
                with services.session_factory() as s:
                    if queue.reap(s, timedelta(seconds=settings.job_lease_s)) or not last_reap:
                        from consortium.jobs.federated_runs import sweep_orphans

                        sweep_orphans(s)  # Flower processes a killed worker left behind
                last_reap = time.monotonic()
            with services.session_factory() as s:
                job = queue.claim(s, worker, kinds)
            if job is None:
                if once:
                    return False
                stop.wait(poll_s)
                continue
            log.info("running %s (%s)", job.id, job.kind)
            _current.update(services=services, job_id=job.id)
            execute(services, job.id, worker)
            _current.clear()
            if once:
                return False
            limit = settings.worker_max_rss_mb
            if limit and (held := rss_mb()) > limit:
                log.info("holding %.0f MB after %s (limit %d MB, CONSORTIUM_WORKER_MAX_RSS_MB): "
                         "replacing this worker with a fresh process", held, job.id, limit)
                return True
        return False
    finally:
        services.close()


def recycle() -> None:
    """Replace this process with a fresh worker (``exec``: same pid, so a supervisor or the hub's
    pool sees it go on; what jobs imported and the allocator kept is returned to the system)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "consortium.jobs.worker"])  # noqa: S606 - our own module


def _purge(services: Hub) -> None:
    """Purge what retention periods say has expired (``consortium.data.retention``), audited."""
    from consortium.data.retention import purge_expired

    try:
        counts = purge_expired(services.session_factory, services.blobs, services.audit_in)
    except Exception:  # the next run retries; the worker goes on with jobs
        log.exception("retention purge failed")
        return
    if any(counts.values()):
        log.info("retention purge: %s", counts)


class WorkerPool:
    """Worker processes spawned by the hub; a worker that dies is restarted. Start it from a
    thread that lives as long as the workers should (the hub's main thread): they get SIGTERM
    when it ends (``die_with_parent``). With ``CONSORTIUM_EXECUTOR=ray`` the process is the Ray
    dispatcher (``consortium.jobs.ray_executor``; start one) instead of a local worker."""

    def __init__(self, settings: Settings, n: int) -> None:
        self.settings, self.n = settings, n
        self.procs: list[subprocess.Popen[bytes]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, "CONSORTIUM_HOME": str(self.settings.home),
               "CONSORTIUM_DATABASE_URL": self.settings.database_url,
               "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // max(1, self.n)))}
        if self.settings.master_key:
            env["CONSORTIUM_MASTER_KEY"] = self.settings.master_key
        from consortium.procutil import die_with_parent

        # SIGTERM from the kernel when the spawning thread ends, even if the hub is killed: the
        # worker then stops as on any SIGTERM (a job in flight goes back to the queue)
        module = "consortium.jobs.ray_executor" if self.settings.executor == "ray" else "consortium.jobs.worker"
        return subprocess.Popen([sys.executable, "-m", module], env=env,  # noqa: S603 - one of our two modules
                                preexec_fn=die_with_parent)

    def start(self) -> WorkerPool:
        self.procs = [self._spawn() for _ in range(self.n)]
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(2):
            for i, p in enumerate(self.procs):
                if p.poll() is not None and not self._stop.is_set():
                    log.warning("worker %s exited with %s; restarting", p.pid, p.returncode)
                    self.procs[i] = self._spawn()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()


def main(argv: list[str] | None = None) -> None:
    from consortium.store.home import private_umask

    private_umask()  # spawned by a hub, which made the data directory private already
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its plugin set-up lines say nothing to operators
    stop = threading.Event()

    def on_term(*_: Any) -> None:
        """Stop now; a job in flight goes back to the queue (or fails when out of attempts)."""
        stop.set()
        if _current:
            with _current["services"].session_factory() as s:
                from sqlalchemy import update

                from consortium.store.tables.jobs import Job

                s.execute(update(Job).where(Job.id == _current["job_id"], Job.state == "running")
                          .values(heartbeat_at=Job.started_at))
                s.commit()
                queue.reap(s, lease=timedelta(seconds=0))
            os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    if run_worker(Settings(), stop=stop):
        recycle()


if __name__ == "__main__":
    main()
