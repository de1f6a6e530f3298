"""Monitoring settings of one deployment: prediction sampling, retention, drift thresholds and the
opt-in retraining trigger. Stored as JSON in ``monitoring_configs``; no row means the defaults.

>>> s = MonitorSettings()
>>> s.sample_rate, s.retention_days, s.retrain.enabled
(0.0, 30, False)
>>> MonitorSettings.model_validate({"sample_rate": 0.01}).merged({"drift": {"psi_alert": 0.3}}).drift.psi_alert
0.3
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy.orm import Session

from consortium.errors import InvalidInput
from consortium.store.tables.base import utcnow
from consortium.store.tables.monitoring import MonitoringConfig


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DriftThresholds(_Spec):
    """Per feature: PSI at or above ``psi_warn`` is a warning, at or above ``psi_alert`` (or a
    Kolmogorov-Smirnov statistic at or above ``ks_alert``) an alert. The window is the newest
    ``window`` logged rows of the version served now; fewer than ``min_rows`` is not judged."""

    psi_warn: float = Field(0.1, gt=0)
    psi_alert: float = Field(0.25, gt=0)
    ks_alert: float = Field(0.2, gt=0, le=1)
    window: int = Field(1000, ge=10, le=100_000)
    min_rows: int = Field(50, ge=5)

    @model_validator(mode="after")
    def _ordered(self) -> DriftThresholds:
        if self.psi_warn > self.psi_alert:
            raise ValueError("psi_warn must not be above psi_alert")
        return self


class RetrainPolicy(_Spec):
    """Opt-in: re-run the version's recipe on the newest dataset versions when live accuracy falls
    below ``min_accuracy`` (at least ``min_feedback`` labelled rows in the last ``window_minutes``)
    or, with ``on_drift``, when drift reaches alert. At most one run per ``cooldown_minutes``."""

    enabled: bool = False
    min_accuracy: float | None = Field(None, ge=0, le=1)
    max_mse: float | None = Field(None, ge=0)
    on_drift: bool = False
    min_feedback: int = Field(20, ge=1)
    window_minutes: int = Field(1440, ge=1)
    cooldown_minutes: int = Field(60, ge=0)


class MonitorSettings(_Spec):
    sample_rate: float = Field(0.0, ge=0, le=1, description="share of predictions logged (0: off)")
    retention_days: int = Field(30, ge=1, le=3650)
    drift: DriftThresholds = Field(default_factory=DriftThresholds)
    retrain: RetrainPolicy = Field(default_factory=RetrainPolicy)

    def merged(self, patch: dict[str, Any]) -> MonitorSettings:
        """These settings with ``patch`` applied (nested sections merge); raises ``InvalidInput``."""
        doc = self.model_dump()
        for k, v in patch.items():
            if isinstance(v, dict) and isinstance(doc.get(k), dict):
                doc[k] = {**doc[k], **v}
            else:
                doc[k] = v
        return parse_settings(doc)


def parse_settings(doc: dict[str, Any]) -> MonitorSettings:
    try:
        return MonitorSettings.model_validate(doc)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise InvalidInput(f"invalid monitoring setting {where}: {err['msg']}",
                           hint="see GET /api/v1/deployments/{deployment}/monitoring for the fields") from None


def load_settings(session: Session, deployment_id: str) -> tuple[MonitorSettings, MonitoringConfig | None]:
    row = session.get(MonitoringConfig, deployment_id)
    return (MonitorSettings.model_validate(row.settings) if row else MonitorSettings()), row


def save_settings(session: Session, deployment_id: str, patch: dict[str, Any], user_id: str | None) -> MonitorSettings:
    """Apply ``patch`` to the deployment's settings (the request's transaction commits)."""
    current, row = load_settings(session, deployment_id)
    new = current.merged(patch)
    if row is None:
        row = MonitoringConfig(deployment_id=deployment_id)
        session.add(row)
    row.settings, row.updated_by, row.updated_at = new.model_dump(), user_id, utcnow()
    session.flush()
    return new
