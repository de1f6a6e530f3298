"""run_training end to end, with the quality floors (fixed seeds)."""

from __future__ import annotations

import io
import json

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch

from consortium.data.frame import DataFrameSet
from consortium.data.samples import load_sample
from consortium.errors import InvalidInput
from consortium.processing import Preprocessor
from consortium.training.pipeline import run_training
from consortium.training.trainer import TrainingCancelled

DIGITS = {
    "name": "digits-cnn",
    "process": [{"rescale": {}}, {"normalize": {}}],
    "model": {"type": "cnn", "channels": [32, 64], "dense": [128]},
    "train": {"epochs": 12, "lr": 0.002, "batch_size": 32, "schedule": {"type": "cosine"}, "seed": 0},
}


def test_digits_cnn_floor_and_everything_a_result_holds() -> None:
    events: list[dict] = []
    res = run_training(DIGITS, load_sample("digits"), on_progress=events.append)
    assert res.metrics["accuracy"] >= 0.97, res.metrics
    assert res.metrics["roc_auc"] > 0.99 and res.task == "classification" and res.n_outputs == 10
    # progress: one event per epoch, then evaluation, export, done
    assert [e["epoch"] for e in events if e["stage"] == "train"] == list(range(1, 13))
    assert events[-1]["stage"] == "done"
    # ONNX served from raw pixels matches the torch model within 1e-4
    prep = Preprocessor.from_state(json.loads(json.dumps(res.preprocessing)))
    digits = load_sample("digits")
    X = prep.transform_inputs(digits.images[:20])
    sess = ort.InferenceSession(res.onnx, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": X})[0]
    with torch.no_grad():
        want = torch.softmax(res.load_model()(torch.from_numpy(X)), 1).numpy()
    assert np.abs(got - want).max() < 1e-4 and res.onnx_max_abs_diff < 1e-4
    assert res.signature["inputs"][0] == {"name": "input", "shape": [-1, 1, 8, 8], "dtype": "float32"}
    assert res.signature["outputs"][0]["name"] == "probabilities"
    # the summary is JSON; plots are PNGs; confusion matrix adds up to the test rows
    summary = json.loads(json.dumps(res.summary()))
    assert summary["split_sizes"]["test"] == sum(map(sum, res.confusion_matrix))
    assert set(res.plots) == {"loss_curve", "confusion_matrix", "roc"}
    assert all(p.startswith(b"\x89PNG") for p in res.plots.values())
    assert res.reference_stats["kind"] == "image" and abs(res.reference_stats["pixel_mean"]) < 1e-3
    assert torch.load(io.BytesIO(res.torch_state), weights_only=True).keys()


def test_breast_cancer_mlp_floor_with_cv_and_tabular_stats() -> None:
    recipe = {
        "name": "bc-mlp",
        "data": {"target": "target", "seed": 0},
        "process": [{"impute": {"strategy": "median"}}, {"normalize": {"method": "standard"}}],
        "model": {"type": "mlp", "hidden": [32, 16]},
        "train": {"epochs": 40, "lr": 0.003, "early_stopping": {"patience": 5}},
        "evaluate": {"cv_folds": 3, "metrics": ["accuracy", "f1_macro", "roc_auc"]},
    }
    res = run_training(recipe, load_sample("breast_cancer"))
    assert res.metrics["accuracy"] >= 0.95, res.metrics
    assert set(res.metrics) == {"accuracy", "f1_macro", "roc_auc"}
    assert res.cv is not None and res.cv["folds"] == 3 and len(res.cv["per_fold"]) == 3
    acc = res.cv["summary"]["accuracy"]
    assert acc["mean"] > 0.9 and acc["std"] < 0.1
    feats = res.reference_stats["features"]
    assert (
        len(feats) == 30
        and feats[0]["name"] == "mean_radius"
        and sum(feats[0]["counts"]) == res.split_sizes["train"]
    )
    assert res.class_names == ["malignant", "benign"] and res.signature["raw_columns"][0] == "mean_radius"


def test_same_seed_same_metrics_and_cancellation() -> None:
    recipe = {
        "name": "wine",
        "data": {"target": "target"},
        "process": [{"normalize": {}}],
        "model": {"type": "mlp", "hidden": [16]},
        "train": {"epochs": 8, "lr": 0.01},
    }
    a = run_training(recipe, load_sample("wine"))
    b = run_training(recipe, load_sample("wine"))
    assert a.metrics == b.metrics and [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    with pytest.raises(TrainingCancelled):
        run_training(recipe, load_sample("wine"), should_stop=lambda: True)


def test_regression_and_binary_cross_entropy_and_categoricals() -> None:
    res = run_training(
        {
            "name": "diab",
            "task": "regression",
            "data": {"target": "target"},
            "process": [{"normalize": {}}],
            "model": {"type": "mlp", "hidden": [16]},
            "train": {"epochs": 30, "lr": 0.01},
        },
        load_sample("diabetes"),
    )
    assert res.task == "regression" and res.metrics["r2"] > 0.2 and "predicted_vs_true" in res.plots
    assert res.signature["outputs"][0]["name"] == "prediction"
    rng = np.random.default_rng(0)
    n = 300
    color = rng.choice(["red", "blue"], n)
    x = rng.normal(size=n)
    frame = pd.DataFrame({"x": x, "color": color, "y": np.where((color == "red") ^ (x > 0), "yes", "no")})
    res = run_training(
        {
            "name": "bce",
            "data": {"target": "y"},
            "process": [{"one_hot": {}}, {"normalize": {}}],
            "model": {"type": "mlp", "hidden": [16]},
            "train": {"loss": "binary_cross_entropy", "epochs": 40, "lr": 0.01},
        },
        DataFrameSet.from_frame(frame, target="y"),
    )
    assert res.n_outputs == 1 and res.class_names == ["no", "yes"] and res.metrics["accuracy"] > 0.85
    sess = ort.InferenceSession(res.onnx)
    X = Preprocessor.from_state(res.preprocessing).transform_inputs([{"x": 1.0, "color": "red"}])
    assert sess.run(None, {"input": X})[0].shape == (1, 2)
    with pytest.raises(InvalidInput, match="evaluate.metrics"):
        run_training(
            {
                "name": "bad",
                "data": {"target": "y"},
                "process": [{"one_hot": {}}],
                "evaluate": {"metrics": ["r2"]},
            },
            DataFrameSet.from_frame(frame, target="y"),
        )


def test_tuning_inside_the_pipeline() -> None:
    res = run_training(
        {
            "name": "iris-tune",
            "data": {"target": "target", "val_size": 0.2},
            "process": [{"normalize": {}}],
            "model": {"type": "mlp", "hidden": [8]},
            "train": {"epochs": 9},
            "tune": {"trials": 6, "space": {"train.lr": {"low": 1e-4, "high": 0.1, "log": True}}},
        },
        load_sample("iris"),
    )
    assert res.tuning is not None and len(res.tuning["trials"]) == 6
    assert res.recipe["train"]["lr"] == res.tuning["best_params"]["train.lr"]
