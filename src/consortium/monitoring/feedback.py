"""Feedback: callers report the true label of any prediction; it is scored at once against what
the model answered (correct count, or squared error for regression) and only the score is kept.
What the model answered comes from the prediction's signed id (``consortium.monitoring.ids``) or,
for a prediction in the log, from its record. Live accuracy (or MSE) over a window is then
compared with the version's test-set figure.

A second report for the same prediction replaces the first (a correction; retries are harmless),
keeping the time of the first.

>>> score_labels("classification", ["a", "b", "c"], ["a", "c"], ["a", "b"])
(2, 1, 0.0)
>>> score_labels("regression", None, [1.0, 3.0], [2.0, 3.0])
(2, 0, 1.0)
>>> score_labels("classification", ["a", "b"], ["a"], [2.5])
Traceback (most recent call last):
...
consortium.errors.InvalidInput: label 2.5 is not a class of this model (send one of ['a', 'b'] (or its index))
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from consortium.errors import Conflict, InvalidInput, NotFound
from consortium.governance.keys import KeyService
from consortium.monitoring.config import load_settings
from consortium.monitoring.ids import STORED, PredictionIds, SignedPrediction, shorten, unknown_id
from consortium.monitoring.predictions import decode, get_record, unknown_record
from consortium.store.tables.base import utcnow
from consortium.store.tables.monitoring import Feedback, PredictionRecord
from consortium.store.tables.registry import Deployment, ModelVersion


def _class_of(label: Any, class_names: list[str]) -> str:
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        raise InvalidInput(f"label {label!r} is not a class of this model",
                           hint=f"send one of {class_names} (or its index)")
    if str(label) in class_names:
        return str(label)
    if isinstance(label, int) and 0 <= label < len(class_names):
        return class_names[label]
    raise InvalidInput(f"label {label!r} is not a class of this model", hint=f"send one of {class_names}")


def score_labels(task: str | None, class_names: list[str] | None, predicted: list[Any],
                 labels: list[Any]) -> tuple[int, int, float]:
    """(rows, correct, sum of squared errors) of ``predicted`` against the true ``labels``."""
    if len(labels) != len(predicted):
        raise InvalidInput(f"{len(labels)} labels for a prediction of {len(predicted)} rows",
                           hint="send one label per input row ('label' for a single row)")
    if task == "regression":
        bad = [x for x in labels if isinstance(x, bool) or not isinstance(x, (int, float))]
        if bad:
            raise InvalidInput(f"label {bad[0]!r} is not a number; this model does regression")
        err = np.asarray(predicted, dtype=np.float64).reshape(len(labels), -1)[:, 0] - np.asarray(labels, float)
        return len(labels), 0, float(np.sum(err ** 2))
    names = class_names or sorted({str(p) for p in predicted})
    truth = [_class_of(x, names) for x in labels]
    return len(labels), sum(str(p) == t for p, t in zip(predicted, truth, strict=True)), 0.0


def _predicted(version: ModelVersion, protocol: str, outputs: Any) -> list[Any]:
    """What the model answered, per row: class names or numbers."""
    if protocol == "predict":
        return list(outputs.get("predictions") or [])
    y = np.asarray(next(iter(outputs.values())), dtype=np.float64)
    if version.task == "regression":
        values: list[float] = y.reshape(y.shape[0], -1)[:, 0].tolist()
        return values
    names = version.class_names or [str(i) for i in range(y.shape[1] if y.ndim == 2 else 1)]
    if y.ndim == 2 and y.shape[1] == 1:
        return [names[int(v > 0.5)] if len(names) == 2 else str(int(v > 0.5)) for v in y[:, 0]]
    return [names[i] if i < len(names) else str(i) for i in y.argmax(axis=1)]


def _predicted_logged(session: Session, keys: KeyService, rec: PredictionRecord,
                      version: ModelVersion) -> list[Any]:
    return _predicted(version, rec.protocol, decode(session, keys, rec)["outputs"])


def _predicted_signed(version: ModelVersion, sig: SignedPrediction) -> list[Any]:
    """What the model answered, per row, from a signed id (the same reading as ``_predicted``)."""
    if version.task == "regression" and sig.values is not None:
        return list(sig.values)
    if sig.indices is not None and sig.classes is not None:
        names = version.class_names
        if not names or len(names) != sig.classes:
            names = [str(i) for i in range(sig.classes)]
        return [names[i] for i in sig.indices]
    names = version.class_names or ["0"]  # one output per row of a classifier: a sigmoid
    return [names[int(v > 0.5)] if len(names) == 2 else str(int(v > 0.5)) for v in sig.values or []]


def record_feedback(session: Session, keys: KeyService, d: Deployment, prediction_id: str,
                    labeller_org_id: str, labels: list[Any], ids: PredictionIds) -> tuple[Feedback, bool]:
    """Score ``labels`` for a prediction of deployment ``d``; returns the feedback row and whether it
    replaced an earlier report. Only the organization that made the prediction (or the owner) may
    label it; ``NotFound`` for an unknown, forged or expired id or another deployment's."""
    predicted: Callable[[ModelVersion], list[Any]]
    classes = None  # how many classes the answer was among, when the id says so
    if STORED.fullmatch(prediction_id):
        rec = get_record(session, d, prediction_id)
        if labeller_org_id not in (rec.caller_org_id, d.org_id):  # another organization's: as if unknown
            raise unknown_record(d, prediction_id)
        key, caller, version_id = rec.id, rec.caller_org_id, rec.version_id
        predicted = partial(_predicted_logged, session, keys, rec)
    else:
        sig = ids.verify(d.id, prediction_id)
        if labeller_org_id not in (sig.caller_org_id, d.org_id):
            raise unknown_id(prediction_id)
        days = load_settings(session, d.id)[0].retention_days
        if sig.created_at < utcnow() - timedelta(days=days):
            raise NotFound(f"prediction {shorten(prediction_id)!r} is older than deployment {d.name!r} keeps "
                           f"feedback for ({days} days)", hint="the owner sets retention_days")
        key, caller, version_id, classes = sig.key, sig.caller_org_id, sig.version_id, sig.classes
        predicted = partial(_predicted_signed, sig=sig)
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise Conflict("the model version of this prediction was deleted; its feedback cannot be scored")
    names = version.class_names or ([str(i) for i in range(classes)] if classes else None)
    n, correct, sq = score_labels(version.task, names, predicted(version), labels)
    fb = session.get(Feedback, key)
    replaced = fb is not None
    if fb is None:
        try:
            with session.begin_nested():  # two first reports at once: the loser replaces the winner's
                fb = Feedback(prediction_id=key, deployment_id=d.id, caller_org_id=caller, version_id=version_id,
                              n=n, correct=correct, sq_error=sq)
                session.add(fb)
        except IntegrityError:
            fb = session.get(Feedback, key, populate_existing=True)
            if fb is None:
                raise
            replaced = True
    fb.n, fb.correct, fb.sq_error = n, correct, sq
    session.flush()
    return fb, replaced


def receipt(session: Session, fb: Feedback, prediction_id: str, replaced: bool) -> dict[str, Any]:
    """What the caller is told about its report: rows scored and, by the version's task, rows
    predicted right (``correct``) or the sum of squared errors (``squared_error``)."""
    out: dict[str, Any] = {"prediction_id": prediction_id, "rows": fb.n, "replaced": replaced}
    v = session.get(ModelVersion, fb.version_id)
    if v is not None and v.task == "regression":
        return {**out, "squared_error": round(fb.sq_error, 6)}
    return {**out, "correct": fb.correct}


def live_quality(session: Session, deployment_id: str, *, since: datetime | None = None,
                 caller_org_id: str | None = None, version_id: str | None = None) -> dict[str, Any]:
    """Labelled rows, accuracy and MSE over feedback since ``since``."""
    q = select(func.coalesce(func.sum(Feedback.n), 0), func.coalesce(func.sum(Feedback.correct), 0),
               func.coalesce(func.sum(Feedback.sq_error), 0.0), func.count()).where(
        Feedback.deployment_id == deployment_id)
    if since is not None:
        q = q.where(Feedback.created_at >= since)
    if caller_org_id is not None:
        q = q.where(Feedback.caller_org_id == caller_org_id)
    if version_id is not None:
        q = q.where(Feedback.version_id == version_id)
    n, correct, sq, reports = session.execute(q).one()
    n = int(n)
    return {"labelled_rows": n, "reports": int(reports),
            "accuracy": round(int(correct) / n, 4) if n else None, "mse": round(float(sq) / n, 6) if n else None}
