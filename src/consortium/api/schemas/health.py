"""Probe answers."""

from __future__ import annotations

from pydantic import BaseModel


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str | None = None  # what the database said when it does not answer
    blobs: str | None = None  # why the blob store cannot be used
