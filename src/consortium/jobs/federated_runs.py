"""The hub's side of a federated run's nodes: which node agents join, their admission to the
job's SuperLink, their assignments, and the processes a dead worker left behind.

A joining node is an online ``consortium node`` agent of a participating organization, either
at the organization's site (it advertises a local dataset named like the hub dataset and trains
on its own rows) or on the hub's machine reading the hub's node directory of its organization
(``is_hosted``; the hub stages a hub dataset's rows there). ``consortium up``'s demo nodes are of
the first kind: their data directories are the demo sites' own, outside the hub's home.
``admit`` registers their public keys with the SuperLink (node authentication) and returns what
their assignment needs to connect (the CA certificate). ``sweep_orphans`` kills the Flower
processes of jobs whose worker died (tag ``job-<id>.<attempt>``, see
``consortium.federation.engine.processes``). ``refusal_event`` is the audit record of a SuperNode
the job's SuperLink refused (``federation.node_refused``, outcome ``denied``): the key's
fingerprint, the caller's address, Flower's reason, and the registered node the key belongs to
(a node of an organization not admitted to this job), if any.

>>> from types import SimpleNamespace
>>> is_hosted(SimpleNamespace(agent={"host": "elsewhere", "data_dir": "/x"}), Path("/x"))
False
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consortium.errors import InvalidInput
from consortium.governance.audit import EventDraft
from consortium.jobs import federated_nodes
from consortium.store.tables.federation import FederationNode


def is_hosted(node: Any, root: Path) -> bool:
    """Whether ``node`` is an agent on this machine whose data directory is ``root`` (the hub's
    node directory of its organization)."""
    agent = node.agent or {}
    return agent.get("host") == platform.node() and agent.get("data_dir") == str(root.resolve())


def joining_nodes(session: Session, datasets: list[dict[str, Any]], nodes_dir: Path) -> dict[str, dict[str, Any]]:
    """Organizations whose own online node agent joins the run: org name -> {org_id, node_id,
    node, public_key, ref, version, where, dataset}. ``datasets``: the job's resolved datasets;
    ``nodes_dir``: the hub's ``CONSORTIUM_HOME/nodes``. ``where`` is ``site`` (preferred; its
    local ``dataset`` is named like the hub dataset) or ``hub`` (``dataset`` set once staged)."""
    out = {}
    for d in datasets:
        name, root = d["dataset"].split("/")[-1], nodes_dir / d["owner"]
        online = federated_nodes.online_nodes(session, d["owner_org_id"])
        site = next((n for n in online if not is_hosted(n, root) and any(x.get("name") == name for x in n.datasets)),
                    None)
        if site is not None:
            _same_columns(session, d, site, name)
        node = site or next((n for n in online if is_hosted(n, root)), None)
        if node is not None:
            out[d["owner"]] = {"org_id": d["owner_org_id"], "node_id": node.id, "node": node.name,
                               "public_key": (node.agent or {}).get("public_key"), "ref": d["dataset"],
                               "version": d["version"], "where": "site" if site else "hub",
                               "dataset": name if site else None}
    return out


def _same_columns(session: Session, d: dict[str, Any], node: Any, name: str) -> None:
    """A site node's local dataset must have the columns of the job's dataset (its catalog schema):
    one that differs is refused, naming the node and the column."""
    from consortium.data.node_datasets import column_mismatch, hub_schema
    from consortium.store.tables.data import DatasetVersion

    v = session.scalar(select(DatasetVersion).where(DatasetVersion.dataset_id == d["dataset_id"],
                                                    DatasetVersion.version == d["version"]))
    advertised = next(x for x in node.datasets if x.get("name") == name)
    diff = column_mismatch(v.schema, hub_schema(advertised, node.name)) if v is not None else None
    if diff:
        raise InvalidInput(f"node {node.name} of {d['owner']} advertises a dataset {name!r} that {diff} "
                           f"(the job's {d['dataset']} v{d['version']})",
                           hint="save the same columns at the site (`consortium nodes add-data`), then rerun")


def assign_nodes(session: Session, job_id: str, joining: dict[str, dict[str, Any]], superlink: str, state: str,
                 security: dict[str, Any] | None = None) -> None:
    """Tell every joining node to join the run at ``superlink`` (``run``) or to leave it (``done``)."""
    for r in joining.values():
        node = session.get(FederationNode, r["node_id"])
        if node is not None:
            federated_nodes.assign(session, job_id, r["org_id"], node, superlink, r["dataset"], state, security)


def admit(dep: Any, joining: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Register the joining nodes' keys with the ``FlowerDeployment``'s SuperLink; returns what their
    assignment needs to connect (the CA certificate, or ``insecure``)."""
    if not dep.secure:
        return {"insecure": True}
    for org, r in joining.items():
        if not r["public_key"]:
            raise InvalidInput(f"node {r['node']} of {org} sent no public key, so it cannot join a secure SuperLink",
                               hint="restart the node with this version of `consortium node`")
        dep.register_node(r["public_key"], f"{org}/{r['node']}")
    return {"root_certificates": dep.root_certificates}


def sweep_orphans(session: Session, job_id: str | None = None) -> dict[str, list[int]]:
    """Kill Flower processes of this hub's jobs left by dead workers: those of jobs that no
    longer run and of earlier attempts (only ``job_id``'s when given). Returns tag -> pids.
    Jobs this database does not know are left alone."""
    from consortium.federation.engine.processes import all_tagged, parse_job_tag, sweep
    from consortium.store.tables.jobs import Job

    killed = {}
    for tag in all_tagged():
        parsed = parse_job_tag(tag)
        if parsed is None or (job_id is not None and parsed[0] != job_id):
            continue
        job = session.get(Job, parsed[0])
        if job is not None and (job.state != "running" or parsed[1] != job.attempts):
            killed[tag] = sweep(tag)
    return killed


def refusal_event(session: Session, job_id: str, job_org_id: str, refusal: Any) -> EventDraft:
    """The audit record of one SuperNode the job's SuperLink refused (a ``Refusal``)."""
    from consortium.governance.identity import org_by_id

    details: dict[str, Any] = {"job_id": job_id, "route": refusal.route, "reason": refusal.reason,
                               "peer": refusal.peer, "key_fingerprint": refusal.fingerprint}
    key = refusal.openssh
    owner = None
    if key is not None:
        owner = next((n for n in session.scalars(select(FederationNode))
                      if (n.agent or {}).get("public_key", "").split()[:2] == key.split()[:2]), None)
    if owner is not None:
        details["node"] = f"{org_by_id(session, owner.org_id).name}/{owner.name}"
    else:
        details["node"] = None  # a key no registered node of this hub holds
    return EventDraft("federation.node_refused", outcome="denied", request_id=job_id,
                      actor_org_id=owner.org_id if owner is not None else None, resource_type="job",
                      resource_id=job_id, resource_org_id=job_org_id, details=details)
