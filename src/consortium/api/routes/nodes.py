"""Federation nodes (register, heartbeat, approvals) and dataset privacy budgets."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from consortium.api.access import rule
from consortium.api.context import RequestContext
from consortium.api.deps import Admin, Caller, Ctx, SessionDep, Viewer
from consortium.api.pagination import Paged, PageDep
from consortium.api.routes.datasets import readable
from consortium.api.schemas.nodes import (
    NodeCreate,
    NodeDecision,
    NodeHeartbeat,
    NodePublic,
    PrivacyBudgetPublic,
    PrivacyBudgetUpdate,
)
from consortium.data.catalog import Dataset
from consortium.errors import PermissionDenied
from consortium.governance.audit import EventDraft
from consortium.governance.principal import Principal
from consortium.governance.roles import Role
from consortium.jobs import federated_budgets, federated_nodes
from consortium.jobs.federated_nodes import FederationNode

router = APIRouter(tags=["nodes"])


def _node(node: str, p: Caller, session: SessionDep, ctx: Ctx) -> FederationNode:
    n = federated_nodes.get_node(session, p, node)
    ctx.resource("node", n.id, n.org_id)
    return n


def _admin_node(node: str, p: Caller, session: SessionDep, ctx: Ctx) -> FederationNode:
    n = _node(node, p, session, ctx)
    p.require(Role.admin, "managing a node")
    return n


def _owned_dataset(ds: Annotated[Dataset, Depends(readable)], p: Caller) -> Dataset:
    if ds.org_id != p.org_id:
        raise PermissionDenied("only the dataset's owner sets its privacy budget")
    p.require(Role.admin, "setting a privacy budget")
    return ds


NodeDep = Annotated[FederationNode, Depends(_node)]
AdminNode = Annotated[FederationNode, Depends(_admin_node)]
OwnedDataset = Annotated[Dataset, Depends(_owned_dataset)]


@router.post("/nodes", status_code=201, response_model=NodePublic)
@rule("org", Role.admin)
def register_node(body: NodeCreate, p: Admin, session: SessionDep, ctx: Ctx) -> dict[str, Any]:
    """Register (or re-register) a node of your organization and what it advertises (never rows)."""
    n = federated_nodes.register(session, p, body.name, approve=body.approve, datasets=body.datasets, agent=body.agent)
    ctx.resource("node", n.id, n.org_id)
    ctx.details = {"name": n.name, "approve": n.approve, "datasets": [d["name"] for d in n.datasets],
                   "published": federated_nodes.publish_advertised(session, p, n),
                   "site_policies": federated_nodes.site_policies(n)}
    return federated_nodes.node_view(session, n)


@router.get("/nodes", response_model=Paged[NodePublic])
@rule("org")
def list_nodes(p: Viewer, session: SessionDep, page: PageDep) -> dict[str, Any]:
    """Your organization's nodes by name, whether they are online, and jobs waiting for your approval."""
    found = federated_nodes.nodes_listing(p).page(session, page.after, page.limit)
    return page.map(found, lambda n: federated_nodes.node_view(session, n))


@router.get("/nodes/{node}", response_model=NodePublic)
@rule("resource")
def get_node(n: NodeDep, session: SessionDep) -> dict[str, Any]:
    return federated_nodes.node_view(session, n)


@router.post("/nodes/{node}/heartbeat", response_model=NodePublic)
@rule("resource", Role.admin)
def heartbeat_node(n: AdminNode, p: Caller, session: SessionDep, ctx: Ctx,
                   body: NodeHeartbeat | None = None) -> dict[str, Any]:
    """Mark the node alive; optionally refresh its advertised datasets. A beat is audited when it
    changes the advertisement or hands the node runs to join; a bare liveness beat is not."""
    before = list(n.datasets)
    federated_nodes.heartbeat(session, p, n, body.datasets if body else None)
    deleted = federated_nodes.record_deleted(session, n, [d.model_dump() for d in body.deleted]) if body else []
    view = federated_nodes.node_view(session, n)
    changed = n.datasets != before
    published = federated_nodes.publish_advertised(session, p, n) if changed else []
    ctx.audit = changed or bool(view["assignments"]) or bool(deleted) or bool(view["withdrawn"])
    ctx.details = {"datasets_changed": changed, "runs": [a["job_id"] for a in view["assignments"]],
                   **({"published": published} if published else {})}
    if changed and federated_nodes.site_policies(n) != federated_nodes.site_policies(before):
        ctx.details["site_policies"] = federated_nodes.site_policies(n)  # the site's own rules changed
    if view["withdrawn"]:  # copies the node is told to delete, and those it reports deleted
        ctx.details["withdrawn_to_delete"] = [w["withdrawal"] for w in view["withdrawn"]]
    if deleted:
        ctx.details["deleted_withdrawn"] = [{k: d[k] for k in ("withdrawal", "dataset", "version")} for d in deleted]
    for d in deleted:  # in the dataset's own trail too, beside its withdrawal
        ctx.extra.append(EventDraft("withdrawal.node_copy_deleted", request_id=ctx.request_id,
                                    actor_user_id=p.user_id, actor_org_id=p.org_id, resource_type="dataset",
                                    resource_id=d["dataset_id"], resource_org_id=n.org_id,
                                    details={"withdrawal": d["withdrawal"], "dataset": d["dataset"],
                                             "version": d["version"], "node": n.name}))
    return view


@router.post("/nodes/{node}/approve/{job_id}", response_model=NodeDecision)
@rule("resource", Role.admin)
def approve_job(n: AdminNode, job_id: str, p: Caller, session: SessionDep, ctx: Ctx) -> NodeDecision:
    """Let a federated job use your organization's data (needed when the node's approve mode is manual)."""
    return _decide(n, job_id, p, session, ctx, True)


@router.post("/nodes/{node}/reject/{job_id}", response_model=NodeDecision)
@rule("resource", Role.admin)
def reject_job(n: AdminNode, job_id: str, p: Caller, session: SessionDep, ctx: Ctx) -> NodeDecision:
    """Refuse a federated job the use of your organization's data; the job fails, naming you."""
    return _decide(n, job_id, p, session, ctx, False)


def _decide(n: FederationNode, job_id: str, p: Principal, session: Session, ctx: RequestContext,
            approve: bool) -> NodeDecision:
    a = federated_nodes.decide(session, p, n, job_id, approve)
    ctx.details = {"job": job_id, "state": a.state}
    return NodeDecision(job_id=job_id, org=p.org_name, node=n.name, state=a.state)


@router.get("/datasets/{org}/{dataset}/privacy-budget", response_model=PrivacyBudgetPublic)
@rule("resource")
def get_privacy_budget(ds: Annotated[Dataset, Depends(readable)], session: SessionDep) -> dict[str, Any]:
    """The dataset's privacy budget (epsilon at delta), what jobs spent and what remains."""
    return federated_budgets.budget_view(session, ds)


@router.put("/datasets/{org}/{dataset}/privacy-budget", response_model=PrivacyBudgetPublic)
@rule("resource", Role.admin)
def set_privacy_budget(ds: OwnedDataset, body: PrivacyBudgetUpdate, p: Caller, session: SessionDep,
                       ctx: Ctx) -> dict[str, Any]:
    """Set the most epsilon federated DP jobs may spend on this dataset; jobs over it are refused."""
    federated_budgets.set_budget(session, p, ds, body.epsilon, body.delta)
    ctx.details = {"epsilon": body.epsilon, "delta": body.delta}
    return federated_budgets.budget_view(session, ds)
