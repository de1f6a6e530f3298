"""Where jobs run (``CONSORTIUM_EXECUTOR``): what a job asks of its executor, the cluster's size as
its dispatcher last reported it, and the submission check between the two. Imports no Ray.

``local`` (the default) runs each job in one worker process, single-process PyTorch, so data-parallel
training (``train.workers`` > 1), parallel trials (``tune.parallel`` > 1) and Population Based
Training (``tune.method: pbt``) need ``ray``. With ``ray`` the dispatcher
(``consortium.jobs.ray_executor``) records the cluster's CPUs in ``job_executors`` every few
seconds; the check reads the newest record, so the API never calls the cluster (nor imports Ray)
per request, and every hub replica answers the same from the shared database.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consortium.config import Settings
from consortium.errors import InvalidInput
from consortium.governance.principal import Principal
from consortium.recipe import Recipe
from consortium.store.tables.base import utcnow
from consortium.store.tables.jobs import JobExecutor

START_HINT = ("start one with `ray start --head --num-cpus 2 --object-store-memory 500000000` (its object store "
              "is 30% of RAM unless you say) and set CONSORTIUM_RAY_ADDRESS=auto on that machine, or "
              "<head>:6379 elsewhere; other nodes join with `ray start --address=<head>:6379`")


@dataclass(frozen=True)
class Demand:
    """What one job asks of the executor: data-parallel workers, concurrent trials, the tuning method."""

    workers: int = 1
    parallel: int = 1
    method: str | None = None

    @property
    def distributed(self) -> bool:
        """Whether it needs the Ray executor (more than one process, or PBT's population)."""
        return self.workers > 1 or self.parallel > 1 or self.method == "pbt"

    def task_cpus(self, job_cpus: int) -> int:
        """CPUs the job's own Ray task declares: ``job_cpus`` for a single-process job; none for a
        coordinator whose Ray Train workers or Tune trials reserve the CPUs themselves (else a
        2-CPU cluster could never place a 2-worker job beside its coordinator)."""
        return 0 if self.distributed else job_cpus


def demand(recipe: Recipe) -> Demand:
    """The recipe's ``train.workers``, ``tune.parallel`` and ``tune.method`` (1, 1 and none when the
    recipe or this version of the schema has no such field)."""
    train, tune = getattr(recipe, "train", None), getattr(recipe, "tune", None)
    workers = int(getattr(train, "workers", 1) or 1)
    parallel = int(getattr(tune, "parallel", 1) or 1) if tune is not None else 1
    method = getattr(tune, "method", None) if tune is not None else None
    return Demand(workers, parallel, str(method) if method is not None else None)


def record(session: Session, name: str, kind: str, cpus: int, nodes: int, resources: dict[str, Any]) -> None:
    """The dispatcher ``name`` saw a cluster of ``cpus`` CPUs on ``nodes`` nodes (commit is the caller's)."""
    row = session.get(JobExecutor, name)
    if row is None:
        session.add(JobExecutor(name=name, kind=kind, cpus=cpus, nodes=nodes, resources=resources, seen_at=utcnow()))
    else:
        row.kind, row.cpus, row.nodes, row.resources, row.seen_at = kind, cpus, nodes, resources, utcnow()


def forget(session: Session, name: str) -> None:
    """Drop the dispatcher's record (it stops)."""
    row = session.get(JobExecutor, name)
    if row is not None:
        session.delete(row)


def cluster(session: Session, kind: str = "ray") -> JobExecutor | None:
    """The newest report of a ``kind`` cluster, if a dispatcher ever made one."""
    return session.scalars(select(JobExecutor).where(JobExecutor.kind == kind)
                           .order_by(JobExecutor.seen_at.desc()).limit(1)).first()


def fits(d: Demand, cpus: int) -> str | None:
    """Why the job cannot run on a cluster of ``cpus`` CPUs, or None."""
    if d.workers > cpus:
        return (f"invalid recipe at train.workers: {d.workers} data-parallel workers need {d.workers} CPUs, "
                f"the Ray cluster has {cpus}")
    if d.parallel > cpus:
        return (f"invalid recipe at tune.parallel: {d.parallel} concurrent trials need {d.parallel} CPUs, "
                f"the Ray cluster has {cpus}")
    return None


def check_executor(session: Session, p: Principal, recipe: Recipe, kind: str, *,
                   executor: str = "local") -> dict[str, Any]:
    """A submission check (``jobs.submit.checks_for``): the job fits the hub's executor."""
    d = demand(recipe)
    if executor != "ray":
        if d.distributed:
            what = ("train.workers" if d.workers > 1 else "tune.parallel" if d.parallel > 1 else "tune.method")
            raise InvalidInput(f"invalid recipe at {what}: data-parallel training, parallel trials and PBT run on a "
                               "Ray cluster, and this hub runs jobs in local worker processes",
                               hint="start the hub with CONSORTIUM_EXECUTOR=ray and CONSORTIUM_RAY_ADDRESS, or use "
                                    "train.workers: 1, tune.parallel: 1 and a tune.method other than pbt")
        return {}
    c = cluster(session)
    if c is not None:  # none yet: the dispatcher checks again when it claims the job
        why = fits(d, c.cpus)
        if why:
            raise InvalidInput(why, hint=f"ask for at most {c.cpus}, or add nodes to the cluster "
                                         "(ray start --address=<head>:<port> on each)")
    return {}


def job_env(settings: Settings) -> dict[str, str]:
    """What a job's task needs to open the hub's core on a node: every CONSORTIUM_* variable of the
    dispatcher, with its data directory, database URL and master key (when one is set)."""
    env = {k: v for k, v in os.environ.items() if k.startswith("CONSORTIUM_")}
    env.update(CONSORTIUM_HOME=str(settings.home), CONSORTIUM_DATABASE_URL=settings.database_url)
    if settings.master_key:
        env["CONSORTIUM_MASTER_KEY"] = settings.master_key
    return env


def require_cluster(settings: Settings, timeout_s: float = 60) -> str:
    """From the hub's process, which never imports Ray: check in a child process that the cluster
    answers; ``SystemExit`` with the reason and how to start one if not."""
    env = {**os.environ, **job_env(settings)}
    try:
        r = subprocess.run([sys.executable, "-m", "consortium.jobs.ray_executor", "--check"], env=env,
                           capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"CONSORTIUM_EXECUTOR=ray: no answer from a Ray cluster at {settings.ray_address} in "
                         f"{timeout_s:.0f} s; {START_HINT}") from None
    if r.returncode:
        raise SystemExit(r.stderr.strip().splitlines()[-1] if r.stderr.strip() else
                         f"CONSORTIUM_EXECUTOR=ray: the Ray cluster check failed; {START_HINT}")
    return r.stdout.strip()
