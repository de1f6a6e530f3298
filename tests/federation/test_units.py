"""Node data store, federated statistics, contributions, DP planning and the budget refusal."""

from __future__ import annotations

import numpy as np
import pytest
from fl_helpers import bc_recipe

from consortium.data.samples import load_sample
from consortium.errors import Conflict, InvalidInput, NotFound
from consortium.federation.app.contribution import contribution_report, weighted_average
from consortium.federation.app.datasets import list_datasets, load_dataset, save_dataset
from consortium.federation.app.features import local_stats, merge_stats, to_arrays
from consortium.federation.app.privacy import check_budget, epsilon_for, plan_job
from consortium.federation.app.progress import JsonlSink, read_progress


def test_node_store_round_trips_tabular_and_images(tmp_path):
    bc, digits = load_sample("breast_cancer"), load_sample("digits")
    save_dataset(tmp_path, "bc", bc)
    save_dataset(tmp_path, "digits", digits)
    back = load_dataset(tmp_path, "bc")
    assert back.frame.equals(bc.frame) and back.target == "target" and back.class_names == bc.class_names
    img = load_dataset(tmp_path, "digits")
    assert np.array_equal(img.images, digits.images) and np.array_equal(img.labels, digits.labels)
    assert list_datasets(tmp_path) == ["bc", "digits"]
    with pytest.raises(NotFound, match="datasets there: bc, digits"):
        load_dataset(tmp_path, "nope")
    with pytest.raises(InvalidInput):
        save_dataset(tmp_path, "../escape", bc)


def test_merged_statistics_equal_pooled_statistics():
    data = load_sample("breast_cancer")
    x, y = to_arrays(data, "target", [])
    parts = [local_stats(x[i::3], y[i::3], "tabular") for i in range(3)]
    g = merge_stats(parts)
    assert g.n_rows == 569 and g.classes == [0, 1] and g.input_shape == [30]
    assert np.allclose(g.mean, x.mean(axis=0), rtol=1e-6)
    assert np.allclose(g.std, x.std(axis=0), rtol=1e-4)
    with pytest.raises(InvalidInput, match="different feature shapes"):
        merge_stats([parts[0], local_stats(x[:, :5], y, "tabular")])
    assert g.class_names == ["0", "1"]  # no node named its labels
    named = [{**p, "class_names": data.class_names} for p in parts]
    assert merge_stats(named).class_names == ["malignant", "benign"]
    assert merge_stats([named[0], parts[1]]).class_names == ["malignant", "benign"]  # an unnamed node agrees
    assert merge_stats([named[0], {**parts[1], "class_names": ["b", "m"]}]).class_names == ["0", "1"]  # disagree


def test_leave_one_out_flags_a_harmful_update():
    good = ({"w": np.array([1.0])}, 50)
    bad = ({"w": np.array([9.0])}, 50)
    score = lambda s: -abs(float(s["w"][0]) - 1.0)  # noqa: E731 - best at w == 1
    r = contribution_report({"good": good, "also_good": good, "bad": bad}, {"w": np.array([0.0])}, score,
                            shapley_samples=30, seed=1)
    assert r["leave_one_out"]["bad"]["gain"] < 0 < r["leave_one_out"]["good"]["gain"] + 1e-12
    assert r["shapley"]["bad"] < r["shapley"]["good"]
    assert weighted_average([good, bad])["w"][0] == pytest.approx(5.0)


def test_dp_plan_meets_target_and_budget_refusal_names_the_numbers():
    recipe = bc_recipe(dp={"epsilon": 3.0, "delta": 1e-5})
    plan = plan_job(recipe, {"northwind": 140, "riverside": 140})
    for p in plan.values():
        assert 2.5 < p.epsilon <= 3.0 + 1e-6
        assert epsilon_for(p.noise_multiplier, p.sample_rate, p.steps // 2, p.delta) < p.epsilon
    ok = check_budget(recipe, {"northwind": 140}, 3.5)
    assert set(ok) == {"northwind"}
    with pytest.raises(Conflict) as e:
        check_budget(recipe, {"northwind": 140, "riverside": 140}, {"northwind": 10.0, "riverside": 1.0})
    assert "riverside" in str(e.value) and e.value.details["over"][0]["budget"] == 1.0
    assert e.value.details["over"][0]["planned_epsilon"] > 1.0
    with pytest.raises(InvalidInput, match="no federated.dp"):
        check_budget(bc_recipe(), {"a": 10}, 1.0)


def test_progress_file_is_readable_while_written(tmp_path):
    sink = JsonlSink(tmp_path / "p.jsonl")
    sink({"kind": "round", "round": 1, "global": {"loss": float("nan")}})
    with (tmp_path / "p.jsonl").open("a") as f:
        f.write('{"kind": "rou')  # a line still being written is not returned
    assert read_progress(tmp_path / "p.jsonl") == [{"kind": "round", "round": 1, "global": {"loss": None}}]


def test_dp_plan_is_made_once_per_node_and_run_and_the_ledger_stays_exact(tmp_path):
    import json

    from flwr.app import Context, RecordDict

    from consortium.federation.app import client_app
    from consortium.federation.app import protocol as P

    recipe = bc_recipe(rounds=3, local_epochs=2, dp={"epsilon": 3.0, "delta": 1e-5})
    ctx = Context(run_id=7, node_id=1, node_config={P.DATA_DIR: str(tmp_path), P.DATASET: "bc", P.ORG: "a"},
                  state=RecordDict(), run_config={})
    plan = client_app._privacy(ctx, recipe, 150)
    assert plan == plan_job(recipe, {"a": 150})["a"]
    ledger = tmp_path / ".privacy" / "run-7-bc.json"
    entry = json.loads(ledger.read_text())
    assert entry["steps"] == 0 and entry["plan"] == plan.to_dict()
    # a new ClientApp process (empty memory) reuses the ledger's plan instead of planning again
    client_app._PLANS.clear()
    entry["plan"]["noise_multiplier"] = 1.2345
    ledger.write_text(json.dumps(entry))
    assert client_app._privacy(ctx, recipe, 150).noise_multiplier == 1.2345
    # other job settings are a different plan
    assert client_app._privacy(ctx, bc_recipe(rounds=4, dp={"epsilon": 3.0}), 150).noise_multiplier != 1.2345
    # after all rounds the spent epsilon is the accountant's over every step taken: the plan's
    client_app._PLANS.clear()
    ledger.unlink()
    plan = client_app._privacy(ctx, recipe, 150)
    assert epsilon_for(plan.noise_multiplier, plan.sample_rate, plan.steps_per_round * 3, 1e-5) == \
        pytest.approx(plan.epsilon)
    assert oct(ledger.stat().st_mode & 0o777) == "0o600"
