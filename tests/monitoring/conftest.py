"""A breast-cancer model with fitted preprocessing, reference statistics, a test-set accuracy and a
recipe in its lineage, registered for an owner organization; helpers to deploy and share it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from registry_models import fit_logistic, softmax_onnx

RECIPE = {"name": "bc-retrain", "data": {"dataset": None, "target": "target", "seed": 0, "version": 1},
          "process": [{"normalize": {"method": "standard"}}], "model": {"type": "mlp", "hidden": [8]},
          "train": {"loss": "cross_entropy", "optimizer": "adam", "lr": 0.01, "epochs": 3, "batch_size": 64},
          "evaluate": {"cv_folds": 0}, "register": {"model": "bc-risk"}}


@pytest.fixture(scope="module")
def owner(world: Any) -> Any:
    return world.actor(world.org(), "admin")


@pytest.fixture(scope="module")
def caller(world: Any) -> Any:
    return world.actor(world.org(), "member")


@pytest.fixture(scope="module")
def bc(http: Any, services: Any, owner: Any) -> dict[str, Any]:
    """Logistic regression on 400 breast-cancer rows; the other 169 rows are live traffic."""
    from consortium.data.samples import load_sample
    from consortium.evaluation.reference import reference_stats
    from consortium.processing.preprocessor import Preprocessor
    from consortium.registry import models as reg
    from consortium.store.db import transaction

    r = http.post("/api/v1/datasets/import-sample", json={"sample": "breast_cancer", "name": "bc"},
                  headers=owner.headers)
    assert r.status_code == 201, r.text
    data = load_sample("breast_cancer")
    idx = np.random.default_rng(0).permutation(data.n_rows)
    train, test = data.subset(idx[:400]), data.subset(idx[400:])
    prep = Preprocessor.fit(train, [{"normalize": {"method": "standard"}}], task="classification")
    X, y = prep.transform(train)
    w, b = fit_logistic(X, y, 2)
    Xt, yt = prep.transform(test)
    acc = float(np.mean((Xt @ w + b).argmax(1) == yt))
    recipe = {**RECIPE, "data": {**RECIPE["data"], "dataset": f"{owner.org}/bc"}}
    with transaction(services.session_factory) as s:
        reg.register_version(s, owner.org_id, "bc-risk", onnx=softmax_onnx(w, b), blobs=services.blobs,
                             preprocessing=prep.state(), task="classification", class_names=prep.class_names,
                             reference_stats=reference_stats(X, prep.feature_names or None),
                             metrics={"accuracy": acc}, lineage={"recipe": recipe, "source": "training"})
    rows = test.frame[prep.input_columns].to_numpy().tolist()
    return {"rows": rows, "labels": [prep.class_names[i] for i in yt], "columns": prep.input_columns,
            "accuracy": acc, "class_names": prep.class_names}
