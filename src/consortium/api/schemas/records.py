"""Answers of the data-protection records routes (``api.routes.records``)."""

from __future__ import annotations

from datetime import datetime

from consortium.api.schemas import Out


class ProcessingActivity(Out):
    """One row of the record: a job that used one of the organization's datasets, or a download
    of a version by another organization (``governance.records.COLUMNS``, the CSV's header)."""

    activity: str
    job_id: str | None = None
    job_name: str | None = None
    job_kind: str | None = None
    job_state: str | None = None
    partner: str | None = None
    partner_is_owner: bool | None = None
    project: str | None = None
    dataset: str | None = None
    dataset_version: int | None = None
    purpose: str | None = None
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    differential_privacy: bool | None = None
    epsilon_target: float | None = None
    delta: float | None = None
    epsilon_spent: float | None = None
    secure_aggregation: bool | None = None
    rounds: int | None = None
    model: str | None = None
    model_version: int | None = None


class ProcessingRecord(Out):
    """An organization's record of processing activities (JSON; ``?format=csv`` for a table)."""

    organization: str
    columns: list[str]
    items: list[ProcessingActivity]
