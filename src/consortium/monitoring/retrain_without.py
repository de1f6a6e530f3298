"""Retrain without withdrawn data: one call runs a marked model version's recipe again over the
datasets that remain (``consortium.data.withdrawal`` marked it).

The recipe comes from the version's lineage, as the monitoring trigger's does
(``retrain.retrain_recipe``: newest dataset versions, registering into the same model). A
federated recipe drops every dataset whose withdrawal ended its grants or left it no version; a
centralized one trains on the dataset's newest version, which the withdrawn one no longer is. The
job goes through the normal submission (``jobs.submit.submit_recipe``: the same checks, policies
and audit), so a dataset the caller may no longer use is the usual 403/404.

>>> without({"federated": {"datasets": ["a/x", "b/y"]}, "data": {}}, {"b/y"})["federated"]["datasets"]
['a/x']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from consortium.data import catalog, withdrawal
from consortium.errors import Conflict, InvalidInput
from consortium.governance.principal import Principal
from consortium.governance.roles import Role
from consortium.monitoring.retrain import retrain_recipe
from consortium.store.tables.jobs import Job
from consortium.store.tables.registry import ModelVersion, RegisteredModel

if TYPE_CHECKING:
    from consortium.jobs.submit import SubmitCheck


def without(recipe: dict[str, Any], gone: set[str]) -> dict[str, Any]:
    """``recipe`` with the datasets named in ``gone`` (``org/name``) left out of its federation."""
    fed = recipe.get("federated")
    if isinstance(fed, dict) and isinstance(fed.get("datasets"), list):
        fed["datasets"] = [d for d in fed["datasets"] if str(d).split(":", 1)[0] not in gone]
    return recipe


def _gone(session: Session, version_id: str) -> set[str]:
    """Datasets of the version's withdrawals that can no longer be used (grants ended, or no version left)."""
    out = set()
    for m in withdrawal.marks(session, version_id):
        org, _, name = m["dataset"].partition("/")
        ds = catalog.find(session, org, name)
        w = session.get(withdrawal.DatasetWithdrawal, m["withdrawal"])
        if ds is None or not catalog.versions(session, ds) or (w is not None and (w.effects or {}).get("grants_ended")):
            out.add(m["dataset"])
    return out


def retrain_without(session: Session, p: Principal, model: RegisteredModel, v: ModelVersion,
                    checks: Sequence[SubmitCheck]) -> Job:
    """Queue the job that retrains ``v`` without the data withdrawn from it (members of the model's owner)."""
    from consortium.jobs.submit import submit_recipe

    p.require(Role.member, "retraining a model")
    if not withdrawal.marks(session, v.id):
        raise Conflict(f"version {v.version} of {model.name} derives from no withdrawn data",
                       hint="retrain it as usual with `consortium jobs submit`")
    recipe = without(retrain_recipe((v.lineage or {}).get("recipe"), model.name), _gone(session, v.id))
    fed = recipe.get("federated")
    if isinstance(fed, dict):
        left = fed.get("datasets") or []
        if not left:
            raise Conflict("no dataset remains to retrain on once the withdrawn ones are left out",
                           hint="train a new model on other data")
        fed["min_nodes"] = min(int(fed.get("min_nodes") or len(left)), len(left))
    elif not (recipe.get("data") or {}).get("dataset"):
        raise InvalidInput("the version's recipe names no dataset to retrain on")
    job, _ = submit_recipe(session, p, recipe, checks, project_id=model.project_id)
    job.name = f"retrain {model.name} v{v.version} without withdrawn data"[:120]
    return job
