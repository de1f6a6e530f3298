"""Hub side of nodes: registration, heartbeats, advertised datasets and per-job approvals.

A node (``consortium node`` at an organization's site) registers with its organization's API
token, heartbeats, and advertises the datasets in its data directory as schema and statistics
only. Its ``approve`` mode is the data owner's choice: ``auto`` (every federated job that names
the organization's datasets may use them) or ``manual`` (each job waits until an admin of the
organization approves it with ``POST /api/v1/nodes/{node}/approve/{job_id}``). A federated job
opens one approval record per participating organization that has a manual node and shows the
ones still pending in its progress.

>>> clean_datasets([{"name": "bc", "kind": "tabular", "rows": 3, "columns": [], "data": [[1]]}])
[{'name': 'bc', 'kind': 'tabular', 'rows': 3, 'columns': []}]
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consortium.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from consortium.governance.identity import org_by_id
from consortium.governance.names import NameRule
from consortium.governance.principal import Principal
from consortium.governance.roles import Role
from consortium.store.paging import Listing
from consortium.store.tables.base import new_id, utcnow
from consortium.store.tables.federation import FederationNode, NodeApproval
from consortium.store.tables.jobs import Job

NODE_NAME = NameRule("node name", re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$"),
                     "use up to 63 lowercase letters, digits, '.', '_' and '-', starting with a letter "
                     "or digit")
APPROVE_MODES = ("auto", "manual")
ADVERTISED_KEYS = ("name", "kind", "rows", "columns", "target", "classes", "shape", "stats", "site_policy")
ONLINE_S = 60.0


def clean_datasets(datasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep only schema/statistics keys of each advertised dataset (rows never reach the hub)."""
    if len(datasets) > 200:
        raise InvalidInput("a node may advertise at most 200 datasets")
    out = []
    for d in datasets:
        if not isinstance(d, dict) or not isinstance(d.get("name"), str):
            raise InvalidInput("each advertised dataset needs a name")
        out.append({k: d[k] for k in ADVERTISED_KEYS if k in d})
    return out


def register(session: Session, p: Principal, name: str, *, approve: str = "auto",
             datasets: list[dict[str, Any]] | None = None, agent: dict[str, Any] | None = None) -> FederationNode:
    """Register (or re-register) the caller's organization's node ``name``; admins only."""
    p.require(Role.admin, "registering a node")
    NODE_NAME.check(name)
    if approve not in APPROVE_MODES:
        raise InvalidInput(f"approve must be one of {', '.join(APPROVE_MODES)}; got {approve!r}")
    node = session.scalar(select(FederationNode).where(FederationNode.org_id == p.org_id,
                                                       FederationNode.name == name))
    if node is None:
        node = FederationNode(id=new_id("node"), org_id=p.org_id, name=name, registered_by=p.user_id)
        session.add(node)
    node.approve = approve
    node.datasets = clean_datasets(datasets or [])
    node.agent = dict(agent or {})
    if node.agent.get("public_key") is not None:
        from consortium.federation.engine.pki import check_public_key

        node.agent["public_key"] = check_public_key(str(node.agent["public_key"]))
    node.last_seen = utcnow()
    session.flush()
    return node


def site_policies(node: FederationNode | list[dict[str, Any]]) -> dict[str, Any]:
    """Dataset name -> the rules the node enforces on it itself (what it advertises as ``site_policy``)."""
    datasets = node if isinstance(node, list) else node.datasets or []
    return {str(d["name"]): d["site_policy"] for d in datasets if isinstance(d.get("site_policy"), dict)}


def publish_advertised(session: Session, p: Principal, node: FederationNode) -> list[str]:
    """With ``consortium node --publish`` (``agent.publish``): make each advertised dataset a node
    dataset of the catalog (``consortium.data.node_datasets``) or refresh it; returns ``name vN``
    of the versions made. A name held by a hub dataset is left alone (the node trains on its own
    rows for it anyway)."""
    from consortium.data import node_datasets

    if not (node.agent or {}).get("publish"):
        return []
    made = []
    for d in node.datasets:
        try:
            v, created = node_datasets.publish(session, p, node.name, d)
        except Conflict:
            continue
        if created:
            made.append(f"{d['name']} v{v.version}")
    return made


def get_node(session: Session, p: Principal, ref: str) -> FederationNode:
    """A node of the caller's organization by id or name; others get ``NotFound``."""
    node = session.get(FederationNode, ref) if ref.startswith("node_") else session.scalar(
        select(FederationNode).where(FederationNode.org_id == p.org_id, FederationNode.name == ref))
    if node is None or node.org_id != p.org_id:
        raise NotFound(f"node {ref!r} not found", hint="list your nodes with GET /api/v1/nodes")
    return node


def heartbeat(session: Session, p: Principal, node: FederationNode,
              datasets: list[dict[str, Any]] | None = None) -> FederationNode:
    p.require(Role.admin, "heartbeating a node")
    node.last_seen = utcnow()
    if datasets is not None:
        node.datasets = clean_datasets(datasets)
    session.flush()
    return node


def node_view(session: Session, node: FederationNode, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    return {"id": node.id, "org": org_by_id(session, node.org_id).name, "name": node.name,
            "approve": node.approve, "datasets": node.datasets, "agent": node.agent,
            "created_at": node.created_at, "last_seen": node.last_seen,
            "online": (now - node.last_seen) < timedelta(seconds=ONLINE_S),
            "pending": [a.job_id for a in pending_for_org(session, node.org_id)],
            "assignments": assignments(session, node), "withdrawn": withdrawn(session, node)}


def withdrawn(session: Session, node: FederationNode) -> list[dict[str, Any]]:
    """Withdrawn dataset versions whose copy the node still advertises: it deletes them
    (``consortium.federation.node.agent``) and reports it with its next heartbeat."""
    from consortium.data.node_datasets import withdrawn_copies

    return withdrawn_copies(session, node.org_id, org_by_id(session, node.org_id).name, node.name,
                            node.datasets or [])


def record_deleted(session: Session, node: FederationNode, deleted: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The node deleted these withdrawn copies: each withdrawal of the node's organization records
    it (``effects.node_copies``); returns what was recorded (unknown withdrawals are ignored)."""
    from consortium.store.tables.protection import DatasetWithdrawal

    out = []
    for d in deleted:
        w = session.get(DatasetWithdrawal, d["withdrawal"])
        if w is None or w.org_id != node.org_id:
            continue
        entry = {"node": node.name, "dataset": d["dataset"], "deleted_at": utcnow().isoformat()}
        w.effects = {**(w.effects or {}), "node_copies": [*(w.effects or {}).get("node_copies", []), entry]}
        out.append({"withdrawal": w.id, "dataset": w.dataset, "version": w.version, "dataset_id": w.dataset_id})
    session.flush()
    return out


def assignments(session: Session, node: FederationNode) -> list[dict[str, Any]]:
    """Runs this node should join now (of jobs still running): job id, SuperLink address, local
    dataset name, and the SuperLink's CA certificate (or ``insecure``)."""
    rows = session.scalars(select(NodeApproval).join(Job, Job.id == NodeApproval.job_id)
                           .where(NodeApproval.node_id == node.id, NodeApproval.state == "approved",
                                  Job.state == "running"))
    return [{"job_id": a.job_id, **a.assignment} for a in rows
            if a.assignment and a.assignment.get("state") == "run"]


def online_nodes(session: Session, org_id: str, now: datetime | None = None) -> list[FederationNode]:
    """The organization's nodes seen within ``ONLINE_S``, most recent first."""
    now = now or utcnow()
    return [n for n in session.scalars(select(FederationNode).where(FederationNode.org_id == org_id)
                                       .order_by(FederationNode.last_seen.desc()))
            if (now - n.last_seen) < timedelta(seconds=ONLINE_S)]


def assign(session: Session, job_id: str, org_id: str, node: FederationNode, superlink: str, dataset: str,
           state: str = "run", security: dict[str, Any] | None = None) -> None:
    """Tell ``node`` (through its next heartbeat) to join the job's run, or to leave it (``done``).

    ``security``: ``{"root_certificates": PEM}`` (TLS) or ``{"insecure": True}``."""
    row = session.scalar(select(NodeApproval).where(NodeApproval.org_id == org_id, NodeApproval.job_id == job_id))
    if row is None:
        raise NotFound(f"no approval record of job {job_id} for the node's organization")
    row.node_id = node.id
    row.assignment = {"superlink": superlink, "dataset": dataset, "state": state, **(security or {})}
    session.flush()


def list_nodes(session: Session, p: Principal) -> list[FederationNode]:
    return nodes_listing(p).all(session)


def nodes_listing(p: Principal) -> Listing:
    return Listing(select(FederationNode).where(FederationNode.org_id == p.org_id),
                   (FederationNode.name,))  # unique per organization


def manual_node(session: Session, org_id: str) -> FederationNode | None:
    """The organization's node that asks for approval, if any (manual wins over auto)."""
    return session.scalar(select(FederationNode).where(FederationNode.org_id == org_id,
                                                       FederationNode.approve == "manual")
                          .order_by(FederationNode.created_at))


def open_approvals(session: Session, job_id: str, org_ids: list[str],
                   manual: set[str] | frozenset[str] = frozenset()) -> dict[str, str]:
    """Create the job's approval records (idempotent); returns org id -> state.

    Organizations without a manual node are approved at once (``auto``), unless they are in
    ``manual`` (a dataset policy of theirs asks to approve every job)."""
    states = {}
    for org_id in org_ids:
        row = session.scalar(select(NodeApproval).where(NodeApproval.org_id == org_id,
                                                        NodeApproval.job_id == job_id))
        if row is None:
            node = manual_node(session, org_id)
            wait = node is not None or org_id in manual
            row = NodeApproval(id=new_id("apr"), org_id=org_id, job_id=job_id,
                               node_id=node.id if node else None,
                               state="pending" if wait else "approved",
                               decided_at=None if wait else utcnow())
            session.add(row)
        states[org_id] = row.state
    session.flush()
    return states


def approval_states(session: Session, job_id: str) -> dict[str, str]:
    return {a.org_id: a.state for a in session.scalars(select(NodeApproval).where(NodeApproval.job_id == job_id))}


def pending_for_org(session: Session, org_id: str) -> list[NodeApproval]:
    return list(session.scalars(select(NodeApproval).where(NodeApproval.org_id == org_id,
                                                           NodeApproval.state == "pending")))


def decide(session: Session, p: Principal, node: FederationNode, job_id: str, approve: bool) -> NodeApproval:
    """An admin of the node's organization approves or rejects one job's use of its data."""
    p.require(Role.admin, "approving federated jobs")
    if node.org_id != p.org_id:
        raise PermissionDenied("only the node's organization decides on its jobs")
    row = session.scalar(select(NodeApproval).where(NodeApproval.org_id == p.org_id, NodeApproval.job_id == job_id))
    if row is None:
        if session.get(Job, job_id) is None:  # a decision ahead of the job's request is kept
            raise NotFound(f"job {job_id!r} not found")
        row = NodeApproval(id=new_id("apr"), org_id=p.org_id, job_id=job_id, node_id=node.id)
        session.add(row)
    row.state = "approved" if approve else "rejected"
    row.decided_by, row.decided_at, row.node_id = p.user_id, utcnow(), node.id
    session.flush()
    return row
