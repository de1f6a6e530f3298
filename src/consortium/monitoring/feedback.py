"""Feedback: callers report the true label of a logged prediction; it is scored at once against
what the model answered (correct count, or squared error for regression) and only the score is
kept. Live accuracy (or MSE) over a window is then compared with the version's test-set figure.

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

from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from consortium.errors import Conflict, InvalidInput
from consortium.monitoring.predictions import decode
from consortium.store.tables.monitoring import Feedback, PredictionRecord
from consortium.store.tables.registry import ModelVersion


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
    return len(labels), sum(str(p) == t for p, t in zip(predicted, truth)), 0.0


def _predicted(version: ModelVersion, protocol: str, outputs: Any) -> list[Any]:
    """What the model answered, per row: class names or numbers."""
    if protocol == "predict":
        return list(outputs.get("predictions") or [])
    y = np.asarray(next(iter(outputs.values())), dtype=np.float64)
    if version.task == "regression":
        return y.reshape(y.shape[0], -1)[:, 0].tolist()
    names = version.class_names or [str(i) for i in range(y.shape[1] if y.ndim == 2 else 1)]
    if y.ndim == 2 and y.shape[1] == 1:
        return [names[int(v > 0.5)] if len(names) == 2 else str(int(v > 0.5)) for v in y[:, 0]]
    return [names[i] if i < len(names) else str(i) for i in y.argmax(axis=1)]


def record_feedback(session: Session, rec: PredictionRecord, caller_org_id: str, labels: list[Any]) -> Feedback:
    """Score ``labels`` for a logged prediction. Only the calling organization that made the
    prediction (or the owner) may label it; a second report replaces the first."""
    if caller_org_id not in (rec.caller_org_id, rec.owner_org_id):
        from consortium.errors import NotFound

        raise NotFound(f"prediction {rec.id!r} is not in the log of this deployment")
    version = session.get(ModelVersion, rec.version_id)
    if version is None:
        raise Conflict("the model version of this prediction was deleted; its feedback cannot be scored")
    doc = decode(session, rec)
    n, correct, sq = score_labels(version.task, version.class_names, _predicted(version, rec.protocol, doc["outputs"]),
                                  labels)
    fb = session.get(Feedback, rec.id)
    if fb is None:
        fb = Feedback(prediction_id=rec.id, deployment_id=rec.deployment_id, caller_org_id=rec.caller_org_id,
                      version_id=rec.version_id, n=n)
        session.add(fb)
    fb.n, fb.correct, fb.sq_error = n, correct, sq
    session.flush()
    return fb


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
