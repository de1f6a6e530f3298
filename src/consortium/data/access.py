"""Reading a dataset version, by permission: statistics (``metadata``), rows in memory for training
(``compute``), rows to the caller (``download``). Every check runs at call time, so a revoked
grant stops the next read.

The training and federated stages call ``load_for_compute``; it hands back a ``DataFrameSet`` to
code running inside the hub and is never exposed as a download route.

>>> from consortium.data.access import load_for_compute                       # doctest: +SKIP
>>> data = load_for_compute(session, principal, "st-marys-hospital/breast-cancer", 1,
...                         services.blobs)                                    # doctest: +SKIP
>>> data.kind, data.target                                                    # doctest: +SKIP
('tabular', 'target')
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from consortium.data import catalog, node_datasets
from consortium.governance.principal import Principal
from consortium.governance.roles import Permission
from consortium.governance.sealed import SealedBlobs
from consortium.store.tables.data import Dataset, DatasetVersion

if TYPE_CHECKING:
    from consortium.data.frame import DataFrameSet

PREVIEW_MAX = 100


def _source(session: Session, blobs: SealedBlobs, ds: Dataset,
            v: DatasetVersion) -> Callable[[], Iterator[bytes]]:
    def source() -> Iterator[bytes]:
        return blobs.stream(session, ds.org_id, v.blob_key)

    return source


def load_for_compute(session: Session, principal: Principal, dataset_ref: str,
                     version: int | str | None, blobs: SealedBlobs) -> DataFrameSet:
    """The rows of ``dataset_ref`` (``org/name`` or a dataset id) at ``version`` (None: latest),
    read from ``blobs`` (``Services.blobs``) and decrypted in memory, for training inside the hub.
    Needs ownership or a ``compute`` grant (``download`` implies it); anything else is ``NotFound``."""
    from consortium.data import formats

    ds, v = resolve_version(session, principal, dataset_ref, version, Permission.compute)
    if node_datasets.is_node(v):
        raise node_datasets.refuse_rows(catalog.full_name(session, ds), v, "load its rows for training here")
    data = formats.load(v.format, _source(session, blobs, ds, v), v.schema, blobs.scratch_dir)
    if data.kind == "tabular" and (v.schema.get("class_names") or v.schema.get("classes")):
        data.class_names = list(v.schema.get("class_names") or v.schema["classes"])
    return data


def resolve_version(session: Session, p: Principal, dataset_ref: str, version: int | str | None,
                    permission: Permission) -> tuple[Dataset, DatasetVersion]:
    if dataset_ref.startswith("ds_"):
        ds = session.get(Dataset, dataset_ref)
        if ds is None:
            from consortium.errors import NotFound

            raise NotFound(f"dataset {dataset_ref!r} not found", hint=catalog.NOT_FOUND_HINT)
        from consortium.governance import grants  # by id: the refusal must not name the dataset

        grants.authorize(session, p, catalog.RTYPE, ds.id, ds.org_id, permission, what=f"dataset {dataset_ref!r}",
                         hint=catalog.NOT_FOUND_HINT)
    else:
        org, name = catalog.parse_ref(dataset_ref, default_org=p.org_name)
        ds = catalog.visible(session, p, org, name, permission)
    return ds, catalog.version(session, ds, version)


def preview(session: Session, blobs: SealedBlobs, p: Principal, ds: Dataset, v: DatasetVersion,
            rows: int = 10) -> dict[str, Any]:
    """Statistics for any ``metadata`` holder; the first ``rows`` rows only for the owner or a
    ``download`` grantee (others get ``rows: null`` and the reason)."""
    from consortium.data import formats

    catalog.authorize(session, p, ds, Permission.metadata)
    out: dict[str, Any] = {"dataset": catalog.full_name(session, ds), **catalog.version_view(v)}
    n = max(0, min(rows, PREVIEW_MAX))
    if not catalog.may_read_rows(session, p, ds):
        out["rows_preview"] = None
        out["rows_hidden"] = "rows are shown to the owner and to organizations with a download grant"
    elif node_datasets.is_node(v):
        out["rows_preview"] = None
        out["rows_hidden"] = f"a node dataset: the rows stay at {node_datasets.where(v)}; the hub holds its " \
                             "schema and statistics only"
    else:
        out["rows_preview"] = formats.head(v.format, _source(session, blobs, ds, v), v.schema, n,
                                           blobs.scratch_dir) if n else []
    return out


def download(session: Session, blobs: SealedBlobs, p: Principal, ds: Dataset,
             v: DatasetVersion) -> Iterator[bytes]:
    """The version's original file, decrypted as it streams; owner or ``download`` grantees."""
    catalog.authorize(session, p, ds, Permission.download)
    if node_datasets.is_node(v):
        raise node_datasets.refuse_rows(catalog.full_name(session, ds), v, "send its file")
    return _source(session, blobs, ds, v)()


def filename(session: Session, ds: Dataset, v: DatasetVersion) -> str:
    ext = {"csv": "csv", "parquet": "parquet", "npz": "npz", "image_zip": "zip"}[v.format]
    return f"{ds.name}-v{v.version}.{ext}"
