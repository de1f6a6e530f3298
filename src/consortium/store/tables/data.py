"""Datasets (named ``org/name``) and their immutable versions, each pointing at one encrypted blob."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from consortium.store.tables.base import Base, UTCDateTime, utcnow


class Dataset(Base):
    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_datasets_org_name"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(500), default="")
    # the highest version number ever given: numbers of deleted versions are not reused
    last_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DatasetVersion(Base):
    """One immutable upload: its format, checksum, schema and statistics, and where its blob is."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_version"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(16))  # csv | parquet | npz | image_zip
    kind: Mapped[str] = mapped_column(String(16))  # tabular | image
    filename: Mapped[str] = mapped_column(String(255), default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger)  # of the plaintext file
    checksum: Mapped[str] = mapped_column(String(71))  # "sha256:<hex>" of the plaintext file
    blob_key: Mapped[str] = mapped_column(String(64))
    blob_size: Mapped[int] = mapped_column(BigInteger)  # of the encrypted blob
    row_count: Mapped[int] = mapped_column(BigInteger)
    target: Mapped[str | None] = mapped_column(String(128), nullable=True)
    schema: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
