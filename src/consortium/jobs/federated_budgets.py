"""Hub side of differential privacy: each dataset owner's budget, the epsilon ledger, and the
submission check that refuses a federated DP job which would overspend a budget.

With ``federated_nodes`` and ``federated_runs`` it is the hub side of federated jobs: the SQL
lives here, in ``consortium.jobs``; ``consortium.federation`` (the Flower apps, engines and the
site node) has none.

Accounting: a job's epsilon on a dataset is the epsilon its node spends (DP-SGD, RDP
accountant, planned for the whole job by ``federation.app.privacy.plan_job``). Spent epsilon is
the sum of the ledger (written when a job's model is registered) plus the planned epsilon of
federated jobs still queued or running on that dataset, so two jobs submitted together cannot
both take the last of a budget. Summing epsilons is basic sequential composition: a safe upper bound.
A federated job with ``tune`` runs ``tune.trials`` children, each a DP run charged to the ledger
when it ends: it plans children x epsilon, and its reservation shrinks by what its children charged.

>>> remaining(budget=8.0, spent=[3.0, 1.5])
3.5
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from consortium.errors import Conflict, InvalidInput
from consortium.governance.principal import Principal
from consortium.governance.roles import Role
from consortium.recipe import Recipe
from consortium.store.tables.base import utcnow
from consortium.store.tables.data import Dataset
from consortium.store.tables.federation import PrivacyBudget, PrivacySpend
from consortium.store.tables.jobs import Job

ACTIVE = ("queued", "running")


def remaining(*, budget: float, spent: list[float]) -> float:
    """Budget left after ``spent`` (sequential composition)."""
    return float(budget) - float(sum(spent))


def set_budget(session: Session, p: Principal, ds: Dataset, epsilon: float, delta: float) -> PrivacyBudget:
    """Set (or change) the owner's budget for ``ds``; admins of the owning organization only."""
    if ds.org_id != p.org_id:
        from consortium.errors import PermissionDenied

        raise PermissionDenied("only the dataset's owner sets its privacy budget")
    p.require(Role.admin, "setting a privacy budget")
    if not (epsilon > 0) or not (0 < delta < 1):
        raise InvalidInput(f"a budget needs epsilon > 0 and 0 < delta < 1; got epsilon={epsilon}, delta={delta}")
    row = session.get(PrivacyBudget, ds.id)
    if row is None:
        row = PrivacyBudget(dataset_id=ds.id, epsilon=float(epsilon), delta=float(delta), set_by=p.user_id)
        session.add(row)
    else:
        row.epsilon, row.delta, row.set_by, row.updated_at = float(epsilon), float(delta), p.user_id, utcnow()
    session.flush()
    return row


def spent(session: Session, dataset_id: str, *, exclude_job: str | None = None) -> dict[str, Any]:
    """Ledger total and the planned epsilon of active jobs on one dataset."""
    ledger = float(session.scalar(select(func.coalesce(func.sum(PrivacySpend.epsilon), 0.0))
                                  .where(PrivacySpend.dataset_id == dataset_id)) or 0.0)
    reserved = 0.0
    jobs = session.scalars(select(Job).where(Job.kind == "federated", Job.state.in_(ACTIVE))).all()
    for job in jobs:
        if job.id == exclude_job:
            continue
        plan = (job.resolved or {}).get("privacy") or {}
        planned = float(plan.get(dataset_id, {}).get("epsilon", 0.0))
        if planned:  # what the job charged already (a tuning job's finished children) is in the ledger
            planned -= float(session.scalar(select(func.coalesce(func.sum(PrivacySpend.epsilon), 0.0)).where(
                PrivacySpend.dataset_id == dataset_id, PrivacySpend.job_id == job.id)) or 0.0)
        reserved += max(planned, 0.0)
    return {"ledger": ledger, "reserved": reserved, "total": ledger + reserved}


def budget_view(session: Session, ds: Dataset) -> dict[str, Any]:
    row = session.get(PrivacyBudget, ds.id)
    s = spent(session, ds.id)
    entries = session.scalars(select(PrivacySpend).where(PrivacySpend.dataset_id == ds.id)
                              .order_by(PrivacySpend.id)).all()
    return {"epsilon": row.epsilon if row else None, "delta": row.delta if row else None,
            "spent": round(s["ledger"], 6), "reserved": round(s["reserved"], 6),
            "remaining": None if row is None else round(row.epsilon - s["total"], 6),
            "ledger": [{"job_id": e.job_id, "epsilon": e.epsilon, "delta": e.delta,
                        "at": e.created_at.isoformat()} for e in entries]}


def record_spend(session: Session, job_id: str, spends: dict[str, tuple[float, float]]) -> None:
    """Write the ledger entries of a finished job: dataset id -> (epsilon, delta)."""
    for dataset_id, (eps, delta) in spends.items():
        session.add(PrivacySpend(dataset_id=dataset_id, job_id=job_id, epsilon=float(eps), delta=float(delta)))
    session.flush()


def planned_epsilon(recipe: Recipe, n_rows: int) -> float:
    """Upper bound of the epsilon one node spends: the target ``federated.dp.epsilon`` (the
    node's noise is planned to stay below it), or, with a fixed ``noise_multiplier``, what the
    RDP accountant gives for the job's steps. Avoids the noise search (seconds) in a request."""
    dp = recipe.federated.dp if recipe.federated is not None else None
    if dp is None:
        raise InvalidInput("invalid recipe at federated.dp: planning a privacy budget needs this section")
    if dp.noise_multiplier is None:
        return float(dp.epsilon)
    from consortium.federation.app.privacy import plan_job

    return float(plan_job(recipe, {"node": n_rows})["node"].epsilon)


def child_epsilon(recipe: Recipe, n_rows: int) -> float:
    """``planned_epsilon`` of one tuning child (of the job itself without ``tune``): with a fixed
    ``noise_multiplier`` the accountant's epsilon grows with the batch size, so a tuned
    ``train.batch_size`` is planned at its largest value."""
    from consortium.recipe import apply_params

    dp = recipe.federated.dp if recipe.federated is not None else None
    bs = recipe.tune.space.get("train.batch_size") if recipe.tune is not None else None
    if dp is None or dp.noise_multiplier is None or bs is None:
        return planned_epsilon(recipe, n_rows)
    largest = max(bs.choices) if bs.choices is not None else int(bs.high or recipe.train.batch_size)
    return max(planned_epsilon(recipe, n_rows), planned_epsilon(apply_params(recipe, {"train.batch_size": largest}),
                                                                 n_rows))


def check_privacy(session: Session, p: Principal, recipe: Recipe, kind: str) -> dict[str, Any]:
    """A submission check (``jobs.submit.checks_for``): refuse a DP federated job that would exceed
    any dataset's budget.

    A dataset with a budget needs ``federated.dp``; without a budget, DP is optional. Details
    recorded on the job: the planned epsilon per dataset id (``Job.resolved["privacy"]``).
    """
    if kind != "federated" or recipe.federated is None:
        return {}
    from consortium.data.access import resolve_version
    from consortium.data.catalog import full_name
    from consortium.governance.roles import Permission

    found = []
    for ref in recipe.federated.datasets:
        ds, v = resolve_version(session, p, ref, None, Permission.compute)
        found.append((ds, v, full_name(session, ds), session.get(PrivacyBudget, ds.id)))
    budgeted = [f for f in found if f[3] is not None]
    if not budgeted:
        return {}
    dp = recipe.federated.dp
    if dp is None:
        names = ", ".join(f[2] for f in budgeted)
        raise InvalidInput(f"invalid recipe at federated.dp: {names} has a privacy budget, so the job must use "
                           "differential privacy", hint="add federated.dp: {epsilon: 1.0}")
    over, planned = [], {}
    children = recipe.tune.trials if recipe.tune is not None else 1  # each tuning child is a DP run
    for ds, v, name, budget in found:
        per_child = child_epsilon(recipe, int(v.row_count))
        eps = per_child * children
        planned[ds.id] = {"dataset": name, "epsilon": round(eps, 6), "delta": dp.delta,
                          **({"children": children, "epsilon_per_child": round(per_child, 6)} if recipe.tune else {})}
        if budget is None:
            continue
        if dp.delta > budget.delta:
            raise Conflict(f"privacy budget of {name} is set at delta={budget.delta}; the job asks delta={dp.delta}",
                           hint=f"set federated.dp.delta to {budget.delta} or less")
        left = budget.epsilon - spent(session, ds.id)["total"]
        if eps > left + 1e-9:
            over.append({"dataset": name, "planned_epsilon": round(eps, 4), "remaining": round(left, 4),
                         "budget": budget.epsilon,
                         **({"children": children, "epsilon_per_child": round(per_child, 4)} if recipe.tune else {})})
    if over:
        o = over[0]
        how = (f" ({children} tuning children x epsilon={o['epsilon_per_child']}, each child a DP run)"
               if recipe.tune else "")
        raise Conflict(f"privacy budget exceeded for {o['dataset']}: the job would spend "
                       f"epsilon={o['planned_epsilon']}{how} but only {o['remaining']} of {o['budget']} remains",
                       hint=("lower tune.trials or " if recipe.tune else "") + "lower federated.dp.epsilon, or ask "
                       "the dataset's owner to raise its budget", details={"over": over})
    return {"privacy": planned}

