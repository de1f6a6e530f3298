"""Helpers for the federation tests (a unique module name: tests/ has no packages)."""

from __future__ import annotations

from typing import Any

import numpy as np

from consortium.data.frame import DataFrameSet


def split(data: DataFrameSet, test: float = 0.25, seed: int = 0) -> tuple[DataFrameSet, DataFrameSet]:
    order = np.random.default_rng(seed).permutation(data.n_rows)
    cut = int(len(order) * (1 - test))
    return data.subset(np.sort(order[:cut])), data.subset(np.sort(order[cut:]))


def bc_recipe(**federated: Any) -> Any:
    from consortium.recipe import parse_recipe

    fed = {"datasets": ["northwind/bc", "riverside/bc", "lakeside/bc"], "rounds": 2, "local_epochs": 3,
           "min_nodes": 2, **federated}
    return parse_recipe({"name": "bc-fl", "process": [{"normalize": {"method": "standard"}}],
                         "model": {"type": "mlp", "hidden": [16]},
                         "train": {"lr": 0.01, "batch_size": 32, "seed": 0}, "federated": fed})


def centralized_accuracy(recipe: Any, train: DataFrameSet, test: DataFrameSet, epochs: int) -> float:
    """Same model, same global scaling, trained on all rows in one place."""
    from consortium.federation.app.features import local_stats, merge_stats, to_arrays
    from consortium.federation.app.model import encode_labels, global_model
    from consortium.training.trainer import evaluate, train_epochs

    x, y_raw = to_arrays(train, recipe.data.target, recipe.process)
    stats = merge_stats([local_stats(x, y_raw, train.kind)])
    model = global_model(recipe, stats)
    y = encode_labels(y_raw, recipe, stats)
    train_epochs(model, x, y, recipe.train, task="classification", epochs=epochs, seed=0)
    xt, yt_raw = to_arrays(test, recipe.data.target, recipe.process)
    return float(evaluate(model, xt, encode_labels(yt_raw, recipe, stats), loss="cross_entropy")["accuracy"])


def two_orgs_sharing_bc(http: Any, world: Any) -> tuple[Any, Any]:
    """Two organizations holding half of breast_cancer each as ``bc``; the second grants the first
    ``compute``. Returns (submitter, other)."""
    a, b = world.actor(world.org()), world.actor(world.org())
    for i, x in enumerate((a, b)):
        r = http.post("/api/v1/datasets/import-sample", headers=x.headers,
                      json={"sample": "breast_cancer", "name": "bc", "partitions": 2, "part": i + 1, "seed": 0})
        assert r.status_code == 201, r.text
    r = http.post("/api/v1/grants", json={"resource_type": "dataset", "resource": f"{b.org}/bc",
                                          "permission": "compute", "grantee_org": a.org}, headers=b.headers)
    assert r.status_code == 201, r.text
    return a, b


def finished_job(http: Any, actor: Any, job_id: str, timeout: float = 240) -> dict[str, Any]:
    """The job once it succeeded or failed (polled with a deadline)."""
    from support import wait_for

    return wait_for(lambda: (lambda j: j if j["state"] in ("succeeded", "failed") else None)(  # type: ignore[no-any-return]
        http.get(f"/api/v1/jobs/{job_id}", headers=actor.headers).json()), timeout, 1, f"job {job_id}")
