"""Registered models and their immutable versions: register (from training or upload), find, describe.

A model belongs to an organization and is named ``org/model``. Each version holds the ONNX
artifact (a blob encrypted with the owner's data key, written before the row), the signature read
from the graph, the fitted preprocessing, metrics, reference statistics for drift, plots and the
lineage (job, recipe, datasets, contributing organizations, ε). Versions never change once
written; ``aliases`` point at them.

Training and federated jobs call ``register_version`` (or ``register_training_result``)::

    with transaction(svc.session_factory) as s:
        v = register_version(s, org_id, "digits-classifier", onnx=result.onnx, blobs=svc.blobs,
                             preprocessing=result.preprocessing, metrics=result.metrics,
                             lineage={"job_id": job.id, "recipe": result.recipe}, task=result.task,
                             class_names=result.class_names, reference_stats=result.reference_stats,
                             plots=result.plots)
        svc.audit_in(s, [registered_event(v, actor_user_id=job.user_id)])
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from consortium.errors import ConsortiumError, InvalidInput, NotFound, PermissionDenied
from consortium.governance.audit import EventDraft
from consortium.governance.identity import org_by_id, org_by_name
from consortium.governance.names import NameRule
from consortium.governance.principal import Principal
from consortium.governance.roles import Role
from consortium.governance.sealed import SealedBlobs
from consortium.serving.sessions import inspect_onnx
from consortium.serving.signature import ModelSignature
from consortium.store.db import INT32_MAX
from consortium.store.paging import Listing
from consortium.store.tables.base import new_id, utcnow
from consortium.store.tables.identity import Organization
from consortium.store.tables.registry import ModelAlias, ModelVersion, RegisteredModel

if TYPE_CHECKING:
    from consortium.training.pipeline import TrainingResult

MODEL_NAME = NameRule("model name", re.compile(r"^[a-z0-9][a-z0-9._-]{0,78}[a-z0-9]$|^[a-z0-9]$"),
                      "use 1-80 lowercase letters, digits, '.', '_' and '-', starting and ending with a "
                      "letter or digit")
ALIAS = NameRule("alias", re.compile(r"^[a-z][a-z0-9_-]{0,39}$"),
                 "use up to 40 lowercase letters, digits, '_' and '-', starting with a letter ('latest' is "
                 "reserved)", reserved=frozenset({"latest"}))
PLOT_NAME = re.compile(r"^[a-z0-9_]{1,40}$")
MODEL_NAME_RE, ALIAS_RE = MODEL_NAME.regex, ALIAS.regex
check_model_name, check_alias = MODEL_NAME.check, ALIAS.check
TASKS = ("classification", "regression")
MAX_PLOT_BYTES = 8 << 20


class Lineage(BaseModel):
    """Where a version came from. Unknown keys are kept (stages may add their own)."""

    model_config = ConfigDict(extra="allow")
    job_id: str | None = None
    recipe: dict[str, Any] | None = None
    datasets: list[dict[str, Any]] = Field(default_factory=list)  # [{"dataset": "org/name", "version": 1}]
    organizations: list[str] = Field(default_factory=list)  # contributing organizations
    epsilon: float | None = None  # differential privacy budget spent, if DP
    delta: float | None = None
    source: str | None = None  # "training", "federated", "upload"


def _owner_org(session: Session, owner: Principal | str | Organization) -> tuple[Organization, str | None]:
    """The organization a new version goes to, and the acting user (None for jobs)."""
    if isinstance(owner, Principal):
        owner.require(Role.member, "registering a model")
        return org_by_id(session, owner.org_id), owner.user_id
    if isinstance(owner, Organization):
        return owner, None
    org = session.get(Organization, owner)
    return (org, None) if org is not None else (org_by_name(session, owner), None)


def split_ref(ref: str, default_org: str | None = None) -> tuple[str, str]:
    """``org/model`` -> (org, model); a bare ``model`` uses ``default_org``."""
    if "/" in ref:
        org, _, name = ref.partition("/")
        return org, name
    if default_org is None:
        raise InvalidInput(f"model reference {ref!r} needs an organization", hint="write it as org/model")
    return default_org, ref


def register_version(
    session: Session,
    owner: Principal | str | Organization,
    model_name: str,
    *,
    onnx: bytes,
    blobs: SealedBlobs,
    signature: ModelSignature | dict[str, Any] | None = None,
    preprocessing: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    lineage: Lineage | dict[str, Any] | None = None,
    task: str | None = None,
    class_names: list[str] | None = None,
    reference_stats: dict[str, Any] | None = None,
    plots: dict[str, bytes] | None = None,
    description: str = "",
    source_format: str = "onnx",
) -> ModelVersion:
    """Add a new immutable version to ``owner``'s model ``model_name`` (created if new).

    ``owner`` is the acting ``Principal`` (needs the member role) or an organization (id, name
    or row) for jobs. The ONNX is validated in onnxruntime and its signature read from the graph;
    a given ``signature`` may only add keys such as ``raw_columns``. Blobs are encrypted with the
    owner's data key and written before the row; the caller's transaction commits both. Raises
    ``InvalidInput`` for a model that does not load or bad metadata.
    """
    org, user_id = _owner_org(session, owner)
    check_model_name(model_name)
    if task is not None and task not in TASKS:
        raise InvalidInput(f"task must be one of {', '.join(TASKS)}; got {task!r}")
    graph_sig = inspect_onnx(onnx).to_dict()
    if signature is not None:
        given = signature.to_dict() if isinstance(signature, ModelSignature) else dict(signature)
        graph_sig.update({k: v for k, v in given.items() if k not in ("inputs", "outputs", "opset", "producer")})
    if preprocessing is not None:
        from consortium.processing.preprocessor import Preprocessor

        try:
            Preprocessor.from_state(preprocessing)
        except (ConsortiumError, LookupError, TypeError, ValueError, AttributeError) as e:  # a malformed state
            raise InvalidInput(f"the preprocessing state does not load: {e}",
                               hint="pass Preprocessor.state() from consortium.processing") from None
    try:
        lin = lineage if isinstance(lineage, Lineage) else Lineage.model_validate(lineage or {})
    except ValidationError as e:
        raise InvalidInput(f"invalid lineage: {e.errors()[0]['loc']}: {e.errors()[0]['msg']}") from None
    if class_names is not None:
        class_names = [str(c) for c in class_names]
    plots = plots or {}
    for name, png in plots.items():
        if PLOT_NAME.fullmatch(name) is None or len(png) > MAX_PLOT_BYTES:
            raise InvalidInput(f"plot {name!r} has a bad name or is larger than {MAX_PLOT_BYTES} bytes")

    model = session.scalar(select(RegisteredModel).where(RegisteredModel.org_id == org.id,
                                                         RegisteredModel.name == model_name)
                           .with_for_update())
    if model is None:
        model = RegisteredModel(id=new_id("mdl"), org_id=org.id, name=model_name, description=description,
                                task=task, created_by=user_id)
        session.add(model)
        session.flush()
    number = (session.scalar(select(func.max(ModelVersion.version))
                             .where(ModelVersion.model_id == model.id)) or 0) + 1
    ref = blobs.put(session, org.id, [onnx], prefix="m")
    plot_keys = {name: blobs.put(session, org.id, [png], prefix="p").key
                 for name, png in plots.items()}
    v = ModelVersion(id=new_id("mv"), model_id=model.id, version=number, blob_key=ref.key, blob_size=ref.size,
                     onnx_sha256=hashlib.sha256(onnx).hexdigest(), onnx_size=len(onnx),
                     source_format=source_format, signature=graph_sig, preprocessing=preprocessing,
                     metrics=metrics or {}, lineage=lin.model_dump(mode="json", exclude_none=False),
                     task=task or model.task, class_names=class_names, reference_stats=reference_stats,
                     plots=plot_keys, description=description, created_by=user_id)
    session.add(v)
    model.updated_at = utcnow()
    if task and not model.task:
        model.task = task
    session.flush()
    return v


def register_training_result(session: Session, owner: Principal | str | Organization, model_name: str,
                             result: TrainingResult, *, blobs: SealedBlobs,
                             lineage: Lineage | dict[str, Any] | None = None,
                             description: str = "") -> ModelVersion:
    """``register_version`` fed from a ``consortium.training.pipeline.TrainingResult``."""
    lin = dict(lineage.model_dump() if isinstance(lineage, Lineage) else lineage or {})
    lin.setdefault("recipe", result.recipe)
    lin.setdefault("source", "training")
    metrics = dict(result.metrics)
    if result.cv:
        metrics["cv"] = result.cv.get("summary")
    return register_version(session, owner, model_name, onnx=result.onnx, blobs=blobs,
                            signature=result.signature, preprocessing=result.preprocessing, metrics=metrics,
                            lineage=lin, task=result.task, class_names=result.class_names,
                            reference_stats=result.reference_stats, plots=result.plots,
                            description=description, source_format="training")


def registered_event(v: ModelVersion, model: RegisteredModel | None = None, *, actor_user_id: str | None = None,
                     actor_org_id: str | None = None, request_id: str = "-") -> EventDraft:
    """The audit event for a version registered outside a request (jobs)."""
    return EventDraft("models.register_version", request_id=request_id, actor_user_id=actor_user_id,
                      actor_org_id=actor_org_id, resource_type="model_version", resource_id=v.id,
                      resource_org_id=model.org_id if model else None,
                      details={"model_id": v.model_id, "version": v.version, "sha256": v.onnx_sha256})


# ---------------------------------------------------------------------------------------- lookup
def find_model(session: Session, org_name: str, name: str) -> RegisteredModel | None:
    return session.scalar(select(RegisteredModel).join(Organization, Organization.id == RegisteredModel.org_id)
                          .where(Organization.name == org_name, RegisteredModel.name == name))


def get_model(session: Session, p: Principal, org_name: str, name: str, role: Role = Role.viewer) -> RegisteredModel:
    """A model of the caller's organization (others get ``NotFound``), at ``role`` or above."""
    m = find_model(session, org_name, name)
    if m is not None and m.org_id != p.org_id and m.project_id:
        from consortium.governance.projects import active_project_ids

        if m.project_id in active_project_ids(session, p.org_id):  # project members read project models
            if role != Role.viewer:
                raise PermissionDenied(f"model {org_name}/{name} belongs to {org_name}; project members "
                                       "may read it, only its owner changes it")
            from consortium.governance import consent  # a member that joined after it was shared (issue 19)

            consent.require(session, m, p.org_id, "share", model_ref=f"{org_name}/{name}", project_id=m.project_id)
            return m
    if m is None or m.org_id != p.org_id:
        raise NotFound(f"model {org_name}/{name} not found", hint="list models with `consortium models list`")
    p.require(role)
    return m


def place_in_project(session: Session, p: Principal, model: RegisteredModel, project: str) -> None:
    """Put one of your models in a project your organization is an active member of."""
    from consortium.governance import projects

    prj, m = projects.visible(session, p, project)
    projects.require_active(m, "placing models in it")
    p.require(Role.member, "placing models in a project")
    model.project_id = prj.id


def model_of(session: Session, v: ModelVersion) -> RegisteredModel:
    """The registered model a version belongs to."""
    model = session.get(RegisteredModel, v.model_id)
    if model is None:
        raise NotFound(f"the model of version {v.version} is gone")
    return model


def qualified_name(session: Session, model: RegisteredModel) -> str:
    """``org/model``."""
    return f"{org_by_id(session, model.org_id).name}/{model.name}"


def update_card(session: Session, p: Principal, model: RegisteredModel, *, description: str | None = None,
                intended_use: str | None = None) -> RegisteredModel:
    """Edit the card's description and intended use (the owner organization's members)."""
    if model.org_id != p.org_id:
        raise PermissionDenied("only the model's owner organization may edit its card")
    p.require(Role.member, "editing a model card")
    if description is not None:
        model.description = description
    if intended_use is not None:
        model.intended_use = intended_use
    return model


def alias_followers(session: Session, model: RegisteredModel, alias: str) -> list[str]:
    """The names of the deployments that serve ``model`` through ``alias``."""
    from consortium.store.tables.registry import Deployment

    return list(session.scalars(select(Deployment.name).where(Deployment.model_id == model.id,
                                                              Deployment.alias == alias)
                                .order_by(Deployment.name)))


def list_models(session: Session, p: Principal) -> list[RegisteredModel]:
    return models_listing(p).all(session)


def models_listing(p: Principal) -> Listing:
    return Listing(select(RegisteredModel).where(RegisteredModel.org_id == p.org_id),
                   (RegisteredModel.name,))  # unique per organization (uq_registered_models_org_name)


def versions(session: Session, model: RegisteredModel) -> list[ModelVersion]:
    return versions_listing(model).all(session)


def versions_listing(model: RegisteredModel) -> Listing:
    return Listing(select(ModelVersion).where(ModelVersion.model_id == model.id),
                   (ModelVersion.version,))  # unique per model


def get_version(session: Session, model: RegisteredModel, ref: int | str) -> ModelVersion:
    """A version by number, alias name or ``latest``."""
    ref_s = str(ref)
    if ref_s == "latest":
        v = session.scalar(select(ModelVersion).where(ModelVersion.model_id == model.id)
                           .order_by(ModelVersion.version.desc()).limit(1))
    elif ref_s.isdigit():
        v = session.scalar(select(ModelVersion).where(ModelVersion.model_id == model.id,
                                                      ModelVersion.version == int(ref_s)))
    else:
        a = session.get(ModelAlias, (model.id, ref_s))
        v = session.get(ModelVersion, a.version_id) if a else None
    if v is None:
        raise NotFound(f"model {model.name} has no version or alias {ref_s!r}",
                       hint="list them with `consortium models versions`")
    return v


def parse_model_ref(ref: str, default_org: str | None = None) -> tuple[str, str, int | None, str | None]:
    """``[org/]model[:version|@alias]`` -> (org, model, version, alias).

    >>> parse_model_ref("st-marys/digits@production")
    ('st-marys', 'digits', None, 'production')
    >>> parse_model_ref("digits:3", default_org="st-marys")
    ('st-marys', 'digits', 3, None)
    """
    ref = (ref or "").strip()
    version: int | None = None
    alias: str | None = None
    if "@" in ref:
        ref, _, alias = ref.partition("@")
        check_alias(alias)
    elif ":" in ref:
        ref, _, v = ref.partition(":")
        if not (v.isascii() and v.isdigit()) or int(v) > INT32_MAX:
            raise InvalidInput(f"version {v!r} is not a version number",
                               hint="write MODEL:3 or MODEL@production")
        version = int(v)
    org, name = split_ref(ref, default_org)
    return org, name, version, alias


@dataclass(frozen=True)
class ToServe:
    """What a new deployment serves: a model, and a pinned version or an alias to follow."""

    model: RegisteredModel
    version_id: str | None
    alias: str | None


def to_serve(session: Session, p: Principal, ref: str) -> ToServe:
    """``[org/]model[:version|@alias]`` for a deployment (``consortium.serving.hub.deployments``): a model
    of the caller's organization, authorized like a path parameter (another organization's is 404,
    403 where a project lets the caller read it); the alias must exist; without a version or an
    alias the latest version is pinned."""
    org, name, version, alias = parse_model_ref(ref, p.org_name)
    model = get_model(session, p, org, name, Role.member)
    if alias is not None:
        get_version(session, model, alias)
        return ToServe(model, None, alias)
    return ToServe(model, get_version(session, model, version if version is not None else "latest").id, None)


def aliases(session: Session, model: RegisteredModel) -> dict[str, int]:
    rows = session.execute(select(ModelAlias.alias, ModelVersion.version)
                           .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
                           .where(ModelAlias.model_id == model.id).order_by(ModelAlias.alias))
    return {a: int(n) for a, n in rows}


def set_alias(session: Session, p: Principal, model: RegisteredModel, alias: str, version: int | str) -> tuple[
        ModelAlias, int | None]:
    """Point ``alias`` at a version (creating or moving it); returns the alias and the old version."""
    p.require(Role.member, "moving an alias")
    check_alias(alias)
    v = get_version(session, model, version)
    row = session.get(ModelAlias, (model.id, alias))
    old = None
    if row is None:
        row = ModelAlias(model_id=model.id, alias=alias, version_id=v.id, updated_by=p.user_id)
        session.add(row)
    else:
        prev = session.get(ModelVersion, row.version_id)
        old = prev.version if prev else None
        row.version_id, row.updated_by, row.updated_at = v.id, p.user_id, utcnow()
    session.flush()
    return row, old


def delete_alias(session: Session, p: Principal, model: RegisteredModel, alias: str) -> int:
    from consortium.errors import Conflict
    from consortium.store.tables.registry import Deployment

    p.require(Role.member, "removing an alias")
    row = session.get(ModelAlias, (model.id, alias))
    if row is None:
        raise NotFound(f"model {model.name} has no alias {alias!r}")
    used = session.scalars(select(Deployment.name).where(Deployment.model_id == model.id,
                                                         Deployment.alias == alias)).all()
    if used:
        raise Conflict(f"deployment(s) {', '.join(used)} follow alias {alias!r}",
                       hint="move the alias instead, or undeploy them first")
    v = session.get(ModelVersion, row.version_id)
    session.delete(row)
    return v.version if v else 0


# ---------------------------------------------------------------------------------------- content
def read_onnx(session: Session, blobs: SealedBlobs, v: ModelVersion) -> bytes:
    """The decrypted ONNX bytes of a version, checked against the recorded digest."""
    model = model_of(session, v)
    data = blobs.read(session, model.org_id, v.blob_key)
    if hashlib.sha256(data).hexdigest() != v.onnx_sha256:
        from consortium.errors import IntegrityError

        raise IntegrityError(f"model version {v.id} does not match its recorded digest")
    return data


def onnx_by_id(factory: sessionmaker[Session], blobs: SealedBlobs, version_id: str) -> bytes:
    """``read_onnx`` of a version by id, in a session of its own: the model loader serving is given."""
    with factory() as s:
        v = s.get(ModelVersion, version_id)
        if v is None:
            raise NotFound(f"model version {version_id!r} not found")
        return read_onnx(s, blobs, v)


def read_plot(session: Session, blobs: SealedBlobs, v: ModelVersion, name: str) -> bytes:
    key = (v.plots or {}).get(name)
    if key is None:
        raise NotFound(f"version {v.version} has no plot {name!r}",
                       hint=f"available: {', '.join(sorted(v.plots or {})) or '(none)'}")
    model = model_of(session, v)
    return blobs.read(session, model.org_id, key)
