"""The hub's side of serving, on its database: the deployments it records (``deployments``: named
endpoints of registered models, their lookups, the grant resource type), who may call which under
which grant (``gate``, from short-lived caches), calls per caller and minute with the quotas
(``usage``), and the process's ``ServingRuntime`` (``runtime``: ``Services.serving``), which admits
each call and hands it to its version's endpoint.

The rest of ``consortium.serving`` (endpoints, inference services, batching, the model cache,
onnxruntime sessions, the Open Inference Protocol's codec) runs models and touches no database:
it imports neither ``consortium.store`` nor SQLAlchemy, nor FastAPI/Starlette, and never this
package (checked by the import contracts in pyproject.toml).
"""
