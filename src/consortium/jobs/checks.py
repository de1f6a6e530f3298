"""Submission checks for training jobs: every dataset the recipe names exists for the caller, the
caller may compute on it (owner, or a ``compute`` grant), and the recipe fits its schema. Runs in
the hub from the stored schema, without reading any rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from consortium.errors import InvalidInput, NotFound, PermissionDenied
from consortium.governance.principal import Principal
from consortium.governance.roles import Permission, Role
from consortium.recipe import Recipe
from consortium.training.model_size import DEFAULT_MAX_PARAMS, check_recipe_size

CLASS_TYPES = {"int", "integer", "string", "bool", "boolean", "category"}


def _resolve(session: Session, p: Principal, ref: str, version: int | None) -> dict[str, Any]:
    from consortium.data import catalog
    from consortium.data.access import resolve_version
    from consortium.governance.identity import org_by_id

    ds, v = resolve_version(session, p, ref, version, Permission.compute)
    return {"dataset": catalog.full_name(session, ds), "dataset_id": ds.id, "version": v.version,
            "owner": org_by_id(session, ds.org_id).name, "owner_org_id": ds.org_id, "schema": v.schema}


def fit_schema(recipe: Recipe, ref: str, schema: dict[str, Any],
               max_params: int = DEFAULT_MAX_PARAMS) -> None:
    """The schema-level part of ``consortium.recipe.validate_against`` (the worker runs the rest), and
    the model's size on this data against the hub's limit (``CONSORTIUM_MAX_MODEL_PARAMS``)."""
    kind = schema.get("kind")
    if kind == "tabular":
        cols = {c["name"]: c for c in schema.get("columns", [])}
        target = recipe.data.target or schema.get("target")
        if target not in cols:
            raise InvalidInput(f"invalid recipe at data.target: column {target!r} is not in {ref}",
                               hint=f"columns are: {', '.join(list(cols)[:20])}")
        if recipe.model.type == "cnn":
            raise InvalidInput(f"invalid recipe at model.type: a cnn needs image data, {ref} is tabular",
                               hint="use type mlp or logistic")
        ctype = str(cols[target].get("type", ""))
        if recipe.resolved_loss == "mse" and recipe.task != "regression" and ctype in CLASS_TYPES:
            raise InvalidInput(f"invalid recipe at train.loss: mse on class labels (column {target!r} is {ctype})",
                               hint="set task: regression if the target is a quantity, or use cross_entropy")
    elif kind == "image":
        if any(s.name == "one_hot" for s in recipe.process):
            raise InvalidInput("invalid recipe at process: one_hot does not apply to images")
    check_recipe_size(recipe, schema, max_params, where=ref)


def check_training(session: Session, p: Principal, recipe: Recipe, kind: str, *,
                   max_params: int = DEFAULT_MAX_PARAMS) -> dict[str, Any]:
    """Every dataset the recipe names is authorized like a path parameter: one the caller cannot see
    (another organization's without a grant, or none at all) is 404, the same answer either way;
    one it sees without ``compute`` (a ``metadata`` grant) is 403."""
    check_registration(session, p, recipe)
    if kind == "federated":
        if recipe.federated is None:
            raise InvalidInput("invalid recipe at federated: a federated job needs this section",
                               hint="name the datasets under federated.datasets")
        fed = recipe.federated
        if len(fed.datasets) < fed.min_nodes:  # it could never start: refused now, not after a node wait
            raise InvalidInput(f"invalid recipe at federated.min_nodes: {fed.min_nodes} organizations must take part "
                               f"but federated.datasets names {len(fed.datasets)}",
                               hint="name one dataset per organization (at least min_nodes), or lower min_nodes")
        found, unseen, denied = [], [], []
        for ref in recipe.federated.datasets:
            try:
                found.append(_resolve(session, p, ref, None))
            except NotFound:
                unseen.append(ref)
            except PermissionDenied:
                denied.append(ref)
        if unseen:
            raise NotFound(f"invalid recipe at federated.datasets: not found: {', '.join(unseen)}",
                           hint="list the datasets you can see with `consortium datasets list`")
        if denied:
            raise PermissionDenied(f"no compute grant to your organization on: {', '.join(denied)}",
                                   hint="each dataset's owner must grant compute (to you or to the project)")
        for d in found:
            fit_schema(recipe, d["dataset"], d["schema"], max_params)
        same_schema(found)
        return {"datasets": [{k: v for k, v in d.items() if k != "schema"} for d in found]}
    if not recipe.data.dataset:
        raise InvalidInput("invalid recipe at data.dataset: name the dataset to train on (org/name)")
    d = _resolve(session, p, recipe.data.dataset, recipe.data.version)
    if d["schema"].get("node"):  # a node dataset: its rows are at a site, never at the hub
        raise InvalidInput(f"invalid recipe at data.dataset: {d['dataset']} is a node dataset, its rows stay at node "
                           f"{d['schema']['node']} of {d['owner']}",
                           hint="train on it with a federated job (federated.datasets)")
    fit_schema(recipe, d["dataset"], d["schema"], max_params)
    return {"datasets": [{k: v for k, v in d.items() if k != "schema"}]}


def same_schema(found: list[dict[str, Any]]) -> None:
    """The datasets of a federated job agree on their columns (or image shape): one that differs
    is refused, naming it and the column."""
    from consortium.data.node_datasets import column_mismatch

    for d in found[1:]:
        diff = column_mismatch(found[0]["schema"], d["schema"])
        if diff:
            raise InvalidInput(f"invalid recipe at federated.datasets: {d['dataset']} {diff} "
                               f"(compared with {found[0]['dataset']})",
                               hint="every organization's dataset needs the same columns; fix it at its site "
                                    "(`consortium nodes add-data`) or leave it out")


def check_registration(session: Session, p: Principal, recipe: Recipe) -> None:
    """``register.model`` names a model of the caller's own organization (``name`` or ``own-org/name``):
    the job adds a version to it. Another organization's model is 404 (403 where a project lets the
    caller read it), decided now rather than when the job ends."""
    from consortium.registry import models as reg

    if recipe.registration is None:  # registers under the recipe's name, in the caller's organization
        return
    org, name = reg.split_ref(recipe.registration.model, p.org_name)
    if org != p.org_name:
        reg.get_model(session, p, org, name, Role.member)  # 404 unless visible, 403 if only readable
        raise PermissionDenied(f"invalid recipe at register.model: only {org} adds versions to {org}/{name}")
    try:
        reg.check_model_name(name)
    except InvalidInput as e:
        raise InvalidInput(f"invalid recipe at register.model: {e.message}", hint=e.hint) from None
    recipe.registration.model = name  # the worker registers a bare name in the submitter's organization

