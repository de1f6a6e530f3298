"""Demo step for ``consortium up``: the hospital registers a breast-cancer risk model, points
``production`` at it, deploys it as ``bc-risk`` following that alias, and lets the clinic invoke
it with a quota. Idempotent: an existing model or deployment is left alone.

The model is trained like any job's (``consortium.training.pipeline.run_training``, a logistic
regression recipe on the bundled sample): the version has the dataset's feature names, the
training split's reference statistics (so drift works), test-split metrics, the loss curve,
confusion matrix and ROC plots, and a real row of the data as ``signature.example`` (what the
deployment page's try-it form starts from).

Run by ``consortium.demo.seed_demo`` (``consortium/demo/__init__.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from consortium.demo.orgs import DEMO_ORGS, demo_owner
from consortium.errors import InvalidInput
from consortium.governance import grants
from consortium.governance.audit import EventDraft
from consortium.registry import models as reg
from consortium.services import Services
from consortium.serving.hub import deployments as deps
from consortium.training.result import TrainingResult

MODEL, DEPLOYMENT = "bc-risk", "bc-risk"
RECIPE = {"name": MODEL, "data": {"target": "target", "test_size": 0.2, "val_size": 0.1, "seed": 0},
          "process": [{"normalize": {"method": "standard"}}], "model": {"type": "logistic"},
          "train": {"optimizer": "adam", "lr": 0.05, "epochs": 40, "batch_size": 32, "seed": 0},
          "register": {"model": MODEL}}


def softmax_onnx(w: np.ndarray, b: np.ndarray, input_name: str = "input",
                 output_name: str = "probabilities") -> bytes:
    """ONNX of probabilities = softmax(x @ w + b); x: (N, F) float32."""
    import onnx
    import onnx.helper as oh
    import onnx.numpy_helper as onh

    x = oh.make_tensor_value_info(input_name, onnx.TensorProto.FLOAT, ["N", w.shape[0]])
    y = oh.make_tensor_value_info(output_name, onnx.TensorProto.FLOAT, ["N", w.shape[1]])
    nodes = [oh.make_node("MatMul", [input_name, "w"], ["xw"]), oh.make_node("Add", ["xw", "b"], ["z"]),
             oh.make_node("Softmax", ["z"], [output_name], axis=1)]
    g = oh.make_graph(nodes, "logistic", [x], [y], initializer=[onh.from_array(w.astype(np.float32), "w"),
                                                                  onh.from_array(b.astype(np.float32), "b")])
    model: bytes = oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)], ir_version=9).SerializeToString()
    return model


def fit_logistic(X: np.ndarray, y: np.ndarray, classes: int, steps: int = 400,
                 lr: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression by gradient descent (numpy): a real trained model, fast."""
    w, b, onehot = np.zeros((X.shape[1], classes)), np.zeros(classes), np.eye(classes)[y]
    for _ in range(steps):
        z = X @ w + b
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / len(X)
        w -= lr * X.T @ g
        b -= lr * g.sum(0)
    return w, b


def train_demo_model() -> TrainingResult:
    """The bc-risk version's ``TrainingResult``: ``RECIPE`` on the breast_cancer sample, with the
    sample's first row as the signature's example."""
    from consortium.data.samples import load_sample
    from consortium.training.pipeline import run_training

    data = load_sample("breast_cancer")
    frame = data.frame
    if frame is None:  # the bundled sample is tabular
        raise InvalidInput("the breast_cancer sample has no table", hint="reinstall the package")
    result = run_training(RECIPE, data)
    columns = result.signature.get("raw_columns") or [c for c in frame.columns if c != "target"]
    result.signature = {**result.signature, "example": [round(float(x), 6) for x in frame[columns].iloc[0]]}
    return result


def seed_models(svc: Services, session: Session, out: dict[str, Any]) -> None:

    hospital, clinic = DEMO_ORGS[0][0], DEMO_ORGS[1][0]
    p = demo_owner(session, hospital)
    out["deployments"] = [f"{hospital}/{DEPLOYMENT}"]
    if deps.find_deployment(session, f"{hospital}/{DEPLOYMENT}") is not None:
        return
    events = []
    model = reg.find_model(session, hospital, MODEL)
    if model is None:
        v = reg.register_training_result(session, p, MODEL, train_demo_model(), blobs=svc.blobs,
                                         lineage={"source": "demo", "datasets": [{"dataset": "sample/breast_cancer"}]},
                                         description="Breast cancer risk (demo logistic regression)")
        model = reg.model_of(session, v)
        reg.set_alias(session, p, model, "production", v.version)
        events.append(reg.registered_event(v, model, actor_user_id=p.user_id, actor_org_id=p.org_id))
    served = reg.to_serve(session, p, f"{MODEL}@production")
    d = deps.create_deployment(session, p, DEPLOYMENT, served.model, alias=served.alias, description="demo endpoint")
    g = grants.create_grant(session, p, svc.resource_types.get("deployment"), d.id, "invoke", grantee_org=clinic,
                            limits={"per_minute": 60, "per_day": 1000})
    events += [EventDraft("demo.deploy", actor_user_id=p.user_id, actor_org_id=p.org_id, resource_type="deployment",
                          resource_id=d.id, resource_org_id=p.org_id, details={"name": d.name}),
               EventDraft("demo.grant", actor_user_id=p.user_id, actor_org_id=p.org_id, resource_type="deployment",
                          resource_id=d.id, resource_org_id=p.org_id, details={"grant": g.id, "grantee": clinic})]
    svc.audit_in(session, events)
