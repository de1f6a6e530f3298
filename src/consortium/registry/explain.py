"""Explanations of a registered version: Integrated Gradients (Captum) on the trained torch model.

Versions trained on the platform keep their torch weights (encrypted with the owner's key) next to
the ONNX artifact, so an attribution map can be computed for a given input. Uploaded ONNX/Keras
models have no torch weights and cannot be explained this way (a clear error says so).
"""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy.orm import Session

from consortium.errors import InvalidInput
from consortium.governance.sealed import SealedBlobs
from consortium.jsonable import jsonable
from consortium.serving.external_data import refuse_external_data
from consortium.store.tables.registry import ModelVersion, RegisteredModel


def attach(session: Session, v: ModelVersion, org_id: str, result: Any, blobs: SealedBlobs) -> None:
    """Store a training result's torch weights with the version (called by the training jobs)."""
    ref = blobs.put(session, org_id, [result.torch_state], prefix="t")
    v.explain = {"torch_state": ref.key, "model_spec": result.model_spec,
                 "input_shape": list(result.input_shape), "n_outputs": result.n_outputs}


def attach_federated(session: Session, v: ModelVersion, org_id: str, result: Any, blobs: SealedBlobs,
                     feature_names: list[str] | None) -> None:
    """Store a federated result's torch weights with the version (called by federated jobs)."""
    ref = blobs.put(session, org_id, [result.state_dict], prefix="t")
    v.explain = {"kind": "federated", "torch_state": ref.key, "recipe": result.recipe, "stats": result.stats,
                 "feature_names": feature_names}


def explain_version(session: Session, blobs: SealedBlobs, model: RegisteredModel, v: ModelVersion,
                    inputs: Any, target: int | str | None = None) -> dict[str, Any]:
    """Integrated Gradients for one input of ``v``. The version's ONNX artifact must be intact and
    self-contained (``read_onnx`` checks its digest, ``refuse_external_data`` its tensors) even
    though the attribution runs on the torch weights: a tampered version is explained nowhere."""
    from consortium.evaluation.explain import explain
    from consortium.registry.models import read_onnx

    refuse_external_data(read_onnx(session, blobs, v))
    if not v.explain:
        raise InvalidInput(f"version {v.version} has no torch weights to explain",
                           hint="explanations are available for models trained on the platform, "
                                "not for uploaded ONNX or Keras files")
    state = blobs.read(session, model.org_id, v.explain["torch_state"])
    if v.explain.get("kind") == "federated":
        from consortium.federation.engine.result import explainable as federated

        source = federated(v.explain["recipe"], v.explain["stats"], state, v.explain.get("feature_names"))
    else:
        from consortium.training.result import explainable

        source = explainable(v.explain["model_spec"], state, tuple(v.explain["input_shape"]),
                             v.explain["n_outputs"], v.preprocessing, v.task or "classification")
    out = explain(source, inputs, target)
    if "heatmap_png" in out:
        out["heatmap_png"] = base64.b64encode(out["heatmap_png"]).decode()
    answer: dict[str, Any] = jsonable(out)
    return answer
