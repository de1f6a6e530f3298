"""The control plane's revision: one counter, bumped in the same transaction as every change to a
credential, membership, organization, grant or project membership, so that each hub replica can
tell with one primary-key read that its cached principals and grants are out of date
(``consortium.governance.control_cache``)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer
from sqlalchemy.orm import Mapped, mapped_column

from consortium.store.tables.base import Base


class ControlRevision(Base):
    __tablename__ = "control_revision"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    revision: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
