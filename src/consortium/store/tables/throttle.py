"""Counters that throttle guessing (logins, invitation tokens) and rate-limit creations, shared by
every hub replica through the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from consortium.store.tables.base import Base, UTCDateTime


class Throttle(Base):
    """One counter per ``<policy>:<subject>`` (an account's email hash, a client address, a user)."""

    __tablename__ = "throttles"
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)  # start of the current window
    last_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # last counted event
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
