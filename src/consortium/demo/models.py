"""Demo step for ``consortium up``: the hospital registers a breast-cancer risk model (logistic
regression fitted with numpy on the bundled sample, with its fitted preprocessing), points
``production`` at it, deploys it as ``bc-risk`` following that alias, and lets the clinic invoke
it with a quota. Idempotent: an existing model or deployment is left alone.

Run by ``consortium.demo.seed_demo`` (``consortium/demo/__init__.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from consortium.demo.orgs import DEMO_ORGS, demo_owner
from consortium.governance import grants
from consortium.governance.audit import EventDraft
from consortium.registry import models as reg
from consortium.services import Services
from consortium.serving.hub import deployments as deps

MODEL, DEPLOYMENT = "bc-risk", "bc-risk"


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


def seed_models(svc: Services, session: Session, out: dict[str, Any]) -> None:
    from consortium.data.samples import load_sample
    from consortium.processing.preprocessor import Preprocessor

    hospital, clinic = DEMO_ORGS[0][0], DEMO_ORGS[1][0]
    p = demo_owner(session, hospital)
    out["deployments"] = [f"{hospital}/{DEPLOYMENT}"]
    if deps.find_deployment(session, f"{hospital}/{DEPLOYMENT}") is not None:
        return
    events = []
    model = reg.find_model(session, hospital, MODEL)
    if model is None:
        data = load_sample("breast_cancer")
        prep = Preprocessor.fit(data, [{"normalize": {"method": "standard"}}], task="classification")
        X, y = prep.transform(data)
        w, b = fit_logistic(X, y, len(prep.classes))
        acc = float(((X @ w + b).argmax(1) == y).mean())
        v = reg.register_version(session, p, MODEL, onnx=softmax_onnx(w, b), blobs=svc.blobs,
                                 preprocessing=prep.state(), metrics={"train_accuracy": round(acc, 4)},
                                 lineage={"source": "demo", "datasets": [{"dataset": "sample/breast_cancer"}]},
                                 task="classification", class_names=prep.class_names,
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
