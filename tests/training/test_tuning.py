"""Tuning: TPE proposes, Hyperband prunes, the best values train the final model."""

from __future__ import annotations

import numpy as np

from consortium.data.samples import load_sample
from consortium.processing import Preprocessor, train_val_test_split
from consortium.recipe import MLPSpec, parse_recipe
from consortium.training.tuning import tune


def test_tpe_with_hyperband_prunes_and_returns_best_recipe() -> None:
    data = load_sample("breast_cancer")
    y = data.target_values()
    tr, va, _ = train_val_test_split(y, test_size=0.2, val_size=0.2, seed=0)
    prep = Preprocessor.fit(data.subset(tr), [{"normalize": {}}])
    X_tr, y_tr = prep.transform(data.subset(tr))
    X_va, y_va = prep.transform(data.subset(va))
    recipe = parse_recipe(
        {
            "name": "bc-tune",
            "data": {"target": "target"},
            "model": {"type": "mlp", "hidden": [16]},
            "train": {"epochs": 9, "optimizer": "sgd", "momentum": 0.0},
            "tune": {
                "trials": 14,
                "space": {
                    "train.lr": {"low": 1e-5, "high": 0.3, "log": True},
                    "model.hidden.0": {"choices": [4, 16]},
                },
            },
        }
    )
    seen: list[dict] = []
    best, summary = tune(
        recipe,
        X_tr,
        y_tr,
        X_va,
        y_va,
        task="classification",
        input_shape=(30,),
        n_outputs=2,
        on_trial=seen.append,
    )
    states = [t["state"] for t in summary["trials"]]
    assert len(states) == 14 and len(seen) == 14
    assert set(states) <= {"COMPLETE", "PRUNED"} and summary["n_pruned"] >= 1 and summary["n_complete"] >= 1
    assert any(t["epochs"] < 9 for t in summary["trials"] if t["state"] == "PRUNED")  # stopped early
    completed = [t for t in summary["trials"] if t["state"] == "COMPLETE"]
    assert summary["best_value"] == min(t["value"] for t in completed)
    assert best.train.lr == summary["best_params"]["train.lr"]
    assert isinstance(best.model, MLPSpec) and best.model.hidden == [summary["best_params"]["model.hidden.0"]]
    assert best.tune == recipe.tune and np.isfinite(summary["wall_s"])
