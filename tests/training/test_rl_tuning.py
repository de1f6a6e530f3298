"""``tune: {method: rl}``: the REINFORCE controller learns a synthetic reward, children repeat with the
seed, a small rl job runs through a real worker (progress with rewards, the search on the model card),
and bad search spaces are refused with a 422 naming the field."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from support import wait_for

from consortium.data.samples import load_sample
from consortium.processing import Preprocessor, train_val_test_split
from consortium.recipe import ParamRange, parse_recipe
from consortium.training.rl_controller import Controller, decisions_of
from consortium.training.tuning import tune

SPACE = {"train.lr": {"low": 1e-4, "high": 0.3, "log": True}, "model.hidden.0": {"choices": [4, 16, 64]},
         "train.optimizer": {"choices": ["adam", "sgd"]}}


def test_policy_moves_toward_the_better_choice() -> None:
    c = Controller(decisions_of({"model.hidden.0": ParamRange(choices=[4, 16, 64]),
                                 "train.optimizer": ParamRange(choices=["adam", "sgd"])}), seed=3)
    before = c.preferences()["model.hidden.0"]["16"]
    picked = []
    for _ in range(80):  # hidden 16 is clearly better; the optimizer does not matter
        child = c.propose()
        picked.append(child.params["model.hidden.0"])
        c.learn(child, 0.9 if child.params["model.hidden.0"] == 16 else 0.5 + 0.01 * len(picked) % 3)
    after = c.preferences()["model.hidden.0"]["16"]
    assert before < 0.5 < 0.85 < after
    assert picked[-20:].count(16) > picked[:20].count(16)


@pytest.fixture(scope="module")
def splits() -> tuple[np.ndarray, ...]:
    data = load_sample("breast_cancer")
    tr, va, _ = train_val_test_split(data.target_values(), test_size=0.2, val_size=0.2, seed=0)
    prep = Preprocessor.fit(data.subset(tr), [{"normalize": {}}])
    return (*prep.transform(data.subset(tr)), *prep.transform(data.subset(va)))


def _search(splits: tuple[np.ndarray, ...], method: str, seed: int) -> dict[str, Any]:
    r = parse_recipe({"name": "rl", "data": {"target": "target"}, "model": {"type": "mlp", "hidden": [16]},
                      "train": {"epochs": 4, "seed": seed}, "tune": {"method": method, "trials": 6, "space": SPACE}})
    seen: list[dict[str, Any]] = []
    best, summary = tune(r, *splits, task="classification", input_shape=(30,), n_outputs=2, on_trial=seen.append)
    assert len(seen) == 6 and seen[-1]["best_reward"] == summary["best_reward"] == max(summary["rewards"])
    assert all(isinstance(x, float) for x in summary["rewards"])  # pruned children are rewarded too
    assert best.train.lr == summary["best_params"]["train.lr"]
    return summary


def test_same_seed_same_children(splits: tuple[np.ndarray, ...]) -> None:
    a, b, other = _search(splits, "rl", 0), _search(splits, "rl", 0), _search(splits, "rl", 1)
    children = [[t["params"] for t in s["trials"]] for s in (a, b, other)]
    assert children[0] == children[1] and a["rewards"] == b["rewards"] and a["preferences"] == b["preferences"]
    assert children[0] != children[2]
    assert a["method"] == "rl" and set(a["preferences"]) == set(SPACE)
    assert all(abs(sum(p.values()) - 1) < 1e-3 for p in a["preferences"].values())
    rnd = _search(splits, "random", 0)
    assert rnd["sampler"] == "random" and "preferences" not in rnd
    assert [t["params"] for t in rnd["trials"]] == [t["params"] for t in _search(splits, "random", 0)["trials"]]


@pytest.mark.one_backend  # a real worker trains; the queue is tested on both
def test_rl_job_through_the_worker(http: Any, world: Any, worker: Any) -> None:
    a = world.actor(world.org())
    r = http.post("/api/v1/datasets/import-sample", json={"sample": "breast_cancer", "name": "bc"},
                  headers=a.headers)
    assert r.status_code == 201, r.text
    body = {"name": "bc-rl", "data": {"dataset": f"{a.org}/bc", "target": "target"},
            "process": [{"normalize": {}}], "model": {"type": "mlp", "hidden": [16]},
            "train": {"epochs": 3}, "evaluate": {"cv_folds": 0},
            "tune": {"method": "rl", "trials": 4, "space": SPACE}}
    r = http.post("/api/v1/jobs", json={"recipe": body}, headers=a.headers)
    assert r.status_code == 201, r.text

    def done() -> dict[str, Any] | None:
        j = http.get(f"/api/v1/jobs/{r.json()['id']}", headers=a.headers).json()
        return j if j["state"] in ("succeeded", "failed", "cancelled") else None

    job = wait_for(done, 180, 0.5, "rl job")
    assert job["state"] == "succeeded", job["error"]
    tuning = job["result"]["tuning"]
    assert tuning["method"] == "rl" and len(tuning["rewards"]) == 4 and set(tuning["preferences"]) == set(SPACE)
    events = http.get(f"/api/v1/jobs/{job['id']}/events", params={"kind": "progress", "limit": 1000},
                      headers=a.headers).json()["items"]
    children = [e["data"]["trial"] for e in events if e["data"].get("stage") == "tune"]
    assert [c["number"] for c in children] == [0, 1, 2, 3]  # every child streamed, none throttled away
    assert [c["reward"] for c in children] == tuning["rewards"]
    assert children[-1]["best_reward"] == max(tuning["rewards"]) and children[-1]["best_params"]
    v = http.get(f"/api/v1/models/{job['result']['model']}/versions/{job['result']['version']}",
                 headers=a.headers).json()
    search = v["lineage"]["tuning"]
    assert search["budget"] == 4 and search["best_params"] == tuning["best_params"]
    assert search["preferences"] == tuning["preferences"] and "tuning_rewards" in v["plots"]
    png = http.get(f"/api/v1/models/{job['result']['model']}/versions/{job['result']['version']}/plots/"
                   "tuning_rewards", headers=a.headers)
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"


@pytest.mark.parametrize(("space", "needle"), [
    ({}, "tune.space: the search space has no choices"),
    ({"model.hidden.0": {"choices": [16]}, "train.optimizer": {"choices": ["adam"]}},
     "single value (model.hidden.0, train.optimizer)"),
    ({"model.nope": {"choices": [1, 2]}}, "tune.space.model.nope"),
    ({"train.lr": {"low": 0.1, "high": 0.1}}, "tune.space.train.lr"),
])
def test_bad_rl_spaces_are_refused_naming_the_field(http: Any, world: Any, space: dict[str, Any],
                                                     needle: str) -> None:
    a = world.actor(world.org())
    body = {"name": "bad", "data": {"dataset": f"{a.org}/bc", "target": "target"}, "train": {"epochs": 2},
            "tune": {"method": "rl", "trials": 2, "space": space}}
    r = http.post("/api/v1/jobs", json={"recipe": body}, headers=a.headers)
    assert r.status_code == 422, r.text
    assert needle in r.json()["error"]["message"], r.text
