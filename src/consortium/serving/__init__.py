"""Model serving: onnxruntime predictors, a bounded model cache, adaptive batching and the
Open Inference Protocol codec. Free of FastAPI and SQL; the API layer wires it to HTTP.

Entry point for the routes: ``InferenceService`` (see ``consortium.serving.service``).
"""

from consortium.serving.batching import AdaptiveBatcher, BatchInfo
from consortium.serving.cache import CacheStats, ModelCache
from consortium.serving.predictor import OnnxPredictor, session_options
from consortium.serving.service import BatchingConfig, InferenceService

__all__ = [
    "AdaptiveBatcher", "BatchInfo", "BatchingConfig", "CacheStats", "InferenceService", "ModelCache",
    "OnnxPredictor", "session_options",
]
