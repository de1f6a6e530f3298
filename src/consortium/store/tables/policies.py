"""Data owners' control: a dataset's policy, and consent requests for models derived from it.

A policy row holds the rules a dataset's owner set (``consortium.governance.policies``); a consent
request asks one contributing organization whether a model trained on its data may be shared
with, deployed for, or downloaded by an organization outside what it granted
(``consortium.governance.consent``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from consortium.store.tables.base import Base, UTCDateTime, utcnow


class DatasetPolicy(Base):
    """The rules a dataset's owner set for every job that uses it (one row per dataset)."""

    __tablename__ = "dataset_policies"
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    set_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsentRequest(Base):
    """A model owner asks a contributor: may this model go to ``target_org_id`` (``action``)?"""

    __tablename__ = "consent_requests"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"), index=True)
    requester_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    contributor_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"),
                                                    index=True)
    target_org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(16))  # share | deploy | download
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | approved | refused
    note: Mapped[str] = mapped_column(String(2000), default="")
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
