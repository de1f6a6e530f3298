"""What a running job sees: its recipe (a ``Recipe``), what submission resolved, who submitted it,
progress and log sinks, and the cancel flag."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update

from consortium.errors import Unauthenticated
from consortium.governance.credentials import member_principal
from consortium.governance.principal import Principal
from consortium.hub import Hub
from consortium.jobs import queue
from consortium.jsonable import jsonable
from consortium.recipe import Recipe, validate_mapping
from consortium.store.db import transaction
from consortium.store.tables.jobs import Job


class JobCancelled(Exception):
    """Raised inside a job when cancellation was requested."""


@dataclass
class JobContext:
    services: Hub  # the hub's core (a worker runs on a bare Hub.start)
    job_id: str
    kind: str
    org_id: str
    user_id: str
    project_id: str | None
    recipe: Recipe
    resolved: dict[str, Any]  # what the submission checks resolved (``Job.resolved``)
    cancel: threading.Event = field(default_factory=threading.Event)
    _last_progress: float = 0.0

    @classmethod
    def of(cls, services: Hub, job: Job) -> JobContext:
        """The job's context; its stored recipe (validated and normalized at submission) is loaded
        here, once: ``InvalidInput`` if it no longer validates (e.g. queued before a stricter hub)."""
        return cls(services, job.id, job.kind, job.org_id, job.user_id, job.project_id,
                   validate_mapping(job.recipe), dict(job.resolved or {}))

    def principal(self, session: Any) -> Principal:
        """The submitter, as of now: a member who left or was demoted cannot keep training."""
        p = member_principal(session, self.user_id, self.org_id, f"job:{self.job_id}")
        if p is None:
            raise Unauthenticated("the job's submitter is no longer a member of its organization")
        return p

    def should_stop(self) -> bool:
        return self.cancel.is_set()

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise JobCancelled("cancelled on request")

    def progress(self, info: dict[str, Any], *, force: bool = False) -> None:
        """Record a progress event (epoch, loss, metrics, round, ...) and the latest snapshot."""
        now = time.monotonic()
        is_epoch = "epoch" in info or "round" in info or "trial" in info  # a tuning child's end, with its reward
        if not force and not is_epoch and now - self._last_progress < 0.5:
            return
        self._last_progress = now
        clean = jsonable(info)
        with transaction(self.services.session_factory) as s:
            queue.add_event(s, self.job_id, "progress", clean)
            s.execute(update(Job).where(Job.id == self.job_id).values(progress=clean))

    def log(self, message: str, **extra: Any) -> None:
        with transaction(self.services.session_factory) as s:
            queue.add_event(s, self.job_id, "log", {"message": message[:4000], **jsonable(extra)})

