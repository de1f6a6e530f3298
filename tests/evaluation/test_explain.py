"""Integrated Gradients: completeness, image heat maps, named tabular features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from consortium.data.samples import load_sample
from consortium.errors import InvalidInput
from consortium.evaluation.explain import explain
from consortium.processing import Preprocessor
from consortium.recipe import CNNSpec
from consortium.training.models import build_model
from consortium.training.pipeline import run_training
from consortium.training.result import explainable


def test_image_attributions_are_complete_and_rendered() -> None:
    torch.manual_seed(0)
    spec = CNNSpec(channels=[4], dense=[16])
    model = build_model(spec, (1, 8, 8), 10)
    import io

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    x = np.random.default_rng(0).random((1, 8, 8)).astype(np.float32)
    e = explain(explainable(spec.model_dump(), buf.getvalue(), (1, 8, 8), 10), x, target=3, n_steps=128)
    a = np.array(e["attributions"])
    assert a.shape == (1, 8, 8) and e["target"] == 3
    with torch.no_grad():
        p = (
            torch.softmax(model(torch.from_numpy(x[None])), 1)[0, 3]
            - torch.softmax(model(torch.zeros(1, 1, 8, 8)), 1)[0, 3]
        )
    assert a.sum() == pytest.approx(float(p), abs=2e-3)  # completeness: attributions add up to the change
    assert e["heatmap_png"].startswith(b"\x89PNG")


def test_tabular_explanation_from_a_result_names_features() -> None:
    data = load_sample("breast_cancer")
    res = run_training(
        {
            "name": "bc",
            "data": {"target": "target"},
            "process": [{"normalize": {}}],
            "model": {"type": "logistic"},
            "train": {"epochs": 15, "lr": 0.05},
        },
        data,
    )
    row = data.frame.drop(columns="target").iloc[0].to_dict()
    e = explain(res, row, target="malignant")
    assert e["target_name"] == "malignant" and len(e["features"]) == 30
    scores = [abs(f["score"]) for f in e["features"]]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0
    assert {f["name"] for f in e["features"]} == set(Preprocessor.from_state(res.preprocessing).feature_names)
    with pytest.raises(InvalidInput, match="one sample"):
        explain(res, [list(row.values())] * 2)
    with pytest.raises(InvalidInput, match="unknown class"):
        explain(res, row, target="tumour")
