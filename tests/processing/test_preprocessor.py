"""Preprocessor: fitted on train only, JSON state, training and serving paths agree."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from consortium.data.frame import DataFrameSet
from consortium.data.samples import load_sample
from consortium.errors import InvalidInput
from consortium.processing import Preprocessor

STEPS = [
    {"drop_missing": {"columns": ["c"]}},
    {"impute": {"strategy": "median"}},
    {"drop_duplicates": {}},
    {"clip_outliers": {"method": "quantile", "lower": 0.05, "upper": 0.95}},
    {"one_hot": {}},
    {"normalize": {"method": "standard"}},
]


def _messy(n: int = 200, seed: int = 0) -> DataFrameSet:
    rng = np.random.default_rng(seed)
    a = rng.normal(10, 3, n)
    a[rng.random(n) < 0.1] = np.nan
    b = rng.exponential(5, n)
    c = rng.choice(["red", "green", "blue"], n).astype(object)
    c[rng.random(n) < 0.05] = None
    y = (np.nan_to_num(a) + b > 14).astype(int)
    frame = pd.DataFrame({"a": a, "b": b, "c": c, "y": y})
    frame = pd.concat([frame, frame.iloc[:5]], ignore_index=True)  # duplicates
    return DataFrameSet.from_frame(frame, target="y")


def test_training_and_serving_paths_give_identical_features() -> None:
    data = _messy()
    train, test = data.subset(np.arange(150)), data.subset(np.arange(150, 205))
    p = Preprocessor.fit(train, STEPS, task="classification")
    assert p.feature_names == ["a", "b", "c=blue", "c=green", "c=red"]
    X, y = p.transform(test)
    kept = test.frame.dropna(subset=["c"]).drop_duplicates(subset=["a", "b", "c"])
    rows = kept[["a", "b", "c"]].astype(object).where(kept[["a", "b", "c"]].notna(), None).values.tolist()
    assert len(rows) == len(X)
    np.testing.assert_array_equal(p.transform_inputs(rows), X)
    dicts = [dict(zip(["a", "b", "c"], r, strict=False)) for r in rows]
    np.testing.assert_array_equal(p.transform_inputs(dicts), X)
    # the state is plain JSON and reloads to the same transform
    q = Preprocessor.from_state(json.loads(json.dumps(p.state())))
    np.testing.assert_array_equal(q.transform_inputs(rows), X)
    np.testing.assert_array_equal(q.transform(test)[0], X)
    assert y.dtype == np.int64


def test_fitted_on_train_only() -> None:
    frame = pd.DataFrame({"a": [0.0, 2.0, 100.0, 200.0], "y": [0, 1, 0, 1]})
    data = DataFrameSet.from_frame(frame, target="y")
    p = Preprocessor.fit(data.subset(np.array([0, 1])), [{"normalize": {}}])
    assert p.state()["steps"][0]["fitted"] == {"shift": [1.0], "scale": [1.0]}
    X, _ = p.transform(data)
    assert X[:, 0].tolist() == [-1.0, 1.0, 99.0, 199.0]


def test_missing_values_at_serving_are_imputed_or_refused() -> None:
    data = _messy()
    imputing = Preprocessor.fit(data, STEPS)
    out = imputing.transform_inputs([[None, 1.0, "red"]])
    assert np.isfinite(out).all()
    strict = Preprocessor.fit(data, [{"drop_missing": {}}, {"one_hot": {}}])
    with pytest.raises(InvalidInput, match="row 0 has a missing value in column 'a'"):
        strict.transform_inputs([[None, 1.0, "red"]])
    with pytest.raises(InvalidInput, match="has 2 values; the model takes 3"):
        strict.transform_inputs([[1.0, 2.0]])
    with pytest.raises(InvalidInput, match="unknown column"):
        strict.transform_inputs([{"a": 1, "zz": 2}])


def test_unencoded_text_column_is_refused_with_a_fix() -> None:
    with pytest.raises(InvalidInput, match="one_hot"):
        Preprocessor.fit(_messy(), [{"drop_missing": {}}])


def test_images_rescale_normalize_and_serving_shapes() -> None:
    digits = load_sample("digits")
    p = Preprocessor.fit(digits.subset(np.arange(1000)), [{"rescale": {}}, {"normalize": {}}])
    assert p.output_shape == (1, 8, 8)
    assert p.state()["steps"][0]["fitted"]["factor"] == [1 / 16]
    X, y = p.transform(digits.subset(np.arange(1000, 1010)))
    raw = digits.images[1000:1010]
    np.testing.assert_allclose(p.transform_inputs(raw), X, rtol=0, atol=1e-6)
    np.testing.assert_allclose(p.transform_inputs(raw[0, 0].tolist()), X[:1], atol=1e-6)  # (H, W)
    np.testing.assert_allclose(p.transform_inputs(raw.reshape(10, 64).tolist()), X, atol=1e-6)  # flat rows
    assert p.class_names == [str(i) for i in range(10)] and y.tolist() == digits.labels[1000:1010].tolist()
    with pytest.raises(InvalidInput, match="images must have shape"):
        p.transform_inputs(np.zeros((3, 5)))


def test_serving_path_is_numpy_only_and_fast() -> None:
    code = (
        "import sys, json, time; from consortium.data.samples import load_sample;"
        "from consortium.processing import Preprocessor;"
        "d = load_sample('breast_cancer');"
        "p = Preprocessor.fit(d, [{'impute': {}}, {'clip_outliers': {}}, {'normalize': {}}]);"
        "row = d.frame.iloc[0, :30].tolist(); p.transform_inputs([row]);"
        "t = time.perf_counter(); [p.transform_inputs([row]) for _ in range(1000)];"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'us': (time.perf_counter() - t) * 1000}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["torch"] is False
    assert res["us"] < 200, f"{res['us']:.0f} us per row"


def test_label_encoding_with_string_classes() -> None:
    frame = pd.DataFrame({"x": np.arange(20.0), "y": ["cat", "dog"] * 10})
    p = Preprocessor.fit(DataFrameSet.from_frame(frame, target="y"), [])
    _, y = p.transform(DataFrameSet.from_frame(frame, target="y"))
    assert p.classes == ["cat", "dog"] and y[:4].tolist() == [0, 1, 0, 1]
