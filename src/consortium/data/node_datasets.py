"""Node datasets: catalog entries whose rows stay at an organization's node.

A site saves its rows in its node's data directory (``consortium nodes add-data``); its
``consortium node`` advertises each dataset's schema and statistics (never rows). Published
(``consortium node --publish``, or the demo's seed), an advertised dataset becomes a catalog
entry ``org/name`` like any other: grants, projects and federated jobs name it, and its owner and
grantees see its columns and statistics. Its versions have the format ``node``: no blob, no file,
no checksum of rows; the schema says which node holds the rows. Reading rows from the hub
(preview rows, download, a centralized job) is refused with the reason; a federated job trains on
it at the node that advertises it.

>>> s = hub_schema({"name": "bc", "kind": "tabular", "rows": 3, "target": "y", "classes": ["a", "b"],
...                 "columns": [{"name": "x", "type": "float64"}, {"name": "y", "type": "int64"}],
...                 "stats": {"x": {"mean": 1.0, "std": 0.5, "min": 0.0, "max": 2.0}}}, "site-1")
>>> s["columns"][0], s["class_names"], s["node"]
({'name': 'x', 'type': 'float', 'min': 0.0, 'max': 2.0, 'mean': 1.0, 'std': 0.5}, ['a', 'b'], 'site-1')
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy.orm import Session

from consortium.data import catalog
from consortium.errors import Conflict, InvalidInput
from consortium.governance.principal import Principal
from consortium.governance.roles import Role
from consortium.store.tables.base import new_id
from consortium.store.tables.data import Dataset, DatasetVersion

FORMAT = "node"


def is_node(v: DatasetVersion) -> bool:
    """Whether the version's rows are at a node (no blob at the hub)."""
    return v.format == FORMAT


def where(v: DatasetVersion) -> str:
    return f"node {v.schema.get('node') or '?'} of its organization"


def refuse_rows(full_name: str, v: DatasetVersion, what: str) -> InvalidInput:
    """The refusal for reading a node dataset's rows at the hub (``what``: the attempted read)."""
    return InvalidInput(f"{full_name} v{v.version} is a node dataset: its rows stay at {where(v)}, "
                        f"so the hub cannot {what}",
                        hint="train on it with a federated job (federated.datasets) while that node is online")


def _type(dtype: str) -> str:
    d = dtype.lower()
    return "float" if d.startswith("float") else "int" if d.startswith(("int", "uint")) else \
        "bool" if d == "bool" else "string"


def hub_schema(advertised: dict[str, Any], node: str) -> dict[str, Any]:
    """The catalog schema of one advertised dataset (what ``consortium node`` sends)."""
    kind = advertised.get("kind")
    rows = advertised.get("rows")
    if kind not in ("tabular", "image") or not isinstance(rows, int) or rows < 0:
        raise InvalidInput(f"advertised dataset {advertised.get('name')!r} needs a kind (tabular or image) "
                           "and a row count", hint="advertise it with `consortium node` of this version")
    out: dict[str, Any] = {"kind": kind, "rows": rows, "node": node,
                           "class_names": [str(c) for c in advertised.get("classes") or []]}
    if kind == "image":
        out["image_shape"] = list(advertised.get("shape") or [])
        return out
    stats = advertised.get("stats") or {}
    cols = []
    for c in advertised.get("columns") or []:
        name = str(c.get("name"))
        col: dict[str, Any] = {"name": name, "type": _type(str(c.get("type", "")))}
        s = stats.get(name) or {}
        col.update({k: s[k] for k in ("min", "max", "mean", "std") if isinstance(s.get(k), (int, float))})
        cols.append(col)
    out["columns"], out["target"] = cols, advertised.get("target")
    return out


def column_mismatch(expected: dict[str, Any], got: dict[str, Any]) -> str | None:
    """How schema ``got`` differs from ``expected`` (catalog schemas), naming the first column or
    shape that differs; None when they agree. Integer and float columns agree (a partition may
    hold only whole numbers).

    >>> a = {"kind": "tabular", "columns": [{"name": "x", "type": "float"}, {"name": "y", "type": "int"}]}
    >>> column_mismatch(a, {"kind": "tabular", "columns": [{"name": "y", "type": "int"}]})
    "lacks column 'x'"
    >>> column_mismatch(a, {"kind": "tabular", "columns": [*a["columns"], {"name": "z", "type": "string"}]})
    "has column 'z', which the others lack"
    >>> column_mismatch(a, {"kind": "tabular", "columns": [{"name": "x", "type": "string"}, a["columns"][1]]})
    "has column 'x' as string, the others as float"
    >>> column_mismatch(a, {"kind": "tabular", "columns": [a["columns"][0], {"name": "y", "type": "integer"}]})
    """
    if expected.get("kind") != got.get("kind"):
        return f"is {got.get('kind')} data, the others {expected.get('kind')}"
    if expected.get("kind") == "image":
        a, b = expected.get("image_shape"), got.get("image_shape")
        return None if not a or not b or list(a) == list(b) else f"has images of shape {b}, the others {a}"
    numeric = {"int", "integer", "float", "bool", "boolean"}  # a node's dtypes and the hub's profile types
    want = {c["name"]: str(c.get("type", "")) for c in expected.get("columns", [])}
    have = {c["name"]: str(c.get("type", "")) for c in got.get("columns", [])}
    for name in want:
        if name not in have:
            return f"lacks column {name!r}"
    for name in have:
        if name not in want:
            return f"has column {name!r}, which the others lack"
    for name, t in want.items():
        if have[name] != t and not {have[name], t} <= numeric:
            return f"has column {name!r} as {have[name]}, the others as {t}"
    return None


def digest(advertised: dict[str, Any], node: str) -> str:
    """The checksum of the catalog version an advertised dataset makes (its schema and
    statistics as ``node`` advertises them; no row goes into it)."""
    schema = hub_schema(advertised, node)
    return "node:" + hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()[:64]


def withdrawn_copies(session: Session, org_id: str, org_name: str, node: str,
                     advertised: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The withdrawn versions of the organization's node datasets that ``node`` still advertises
    (the same schema and statistics, so the same rows): the node must delete its copy."""
    from sqlalchemy import select

    from consortium.store.tables.protection import DatasetWithdrawal

    by_sum: dict[str, str] = {}
    for d in advertised:
        try:
            by_sum[digest(d, node)] = str(d.get("name"))
        except InvalidInput:
            continue
    if not by_sum:
        return []
    rows = session.scalars(select(DatasetWithdrawal).where(DatasetWithdrawal.org_id == org_id,
                                                           DatasetWithdrawal.checksum.in_(sorted(by_sum))))
    return [{"withdrawal": w.id, "dataset": by_sum[w.checksum], "version": w.version, "checksum": w.checksum}
            for w in rows if w.dataset == f"{org_name}/{by_sum[w.checksum]}"]


def publish(session: Session, p: Principal, node: str, advertised: dict[str, Any],
            description: str = "") -> tuple[DatasetVersion, bool]:
    """Make (or refresh) the catalog entry of a dataset that ``node`` of ``p``'s organization
    advertises. A new version only when the schema or statistics changed; ``(version, created)``.
    A name already held by a hub dataset (uploaded rows) is a ``Conflict``."""
    p.require(Role.admin, "publishing a node's dataset")
    name = catalog.check_name(str(advertised.get("name")))
    schema = hub_schema(advertised, node)
    checksum = digest(advertised, node)
    ds = catalog.find(session, p.org_name, name)
    if ds is None:
        ds = Dataset(id=new_id("ds"), org_id=p.org_id, name=name, created_by=p.user_id,
                     description=description or f"rows at node {node}")
        session.add(ds)
        session.flush()
    else:
        latest = catalog.versions(session, ds)
        if latest and not is_node(latest[-1]):
            raise Conflict(f"{p.org_name}/{name} is a hub dataset (uploaded rows), not a node dataset",
                           hint="rename the node's dataset, or keep the hub dataset: a node advertising a "
                                "dataset of the same name still trains on its own rows")
        if latest and latest[-1].checksum == checksum:
            return latest[-1], False
        if withdrawn_copies(session, p.org_id, p.org_name, node, [advertised]):
            raise Conflict(f"{p.org_name}/{name} as node {node} advertises it was withdrawn; it is not "
                           "published again", hint="the node deletes its copy at its next heartbeat")
    v = DatasetVersion(id=new_id("dsv"), dataset_id=ds.id, version=catalog.next_version(session, ds),
                       format=FORMAT, kind=schema["kind"], filename="", size_bytes=0, checksum=checksum,
                       blob_key="", blob_size=0, row_count=schema["rows"], target=schema.get("target"),
                       schema=schema, created_by=p.user_id)
    session.add(v)
    session.flush()
    return v, True
