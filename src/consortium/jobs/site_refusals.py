"""Sites that refused a federated job under their data owner's policy, named in the job's error.

A site's ClientApp refuses a run that breaks its policy (``federation.app.site_policy``); the
node reports it (``POST /datasets/{org}/{dataset}/policy/refusals``, audited) and ``record`` puts
it in the job's log with the site and the rules it cited. The run then fails at the SuperLink
with only a count of the nodes that answered; ``summary`` is what the job's error says instead:
``site clinic-a refused: max_epochs: 3 epochs, more than the 1 allowed``. The report may come
after the job failed (the node reports at its next heartbeat), so ``record`` also rewrites the
error of a job that already failed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consortium.jobs import queue
from consortium.store.tables.jobs import Job, JobEvent


def line(org: str, rules: list[str], message: str) -> str:
    """``site ORG refused: MESSAGE`` (the rules' names when the node sent no message)."""
    return f"site {org} refused: {message or ', '.join(rules)}"


def record(session: Session, job_id: str, org: str, dataset: str, rules: list[str], message: str) -> None:
    """The refusal in the job's log; a job that already failed gets it at the front of its error."""
    queue.add_event(session, job_id, "log", {
        "message": f"{org} refused the run at its site, under the policy of {dataset}: "
                   f"{message or ', '.join(rules)}",
        "refusal": {"org": org, "dataset": dataset, "rules": list(rules), "message": message}})
    job = session.get(Job, job_id)
    said = line(org, rules, message)
    if job is not None and job.state == "failed" and said not in (job.error or ""):
        job.error = f"{said}; {job.error}" if job.error else said


def refusals(session: Session, job_id: str) -> list[dict[str, Any]]:
    """The refusals recorded for the job, oldest first."""
    rows = session.scalars(select(JobEvent.data).where(JobEvent.job_id == job_id, JobEvent.kind == "log")
                           .order_by(JobEvent.id))
    return [d["refusal"] for d in rows if isinstance(d, dict) and isinstance(d.get("refusal"), dict)]


def summary(session: Session, job_id: str) -> str:
    """Every refusing site and the rules it cited, ``; ``-separated ('' when none refused)."""
    seen: list[str] = []
    for r in refusals(session, job_id):
        said = line(str(r.get("org")), list(r.get("rules") or []), str(r.get("message") or ""))
        if said not in seen:
            seen.append(said)
    return "; ".join(seen)
