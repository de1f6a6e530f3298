"""Submitting a job: validate the recipe, check access to everything it names, then queue it.

The checks are built once by ``Services.start`` (``Services.submit_checks``, from ``checks_for``) and
passed in: each dataset exists, the caller may compute on it, the recipe fits its schema and the
hub's model size limit, a DP federated job fits every privacy budget, and the job meets every
dataset's policy (``policy_check``); so a job that cannot run
is refused with a 4xx before it is queued, never discovered failing later.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from consortium.governance.principal import Principal
from consortium.governance.roles import Role
from consortium.jobs import queue
from consortium.jobs.policy_check import check_policies
from consortium.recipe import Recipe, parse_recipe
from consortium.store.tables.jobs import Job

# check(session, principal, recipe, kind) -> details to record (e.g. resolved dataset versions)
SubmitCheck = Callable[[Session, Principal, Recipe, str], dict[str, Any]]


def checks_for(max_model_params: int, executor: str = "local") -> tuple[SubmitCheck, ...]:
    """The hub's submission checks, in order: the executor (``train.workers``, ``tune.parallel`` and
    PBT need ``ray``, and fit the cluster's CPUs), training (datasets, schema, model size at most
    ``max_model_params``), then the privacy budgets of a federated DP job."""
    from consortium.jobs.checks import check_training
    from consortium.jobs.executors import check_executor
    from consortium.jobs.federated_budgets import check_privacy

    return (functools.partial(check_executor, executor=executor),
            functools.partial(check_training, max_params=max_model_params), check_privacy)


def submit_recipe(session: Session, p: Principal, source: str | dict[str, Any], checks: Sequence[SubmitCheck],
                  *, project_id: str | None = None) -> tuple[Job, Recipe]:
    """Validate ``source``, run ``checks`` (``Services.submit_checks``) and queue the job."""
    p.require(Role.member, "starting jobs")
    recipe = parse_recipe(source)
    kind = "federated" if recipe.federated is not None else "train"
    resolved: dict[str, Any] = {}
    for check in checks:
        resolved.update(check(session, p, recipe, kind) or {})
    check_policies(session, p, recipe, resolved, project_id)  # each dataset owner's rules (issue 19)
    job = queue.submit(session, org_id=p.org_id, user_id=p.user_id, kind=kind, name=recipe.name,
                       recipe=recipe.to_dict(), resolved=resolved, project_id=project_id)
    return job, recipe
