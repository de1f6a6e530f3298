"""Jobs: the submission body and what the job routes answer (``JobCreate`` / ``JobPublic``).

A submission and the job share no field (a recipe in, the parsed recipe and its state out), so
there is no base. The routes return the rows themselves; ``from_attributes`` reads them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from consortium.api.schemas import In, Out


class JobCreate(In):
    recipe: dict[str, Any] | str = Field(description="the recipe, as an object or as YAML/JSON text")
    project: str | None = Field(default=None, description="run in this project (its members see it)")


class JobPublic(Out):
    id: str
    name: str
    kind: str
    state: str
    org_id: str
    project_id: str | None
    recipe: dict[str, Any]
    progress: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    attempts: int
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobEventPublic(Out):
    """One progress, log or state event (``id`` orders them: poll with ``after`` = the last one seen)."""

    id: int
    time: datetime
    kind: str
    data: dict[str, Any]
