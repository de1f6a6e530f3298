"""Importing scikit-learn's bundled datasets (``consortium.data.samples``) as real dataset versions.

A sample (or one partition of it) is written as a file, CSV for tables and NPZ for images, byte
for byte the same on every run, and goes through the same ``ingest`` as any upload; importing the
same thing twice therefore creates nothing the second time.

Who may write where: by default the caller's own organization (role member), partition ``part``
of ``partitions``; the owner of each organization imports its share with its own token. An API
token acts in one organization only, so spreading the partitions over several organizations in
one call (``to_orgs``) is for hub operators (seeding a demo or a test bed); each organization
still gets its own dataset, encrypted with its own key, and an audit event of its own.

>>> raw, fmt = sample_file("iris", partitions=3, part=2, skew="iid", seed=0)
>>> fmt, raw.splitlines()[0][:30]
('csv', b'sepal_length_(cm),sepal_width_')
"""

from __future__ import annotations

import io
import zipfile
from typing import Any, Literal

import numpy as np
from sqlalchemy.orm import Session

from consortium.data import catalog
from consortium.data.frame import DataFrameSet
from consortium.data.ingest import Upload, ingest
from consortium.data.samples import SAMPLES, load_sample, partition
from consortium.errors import InvalidInput, PermissionDenied
from consortium.governance import identity
from consortium.governance.principal import Principal
from consortium.governance.roles import Role
from consortium.governance.sealed import SealedBlobs

Skew = Literal["iid", "label"]


def to_file(data: DataFrameSet) -> tuple[bytes, str]:
    """A deterministic file for a ``DataFrameSet``: (bytes, format)."""
    if data.kind == "tabular":
        return data.table().to_csv(index=False, lineterminator="\n").encode(), "csv"
    images, labels = data.image_arrays()
    arrays = {"images": images, "labels": labels}
    if data.class_names:
        arrays["class_names"] = np.array(data.class_names)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for key, arr in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.ascontiguousarray(arr), allow_pickle=False)
            z.writestr(info, npy.getvalue())
    return buf.getvalue(), "npz"


def sample_file(sample: str, partitions: int = 1, part: int = 1, skew: Skew = "iid",
                seed: int = 0) -> tuple[bytes, str]:
    """Partition ``part`` (1-based) of ``partitions`` of a bundled sample, as a file."""
    if not 1 <= part <= partitions:
        raise InvalidInput(f"part must be between 1 and {partitions}; got {part}")
    data = load_sample(sample)
    if partitions > 1:
        data = partition(data, partitions, skew=skew, seed=seed)[part - 1]
    return to_file(data)


def ingest_sample(session: Session, blobs: SealedBlobs, p: Principal, name: str, sample: str,
                  partitions: int = 1, part: int = 1, skew: Skew = "iid", seed: int = 0) -> tuple[Any, bool]:
    """Store partition ``part`` of a bundled sample as a version of ``p``'s dataset ``name``;
    ``(version, created)`` as ``ingest`` returns them."""
    raw, fmt = sample_file(sample, partitions, part, skew, seed)
    desc = f"scikit-learn sample {sample!r}"
    if partitions > 1:
        desc += f", partition {part}/{partitions} ({skew})"
    up = Upload(filename=f"{name}.{fmt}", format=fmt, target=None if fmt == "npz" else "target",
                description=desc)
    v, created = ingest(session, blobs, p, name, [raw], up)
    if created and fmt == "csv" and (names := load_sample(sample).class_names):
        # a CSV keeps the labels (0, 1, ...) only: their names go with the version, as image
        # datasets keep theirs (label i is names[i]), so models name their classes
        v.schema = {**v.schema, "class_names": list(names)}
    return v, created


def _check_rights(p: Principal, orgs: list[str]) -> None:
    if orgs == [p.org_name]:
        p.require(Role.member, "importing datasets")
    elif not p.is_operator:
        raise PermissionDenied("only a hub operator may import into several organizations at once",
                               hint="or import each partition with that organization's own token "
                                    "(`--partitions N --part K`)")


def import_sample(session: Session, blobs: SealedBlobs, p: Principal, sample: str, name: str | None = None,
                  *, partitions: int = 1, part: int | None = None, skew: Skew = "iid", seed: int = 0,
                  to_orgs: list[str] | None = None) -> list[dict[str, Any]]:
    """Import a bundled sample; returns one entry per organization written to."""
    if sample not in SAMPLES:
        raise InvalidInput(f"no sample dataset {sample!r}", hint=f"choose one of: {', '.join(SAMPLES)}")
    name = catalog.check_name(name or sample.replace("_", "-"))
    if to_orgs:
        if partitions == 1 and len(to_orgs) > 1:
            partitions = len(to_orgs)
        if len(to_orgs) != partitions:
            raise InvalidInput(f"{len(to_orgs)} organizations for {partitions} partitions",
                               hint="give one organization per partition")
        if part is not None:
            raise InvalidInput("give either to_orgs or part, not both")
        plan = [(org, i + 1) for i, org in enumerate(to_orgs)]
    else:
        if partitions > 1 and part is None:
            raise InvalidInput(f"which of the {partitions} partitions goes to {p.org_name}?",
                               hint="pass part (1-based), or to_orgs to spread them across organizations")
        plan = [(p.org_name, part or 1)]
    _check_rights(p, [org for org, _ in plan])
    out = []
    for org_name, k in plan:
        acting = p if org_name == p.org_name else _acting_in(session, p, org_name)
        v, created = ingest_sample(session, blobs, acting, name, sample, partitions, k, skew, seed)
        out.append({"org": org_name, "dataset": f"{org_name}/{name}", "version": v.version,
                    "rows": v.row_count,
                    "part": k, "partitions": partitions, "created": created, "version_id": v.id,
                    "dataset_id": v.dataset_id})
    return out


def _acting_in(session: Session, p: Principal, org_name: str) -> Principal:
    """The caller acting in another organization (rights already checked), for ``ingest``."""
    org = identity.org_by_name(session, org_name)
    return Principal(user_id=p.user_id, user_email=p.user_email, org_id=org.id, org_name=org.name,
                     role=Role.owner if p.is_operator else Role.admin, via=p.via, is_operator=p.is_operator)
