"""Monitoring of one deployment: settings (``MonitoringUpdate`` / ``MonitoringPublic``), request
figures, drift, live quality, time series, feedback and the prediction log.

Some answers carry a key only in some cases (``squared_error`` or ``correct``; a drift report's
``max_psi`` once there is data): those fields default to None and their routes answer with
``response_model_exclude_unset``, so an absent key stays absent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from consortium.api.schemas import In, Out, PosInt64
from consortium.monitoring.config import DriftThresholds, RetrainPolicy
from consortium.monitoring.ids import MAX_ID_CHARS

YEAR_MINUTES = 525600


class DriftUpdate(In):
    psi_warn: float | None = None
    psi_alert: float | None = None
    ks_alert: float | None = None
    window: PosInt64 | None = None
    min_rows: PosInt64 | None = None


class RetrainUpdate(In):
    enabled: bool | None = None
    min_accuracy: float | None = None
    max_mse: float | None = None
    on_drift: bool | None = None
    min_feedback: PosInt64 | None = None
    window_minutes: int | None = Field(None, ge=1, le=YEAR_MINUTES)
    cooldown_minutes: int | None = Field(None, ge=0, le=YEAR_MINUTES)


class MonitoringUpdate(In):
    """A patch: nested sections merge (``{"retrain": {"enabled": true}}`` keeps the rest)."""

    sample_rate: float | None = Field(None, ge=0, le=1)
    retention_days: int | None = Field(None, ge=1, le=3650)
    drift: DriftUpdate | None = None
    retrain: RetrainUpdate | None = None


class RetrainRun(Out):
    """A retraining job the trigger submitted, with the checks that fired it."""

    model_config = ConfigDict(extra="allow")

    id: str
    job_id: str | None
    reason: str
    created_at: datetime


class MonitoringPublic(Out):
    deployment: str
    sample_rate: float
    retention_days: int
    drift: DriftThresholds
    retrain: RetrainPolicy
    updated_at: datetime | None
    retrain_triggers: list[RetrainRun]


class TriggerCheck(Out):
    enabled: bool
    fired: bool
    reasons: list[str] | None = None
    checks: dict[str, Any] | None = None
    blocked: str | None = None  # why a firing trigger did not submit (a job still running, cooldown)
    job_id: str | None = None  # the retraining job submitted


class Latency(Out):
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class OrgCalls(Out):
    requests: int
    errors: int
    rejected: int
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


class RequestStats(Latency):
    deployment: str
    minutes: int
    requests: int
    errors: int
    rejected: int
    error_rate: float | None
    requests_per_second: float
    statuses: dict[str, int]
    orgs: dict[str, OrgCalls]


class FeatureDrift(Out):
    name: str
    psi: float | None
    ks: float | None
    status: str
    ks_pvalue: float | None = None
    live_mean: float | None = None
    reference_mean: float | None = None


class DriftReport(Out):
    """PSI and KS per feature; ``status`` is ok, warn, alert, insufficient_data or no_reference."""

    deployment: str
    version: int
    window: int
    logged_predictions: int
    rows: int
    status: str
    features: list[FeatureDrift]
    max_psi: float | None = None
    max_ks: float | None = None
    features_alert: int | None = None
    features_warn: int | None = None
    min_rows: int | None = None
    detail: str | None = None


class Quality(Out):
    """Live accuracy (or MSE) from feedback against the version's test-set figure."""

    deployment: str
    version: int
    metric: str
    minutes: int | None
    labelled_rows: int
    reports: int
    live: float | None
    test: float | None
    change: float | None


class TimePoint(Out):
    """One point; which fields it has depends on the metric (latency, accuracy or drift)."""

    t: datetime
    requests: int | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    labelled_rows: int | None = None
    accuracy: float | None = None
    mse: float | None = None
    rows: int | None = None
    status: str | None = None
    max_psi: float | None = None
    max_ks: float | None = None


class Timeseries(Out):
    deployment: str
    metric: str
    minutes: int
    step_minutes: int
    points: list[TimePoint]


class FeedbackCreate(In):
    prediction_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    label: str | int | float | None = None
    labels: list[str | int | float] | None = None


class FeedbackReceipt(Out):
    prediction_id: str
    rows: int
    replaced: bool
    correct: int | None = None  # classification: rows predicted right
    squared_error: float | None = None  # regression: sum of squared errors


class PredictionRecordPublic(Out):
    """A logged prediction; with ``payload`` its decrypted ``inputs`` and ``outputs``."""

    model_config = ConfigDict(extra="allow")

    id: str
    created_at: datetime
    caller_org: str
    version_id: str
    protocol: str
    rows: int
    sampled: bool
    inputs: Any = None
    outputs: Any = None
