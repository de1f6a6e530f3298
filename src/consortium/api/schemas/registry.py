"""Registered models (the ``/models`` routes): ``ModelBase`` -> ``ModelUpdate`` (a body) /
``ModelPublic`` (an answer) and ``ModelCard``; versions, aliases and explanations.

Named ``registry`` so that "model" keeps meaning the ML model, not a pydantic one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from consortium.api.schemas import In, NonNegInt32, Out, VersionRef


class ModelBase(BaseModel):
    """The parts of a model card its owner edits (versions themselves never change)."""

    description: str | None = None
    intended_use: str | None = None


class ModelUpdate(ModelBase, In):
    pass


class ModelHeader(ModelBase, Out):
    id: str
    name: str  # org/model
    org: str
    project_id: str | None
    task: str | None
    created_at: datetime
    updated_at: datetime | None
    latest_version: int | None
    aliases: dict[str, int]


class ModelPublic(ModelHeader):
    versions: int


class ModelVersionSummary(Out):
    id: str
    model: str  # org/model
    version: int
    created_at: datetime
    source_format: str
    task: str | None
    class_names: list[Any] | None
    metrics: dict[str, Any] | None
    description: str | None
    onnx_sha256: str
    onnx_size: int


class PreprocessingSummary(Out):
    kind: str | None
    input_columns: list[Any] | None
    image_shape: list[Any] | None
    steps: list[Any]


class ModelVersionPublic(ModelVersionSummary):
    """One version: its signature, lineage, recorded plots and fitted preprocessing."""

    signature: dict[str, Any] | None
    lineage: dict[str, Any] | None
    plots: list[str]
    has_preprocessing: bool
    preprocessing: PreprocessingSummary | None
    has_reference_stats: bool


class CardVersion(ModelVersionSummary):
    lineage: dict[str, Any] | None
    signature: dict[str, Any] | None


class CardDeployment(Out):
    name: str
    alias: str | None
    version: int | None


class ModelCard(ModelHeader):
    """Description, intended use, every version's metrics and lineage, aliases and deployments."""

    versions: list[CardVersion]
    deployments: list[CardDeployment]


class AliasAssign(In):
    version: NonNegInt32 | VersionRef


class AliasPublic(Out):
    model: str
    alias: str
    version: int
    previous: int | None
    deployments: list[str]  # the deployments that follow the alias and switched


class AliasRemoved(Out):
    alias: str
    removed: bool
    previous: int | None


class ExplainRequest(In):
    inputs: Any
    target: int | str | None = None


class FeatureAttribution(Out):
    name: str
    value: float
    score: float


class Explanation(Out):
    """Integrated Gradients for one input: ``features`` (tabular, by |score|) or ``heatmap_png``
    (images, base64 PNG) besides the raw ``attributions``."""

    model_config = ConfigDict(extra="allow")

    method: str
    task: str
    target: int
    target_name: str | None
    output: list[float]
    convergence_delta: float
    attributions: list[Any]
    features: list[FeatureAttribution] | None = None
    heatmap_png: str | None = None
