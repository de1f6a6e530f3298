"""Recipe parsing: the documented shape, clear errors with field paths, checks against data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from consortium.data.frame import DataFrameSet
from consortium.data.samples import load_sample
from consortium.errors import InvalidInput
from consortium.recipe import CNNSpec, apply_params, parse_recipe, validate_against

FULL = """
name: digits-cnn
task: classification
data:    {dataset: northwind/digits, version: 1, target: label, test_size: 0.2, val_size: 0.1, seed: 0}
process: [{drop_missing: {}}, {impute: {strategy: mean}}, {normalize: {method: standard}}]
augment: [{horizontal_flip: {p: 0.5}}, {rotation: {degrees: 10}}]
model:   {type: cnn, channels: [32, 64], kernel_size: 3, pool: 2, batch_norm: false, dropout: 0.0,
          dense: [128]}
train:   {loss: cross_entropy, optimizer: adam, lr: 0.001, weight_decay: 0, momentum: 0.9, epochs: 10,
          batch_size: 32, schedule: {type: step, step_size: 5, gamma: 0.5}, early_stopping: {patience: 3},
          seed: 0}
evaluate: {cv_folds: 5, metrics: [accuracy, f1_macro, roc_auc]}
tune:    {trials: 8, timeout_s: 120, space: {train.lr: {low: 1e-4, high: 1e-1, log: true},
          model.dense.0: {choices: [64, 128]}}}
federated: {datasets: [a/bc, b/bc, c/bc], strategy: fedprox, rounds: 20, local_epochs: 1, min_nodes: 2,
            secure_aggregation: false, dp: {epsilon: 3, delta: 1e-5, max_grad_norm: 1.0}, proximal_mu: 0.01}
register: {model: digits-classifier}
"""


def test_full_recipe_parses_and_round_trips() -> None:
    r = parse_recipe(FULL)
    assert isinstance(r.model, CNNSpec) and r.model.channels == [32, 64]
    assert [s.name for s in r.process] == ["drop_missing", "impute", "normalize"]
    assert r.train.schedule is not None and r.train.schedule.type == "step"
    assert r.federated is not None and r.federated.dp is not None and r.federated.dp.epsilon == 3
    assert r.registration is not None and r.registration.model == "digits-classifier"
    assert parse_recipe(r.to_dict()) == r
    assert parse_recipe(__import__("json").dumps(r.to_dict())) == r


def test_seed_keras_example_is_expressible() -> None:
    r = parse_recipe(
        {
            "name": "seed",
            "model": {"type": "cnn", "channels": [32], "padding": "valid", "dense": [128]},
            "train": {"loss": "binary_cross_entropy", "optimizer": "adam"},
        }
    )
    assert r.resolved_task == "classification" and r.resolved_loss == "binary_cross_entropy"


@pytest.mark.parametrize(
    "bad, path, allowed",
    [
        ({"train": {"optimizer": "lbfgs"}}, "train.optimizer", "'adam', 'adamw' or 'sgd'"),
        ({"train": {"loss": "hinge"}}, "train.loss", "'cross_entropy', 'binary_cross_entropy' or 'mse'"),
        ({"model": {"type": "cnn", "chanels": [8]}}, "model.chanels", "remove it"),
        ({"model": {"type": "rnn"}}, "model", "'cnn', 'mlp', 'logistic'"),
        ({"process": [{"impute": {"strategy": "avg"}}]}, "process.0.impute.strategy", "'most_frequent'"),
        ({"process": [{"scale": {}}]}, "process.0.scale", "remove it"),
        ({"surprise": 1}, "surprise", "remove it"),
        ({"tune": {"space": {"train.lrr": {"low": 0.1, "high": 1}}}}, "tune.space.train.lrr", "dotted path"),
        ({"task": "regression", "train": {"loss": "cross_entropy"}}, "(recipe)", "mse"),
    ],
)
def test_errors_name_the_field_and_what_is_allowed(bad: dict, path: str, allowed: str) -> None:
    with pytest.raises(InvalidInput) as e:
        parse_recipe({"name": "x", **bad})
    assert f"at {path}" in str(e.value) and allowed in str(e.value)


def test_not_a_mapping_and_bad_yaml() -> None:
    with pytest.raises(InvalidInput):
        parse_recipe("- a\n- b")
    with pytest.raises(InvalidInput, match="YAML"):
        parse_recipe("name: [unclosed")


def test_bad_yaml_says_where_in_one_line_and_how_to_fix_it() -> None:
    with pytest.raises(InvalidInput) as e:
        parse_recipe("name: x\nmodel: {type: mlp\ntrain: {lr: 0.1}\n")
    assert e.value.message == ("the recipe is not valid YAML at line 3, column 6: expected ',' or '}', but got ':' "
                               "(in the flow mapping that starts at line 2, column 8)")
    assert e.value.details == [{"line": 3, "column": 6}] and "close every {" in (e.value.hint or "")
    with pytest.raises(InvalidInput, match="line 3, column 1") as e:
        parse_recipe("name: x\nmodel:\n\ttype: mlp\n")
    assert e.value.hint == "indent with spaces, not tabs"


def test_apply_params_sets_nested_values() -> None:
    r = parse_recipe(FULL)
    r2 = apply_params(r, {"train.lr": 0.05, "model.dense.0": 64})
    assert r2.train.lr == 0.05 and isinstance(r2.model, CNNSpec) and r2.model.dense == [64]
    assert r.train.lr == 0.001 and r2.tune == r.tune


def test_validate_against_data() -> None:
    bc = load_sample("breast_cancer")
    digits = load_sample("digits")
    ok = parse_recipe({"name": "x", "data": {"target": "target"}, "model": {"type": "mlp"}})
    validate_against(ok, bc)
    with pytest.raises(InvalidInput, match="data.target"):
        validate_against(parse_recipe({"name": "x", "data": {"target": "nope"}}), bc)
    with pytest.raises(InvalidInput, match="train.loss: mse on class labels"):
        validate_against(
            parse_recipe({"name": "x", "data": {"target": "target"}, "train": {"loss": "mse"}}), bc
        )
    with pytest.raises(InvalidInput, match="cnn needs image data"):
        validate_against(
            parse_recipe({"name": "x", "data": {"target": "target"}, "model": {"type": "cnn"}}), bc
        )
    with pytest.raises(InvalidInput, match="binary_cross_entropy needs 2 classes"):
        validate_against(parse_recipe({"name": "x", "train": {"loss": "binary_cross_entropy"}}), digits)
    # explicit regression on a numeric target is fine, and a continuous target needs regression
    diabetes = load_sample("diabetes")
    validate_against(
        parse_recipe({"name": "x", "task": "regression", "data": {"target": "target"}}), diabetes
    )
    frame = pd.DataFrame({"a": np.arange(50.0), "y": np.linspace(0, 1, 50) ** 2})
    with pytest.raises(InvalidInput, match="continuous"):
        validate_against(parse_recipe({"name": "x", "data": {"target": "y"}}), DataFrameSet.from_frame(frame))
