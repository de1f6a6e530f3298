"""Submitting a job: validate the recipe, check access to everything it names, then queue it.

Stages add checks to ``SUBMIT_CHECKS`` (e.g. the data stage checks that each dataset exists, that
the caller may compute on it, and that the target column is there), so a job that cannot run is
refused with a 4xx before it is queued, never discovered failing later.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from consortium.governance.principal import Principal
from consortium.governance.roles import Role
from consortium.jobs import queue
from consortium.recipe import Recipe, parse_recipe
from consortium.store.tables.jobs import Job

# check(session, principal, recipe, kind) -> details to record (e.g. resolved dataset versions)
SUBMIT_CHECKS: list[Callable[[Session, Principal, Recipe, str], dict[str, Any]]] = []


def submit_recipe(session: Session, p: Principal, source: str | dict[str, Any], *,
                  project_id: str | None = None) -> tuple[Job, Recipe]:
    p.require(Role.member, "starting jobs")
    recipe = parse_recipe(source)
    kind = "federated" if recipe.federated is not None else "train"
    resolved: dict[str, Any] = {}
    for check in SUBMIT_CHECKS:
        resolved.update(check(session, p, recipe, kind) or {})
    doc = recipe.to_dict()
    if resolved:
        doc["_resolved"] = resolved
    job = queue.submit(session, org_id=p.org_id, user_id=p.user_id, kind=kind, name=recipe.name,
                       recipe=doc, project_id=project_id)
    return job, recipe
