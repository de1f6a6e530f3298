"""The prediction log, read side: find a logged prediction, decrypt it (owner only), and turn logged
requests back into model inputs (the version's fitted preprocessing applied) for drift.

Each record's payload is ``{"inputs": ..., "outputs": ...}`` as JSON, sealed with the deployment
owner's data key; ``protocol`` says whether the inputs are raw ``/predict`` rows (preprocessed
here) or Open Inference Protocol tensors (already model inputs). Records with ``sampled`` false
hold a response only (``"inputs": null``): kept so that a long answer can get feedback, never
drift evidence.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from consortium.errors import ConsortiumError, NotFound
from consortium.governance.keys import KeyService
from consortium.store.paging import Listing
from consortium.store.tables.monitoring import PredictionRecord
from consortium.store.tables.registry import Deployment, ModelVersion


def decode(session: Session, keys: KeyService, rec: PredictionRecord) -> dict[str, Any]:
    """The decrypted ``{"inputs", "outputs"}`` of a record."""
    opened = b"".join(keys.decrypt_stream(session, rec.owner_org_id, [rec.payload]))
    record: dict[str, Any] = json.loads(opened)
    return record


def get_record(session: Session, d: Deployment, prediction_id: str) -> PredictionRecord:
    """A logged prediction of deployment ``d``; ``NotFound`` for an unknown id or another deployment's."""
    rec = session.get(PredictionRecord, prediction_id)
    if rec is None or rec.deployment_id != d.id:
        raise unknown_record(d, prediction_id)
    return rec


def unknown_record(d: Deployment, prediction_id: str) -> NotFound:
    """The answer for a logged id that is not the caller's to see (unknown, another deployment's,
    or another organization's prediction)."""
    return NotFound(f"prediction {prediction_id!r} is not in the log of deployment {d.name!r}",
                    hint="send the prediction_id this deployment returned, unchanged; logged "
                         "predictions expire with the deployment's retention")


def recent(session: Session, deployment_id: str, *, limit: int = 100, version_id: str | None = None,
           since: datetime | None = None, until: datetime | None = None,
           sampled: bool | None = None) -> list[PredictionRecord]:
    """Logged predictions of a deployment, newest first (``sampled=True``: with their requests)."""
    return predictions_listing(deployment_id, version_id=version_id, since=since, until=until,
                               sampled=sampled).page(session, None, limit).items


def predictions_listing(deployment_id: str, *, version_id: str | None = None, since: datetime | None = None,
                        until: datetime | None = None, sampled: bool | None = None) -> Listing:
    q = select(PredictionRecord).where(PredictionRecord.deployment_id == deployment_id)
    if sampled is not None:
        q = q.where(PredictionRecord.sampled.is_(sampled))
    if version_id is not None:
        q = q.where(PredictionRecord.version_id == version_id)
    if since is not None:
        q = q.where(PredictionRecord.created_at >= since)
    if until is not None:
        q = q.where(PredictionRecord.created_at < until)
    return Listing(q, (PredictionRecord.created_at, PredictionRecord.id), desc=True)


def record_view(session: Session, keys: KeyService, rec: PredictionRecord, caller: str,
                payload: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"id": rec.id, "created_at": rec.created_at, "caller_org": caller,
                           "version_id": rec.version_id, "protocol": rec.protocol, "rows": rec.rows,
                           "sampled": rec.sampled}
    if payload:
        out.update(decode(session, keys, rec))
    return out


def model_inputs(version: ModelVersion, records: list[tuple[str, dict[str, Any]]]) -> np.ndarray:
    """Stack logged inputs as the model saw them: ``(N, F)`` for tabular, ``(N, ...)`` for images.

    ``records`` are (protocol, decoded payload). Rows that no longer parse are skipped."""
    prep = None
    if version.preprocessing is not None:
        from consortium.processing.preprocessor import Preprocessor

        prep = Preprocessor.from_state(version.preprocessing)
    parts: list[np.ndarray] = []
    for protocol, doc in records:
        inputs = doc.get("inputs")
        if inputs is None:
            continue
        try:
            if protocol == "v2":
                x = np.asarray(next(iter(inputs.values())), dtype=np.float64)
            elif prep is not None:
                x = np.asarray(prep.transform_inputs(inputs), dtype=np.float64)
            else:
                x = np.asarray(inputs, dtype=np.float64)
        # a row the current preprocessing cannot read (a refused row, a ragged or non-numeric
        # payload, an empty v2 body): not drift evidence
        except (ConsortiumError, ValueError, TypeError, AttributeError, LookupError, StopIteration):
            continue
        if x.ndim == 0:
            continue
        parts.append(x.reshape(x.shape[0], -1))
    if not parts:
        return np.zeros((0, 0))
    width = parts[0].shape[1]
    return np.concatenate([p for p in parts if p.shape[1] == width], axis=0)
