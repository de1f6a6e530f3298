"""Dataset policies: the rules a dataset's owner sets for every job that uses it.

A grant says who may compute on a dataset; a policy says how (``policy_rules.Rules``): for which
organizations, projects and purposes, with which differential privacy (on top of the ε budget of
``jobs.federated_budgets``), for how many rounds and epochs, with which model types and sizes, from
how many rows per update, whether each federated job waits for the owner's approval, and whether
models trained on it may be downloaded. Only the owner's admins set it; grantees with ``compute``
read it (they must know the rules their jobs meet). Setting it replaces the whole rule set, after
``policy_rules.check_possible`` (a 422 naming each impossible or contradictory rule).

The hub applies it at submission (``jobs.policy_check``) and the owner's node again before it trains.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consortium.errors import InvalidInput, NotFound
from consortium.governance import projects
from consortium.governance.identity import user_name
from consortium.governance.policy_rules import Rules, check_possible
from consortium.governance.principal import Principal
from consortium.governance.roles import Role
from consortium.store.tables.base import utcnow
from consortium.store.tables.identity import Organization
from consortium.store.tables.policies import DatasetPolicy
from consortium.store.tables.projects import Project


def find(session: Session, dataset_id: str) -> DatasetPolicy | None:
    return session.get(DatasetPolicy, dataset_id)


def rules_of(session: Session, dataset_id: str) -> Rules | None:
    """The dataset's rules, or None when its owner set none."""
    row = find(session, dataset_id)
    return Rules.model_validate(row.rules) if row is not None and row.rules else None


def rules_by_dataset(session: Session, dataset_ids: list[str]) -> dict[str, Rules]:
    """dataset id -> rules, for those of ``dataset_ids`` that have a policy."""
    if not dataset_ids:
        return {}
    rows = session.scalars(select(DatasetPolicy).where(DatasetPolicy.dataset_id.in_(dataset_ids)))
    return {r.dataset_id: Rules.model_validate(r.rules) for r in rows if r.rules}


def _visible_project(session: Session, p: Principal, ref: str) -> Project | None:
    try:
        return projects.visible(session, p, ref.replace("~", "/")).project
    except NotFound:
        return None


def _check_references(session: Session, p: Principal, rules: Rules) -> None:
    """Organizations and projects named by the rules exist (a typo would otherwise refuse every job);
    a project the owner's organization is not in is answered as a missing one."""
    bad = []
    if rules.organizations:
        known = set(session.scalars(select(Organization.name).where(Organization.name.in_(rules.organizations))))
        bad += [("organizations", f"no organization {o!r}") for o in rules.organizations if o not in known]
    for ref in rules.projects or []:
        if _visible_project(session, p, ref) is None:
            bad.append(("projects", f"no project {ref!r} that your organization is in (name it org/name)"))
    if bad:
        raise InvalidInput(f"invalid policy: {'; '.join(f'{r}: {m}' for r, m in bad)}",
                           hint="list organizations with `consortium orgs list`, projects with "
                                "`consortium projects list`", details=[{"rule": r, "message": m} for r, m in bad])


def _normalized(session: Session, p: Principal, rules: Rules) -> Rules:
    """Projects as ``org/name`` (a reference may use ``~``, a bare name or an id)."""
    if not rules.projects:
        return rules
    refs = []
    for ref in rules.projects:
        prj = _visible_project(session, p, ref)
        refs.append(projects.ref_of(session, prj).replace("~", "/") if prj is not None else ref)
    return rules.model_copy(update={"projects": sorted(set(refs))})


def set_policy(session: Session, p: Principal, dataset_id: str, owner_org_id: str, rules: Rules, *,
               rows: int | None = None, kind: str | None = None) -> DatasetPolicy:
    """Replace the dataset's rules (its owner's admins only; the route checked ownership)."""
    p.require(Role.admin, "setting a dataset policy")
    check_possible(rules, rows, kind)
    _check_references(session, p, rules)
    rules = _normalized(session, p, rules)
    row = find(session, dataset_id)
    if row is None:
        row = DatasetPolicy(dataset_id=dataset_id, org_id=owner_org_id)
        session.add(row)
    row.rules, row.set_by, row.updated_at = rules.set_rules(), p.user_id, utcnow()
    session.flush()
    return row


def clear_policy(session: Session, p: Principal, dataset_id: str) -> bool:
    """Remove the dataset's rules; True if there were any."""
    p.require(Role.admin, "removing a dataset policy")
    row = find(session, dataset_id)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def view(session: Session, dataset: str, row: DatasetPolicy | None) -> dict[str, Any]:
    """What the API shows: every rule (unset ones as their defaults) and who set them when."""
    rules = Rules.model_validate(row.rules if row is not None else {})
    return {"dataset": dataset, "rules": rules.model_dump(), "set": sorted(rules.set_rules()),
            "set_by": user_name(session, row.set_by) if row is not None and row.set_by else None,
            "updated_at": row.updated_at if row is not None else None}


def manual_orgs(session: Session, dataset_ids: list[str]) -> set[str]:
    """Owner organization ids whose policy on one of ``dataset_ids`` asks to approve every job."""
    rows = session.scalars(select(DatasetPolicy).where(DatasetPolicy.dataset_id.in_(dataset_ids)))
    return {r.org_id for r in rows if (r.rules or {}).get("manual_approval")}
