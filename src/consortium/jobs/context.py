"""What a running job sees: its recipe, who submitted it, progress and log sinks, and the cancel flag."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update

from consortium.errors import Unauthenticated
from consortium.governance.principal import Principal
from consortium.governance.roles import Role
from consortium.jobs import queue
from consortium.services import Services
from consortium.store.db import transaction
from consortium.store.tables.identity import Membership, Organization, User
from consortium.store.tables.jobs import Job


class JobCancelled(Exception):
    """Raised inside a job when cancellation was requested."""


@dataclass
class JobContext:
    services: Services
    job_id: str
    kind: str
    org_id: str
    user_id: str
    project_id: str | None
    recipe: dict[str, Any]
    cancel: threading.Event = field(default_factory=threading.Event)
    _last_progress: float = 0.0

    @classmethod
    def of(cls, services: Services, job: Job) -> JobContext:
        return cls(services, job.id, job.kind, job.org_id, job.user_id, job.project_id, dict(job.recipe))

    def principal(self, session: Any) -> Principal:
        """The submitter, as of now: a member who left or was demoted cannot keep training."""
        m = session.get(Membership, (self.user_id, self.org_id))
        user, org = session.get(User, self.user_id), session.get(Organization, self.org_id)
        if m is None or user is None or org is None or user.disabled:
            raise Unauthenticated("the job's submitter is no longer a member of its organization")
        return Principal(user.id, user.email, org.id, org.name, Role(m.role), f"job:{self.job_id}",
                         user.is_operator)

    def should_stop(self) -> bool:
        return self.cancel.is_set()

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise JobCancelled("cancelled on request")

    def progress(self, info: dict[str, Any], *, force: bool = False) -> None:
        """Record a progress event (epoch, loss, metrics, round, ...) and the latest snapshot."""
        now = time.monotonic()
        is_epoch = "epoch" in info or "round" in info
        if not force and not is_epoch and now - self._last_progress < 0.5:
            return
        self._last_progress = now
        clean = _jsonable(info)
        with transaction(self.services.session_factory) as s:
            queue.add_event(s, self.job_id, "progress", clean)
            s.execute(update(Job).where(Job.id == self.job_id).values(progress=clean))

    def log(self, message: str, **extra: Any) -> None:
        with transaction(self.services.session_factory) as s:
            queue.add_event(s, self.job_id, "log", {"message": message[:4000], **_jsonable(extra)})


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(d, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
