"""Federated jobs on the in-process simulation engine: strategies, SecAgg+ vs FedAvg, DP."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from fl_helpers import bc_recipe

from consortium.federation.engine.simulation import run_simulation


def _state(res) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in torch.load(io.BytesIO(res.state_dict), weights_only=True).items()}


def test_fedavg_round_records_and_contributions(breast_cancer):
    records = []
    res = run_simulation(bc_recipe(rounds=2), breast_cancer["parts"], validation=breast_cancer["test"],
                         progress=records.append, shapley_samples=4)
    kinds = [r["kind"] for r in records]
    assert kinds == ["start", "round", "round", "done"]
    r2 = records[2]
    assert set(r2["nodes"]) == set(breast_cancer["orgs"]) and r2["missing"] == []
    for m in r2["nodes"].values():
        assert m["num_examples"] > 100 and 0 <= m["accuracy"] <= 1 and m["loss"] > 0
    assert r2["global"]["accuracy"] > 0.9
    assert res.final["accuracy"] == pytest.approx(r2["global"]["accuracy"])
    assert res.contributors == sorted(breast_cancer["orgs"])
    loo = res.contribution["leave_one_out"]
    assert set(loo) == set(breast_cancer["orgs"]) and set(res.contribution["shapley"]) == set(loo)
    model = res.model()  # the returned bytes rebuild the final model, which takes raw features
    x = torch.tensor(breast_cancer["test"].frame.drop(columns=["target"]).to_numpy(), dtype=torch.float32)
    acc = (model(x).argmax(1).numpy() == breast_cancer["test"].frame["target"].to_numpy()).mean()
    assert acc == pytest.approx(res.final["accuracy"])
    import onnxruntime as ort

    sess = ort.InferenceSession(res.onnx)  # the ONNX export gives the same predictions
    proba = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    assert np.array_equal(proba.argmax(1), model(x).argmax(1).numpy())


@pytest.mark.parametrize("strategy", ["fedprox", "fedadam"])
def test_other_strategies_learn(breast_cancer, strategy):
    res = run_simulation(bc_recipe(rounds=2, strategy=strategy, proximal_mu=0.1), breast_cancer["parts"],
                         validation=breast_cancer["test"])
    assert res.final["accuracy"] > 0.85, res.history


def test_secure_aggregation_equals_fedavg(breast_cancer):
    plain = run_simulation(bc_recipe(rounds=2), breast_cancer["parts"], validation=breast_cancer["test"])
    secure = run_simulation(bc_recipe(rounds=2, secure_aggregation=True), breast_cancer["parts"],
                            validation=breast_cancer["test"])
    a, b = _state(plain), _state(secure)
    assert a.keys() == b.keys()
    worst = max(float(np.abs(a[k] - b[k]).max()) for k in a)
    assert worst < 1e-3, worst  # SecAgg+ quantizes updates: equal up to rounding
    assert any(float(np.abs(a[k]).max()) > 0.05 for k in a)  # and the model did move
    assert secure.contribution["available"] is False
    assert [sorted(r["nodes"]) for r in secure.history] == [sorted(r["nodes"]) for r in plain.history]


def test_dp_nodes_report_spent_epsilon_within_target(breast_cancer):
    res = run_simulation(bc_recipe(rounds=2, local_epochs=1, dp={"epsilon": 3.0, "max_grad_norm": 1.0}),
                         breast_cancer["parts"], validation=breast_cancer["test"])
    assert set(res.epsilon) == set(breast_cancer["orgs"])
    first = {org: m["epsilon"] for org, m in res.history[0]["nodes"].items()}
    for org, eps in res.epsilon.items():
        assert first[org] < eps <= 3.0 + 0.05  # spent grows each round and stays within the plan
        assert res.privacy_plan[org]["epsilon"] == pytest.approx(eps, rel=0.05)
    assert res.final["accuracy"] > 0.6
