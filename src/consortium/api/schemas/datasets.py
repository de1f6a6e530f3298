"""Datasets: versions, the dataset answers, previews, uploads, deletions and sample imports.

Datasets have no create body (a version upload creates the dataset), so ``DatasetBase`` holds what
every dataset answer shares; ``DatasetVersionPublic`` is the base of the per-version answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from consortium.api.schemas import In, NonNegInt64, Out, PosInt64


class DatasetVersionPublic(Out):
    """One version: format, checksum (``sha256:<hex>`` of the plaintext), schema and statistics."""

    id: str
    version: int
    format: str
    kind: str
    filename: str
    size_bytes: int
    checksum: str
    rows: int
    target: str | None
    schema_: dict[str, Any] = Field(alias="schema")
    created_at: datetime


class DatasetBase(BaseModel):
    org: str
    name: str
    full_name: str  # org/name
    description: str


class DatasetPublic(DatasetBase, Out):
    """A dataset as a list shows it; ``access`` is owner, or the strongest permission granted."""

    id: str
    created_at: datetime
    latest_version: int | None
    versions: int
    access: str


class DatasetDetail(DatasetPublic):
    version_list: list[DatasetVersionPublic]


class DatasetVersionUploaded(DatasetVersionPublic):
    dataset: str  # org/name
    created: bool  # false: the same file was already the newest version (200, not 201)


class DatasetPreview(DatasetVersionPublic):
    """Statistics for any grantee; ``rows_preview`` for the owner and ``download`` grantees, else
    null and ``rows_hidden`` says why."""

    dataset: str
    rows_preview: list[Any] | None
    rows_hidden: str | None = None


class DatasetDeleted(Out):
    dataset: str
    deleted: Literal["dataset", "version"]
    versions: list[int]
    revoked_grants: list[str]  # grant ids revoked with the data
    bytes: int


class SamplePublic(Out):
    name: str
    description: str


class SampleImport(In):
    sample: str
    name: str | None = None
    partitions: int = Field(1, ge=1, le=64)
    part: PosInt64 | None = None
    skew: Literal["iid", "label"] = "iid"
    seed: NonNegInt64 = 0
    to_orgs: list[str] | None = None


class SampleImported(Out):
    org: str
    dataset: str
    version: int
    rows: int
    part: int
    partitions: int
    created: bool
    version_id: str
    dataset_id: str
