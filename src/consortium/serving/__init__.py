"""Model serving: everything on the prediction path, free of FastAPI and Starlette (the API layer,
``consortium.api.prediction`` and ``consortium.api.front``, wires it to HTTP) and of the registry
(which imports serving, never the reverse).

- ``endpoint``: one model version as served, the hooks behind ``/predict`` and the Open Inference
  Protocol (decode, preprocess, predict, postprocess, encode)
- ``hub``: the hub's side, on its database: ``hub.runtime`` (the process's ``ServingRuntime``,
  ``Services.serving``: admission, endpoints, inference services, accounting), ``hub.gate`` (who
  calls which deployment under which grant, from short-lived caches), ``hub.usage`` (calls per
  caller and minute, quotas, the usage audit events), ``hub.deployments`` (named endpoints of
  registered models: rows, lookups, the grant resource type); everything else here touches no
  database and never imports ``hub``
- ``service``, ``cache``, ``batching``, ``predictor``: onnxruntime predictors, the bounded model
  cache and adaptive batching
- ``oip``, ``datatypes``: the Open Inference Protocol's codec and tensor datatypes
- ``signature``, ``sessions``, ``external_data``: a model's interface, the one way the hub loads
  an ONNX model, and the check that it never reaches outside its file
"""

from consortium.serving.batching import AdaptiveBatcher, BatchInfo
from consortium.serving.cache import CacheStats, ModelCache
from consortium.serving.predictor import OnnxPredictor, session_options
from consortium.serving.service import BatchingConfig, InferenceService

__all__ = [
    "AdaptiveBatcher", "BatchInfo", "BatchingConfig", "CacheStats", "InferenceService", "ModelCache",
    "OnnxPredictor", "session_options",
]
