"""The submission check of every dataset policy a job meets (``governance.policies``).

Runs after the other submission checks (``submit.checks_for``), on the datasets they resolved:
for each dataset with a policy, the job's ``Terms`` (who submits, in which project and for which
purpose, rounds, epochs, DP, the model type and its parameter count as counted for
``CONSORTIUM_MAX_MODEL_PARAMS``, the rows an update is computed from) against its rules. A job that
breaks one is refused with a 403 naming the dataset and every rule it breaks; the API records the
refusal against that dataset, so that its owner sees it in the audit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consortium.errors import InvalidInput, PermissionDenied
from consortium.governance import policies, projects
from consortium.governance.policy_rules import Terms, violations
from consortium.governance.principal import Principal
from consortium.recipe import Recipe
from consortium.store.tables.data import DatasetVersion
from consortium.store.tables.projects import Project


def parameters_on(recipe: Recipe, schema: dict[str, Any]) -> int | None:
    """The recipe's largest model's parameter count on this schema (None if it does not fit it)."""
    from consortium.training.model_size import largest_model, parameter_count, schema_input

    try:
        shape, n_out = schema_input(recipe, schema)
        return parameter_count(largest_model(recipe), shape, n_out)
    except InvalidInput:
        return None


def terms_for(recipe: Recipe, org: str, schema: dict[str, Any], *, rows: int | None = None,
              project: str | None = None, purpose: str | None = None) -> Terms:
    """What ``recipe``, submitted by ``org``, asks of a dataset of this schema (``rows``: the rows an
    update is computed from; by default the schema's rows less the held-out test share)."""
    fed = recipe.federated
    if rows is None and schema.get("rows") is not None:
        rows = int(int(schema["rows"]) * (1 - recipe.data.test_size))
    return Terms(org=org, federated=fed is not None,
                 epochs=fed.local_epochs if fed is not None else recipe.train.epochs,
                 rounds=fed.rounds if fed is not None else None,
                 # a federated search's children are DP runs each: the job spends children x epsilon
                 dp_epsilon=fed.dp.epsilon * (recipe.tune.trials if recipe.tune is not None else 1)
                 if fed is not None and fed.dp is not None else None,
                 model_type=recipe.model.type, parameters=parameters_on(recipe, schema), rows=rows,
                 project=project, purpose=purpose)


def check_policies(session: Session, p: Principal, recipe: Recipe, resolved: dict[str, Any],
                   project_id: str | None) -> None:
    """``PermissionDenied`` naming the first dataset whose policy the job breaks, and its rules."""
    found = resolved.get("datasets") or []
    rules = policies.rules_by_dataset(session, [d["dataset_id"] for d in found])
    if not rules:
        return
    prj = session.get(Project, project_id) if project_id else None
    project = projects.ref_of(session, prj).replace("~", "/") if prj is not None else None
    for d in found:
        r = rules.get(d["dataset_id"])
        if r is None:
            continue
        schema = session.scalar(select(DatasetVersion.schema).where(
            DatasetVersion.dataset_id == d["dataset_id"], DatasetVersion.version == d["version"])) or {}
        bad = violations(r, terms_for(recipe, p.org_name, schema, project=project,
                                      purpose=prj.purpose if prj is not None else None))
        if bad:
            raise PermissionDenied(
                f"the policy of dataset {d['dataset']} refuses this job: "
                + "; ".join(f"{v.rule}: {v.message}" for v in bad),
                hint=f"change the recipe to meet the rules (`consortium datasets policy show {d['dataset']}`), "
                     f"or ask {d['owner']} to change its policy",
                details={"dataset": d["dataset"], "dataset_id": d["dataset_id"], "owner_org_id": d["owner_org_id"],
                         "rules": [v.rule for v in bad]})
