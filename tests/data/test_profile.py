"""CSV profiling in a stream: statistics over a file of many read blocks (gathered into groups)
equal those pandas computes on the whole file, whatever the chunking of the source."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from consortium.data import tabular


def big_csv() -> bytes:
    rng = np.random.default_rng(0)
    n = 30_000  # about 700 KB: many 64 KiB read blocks and several profiling groups
    x = rng.integers(-50, 50, n).astype(str).astype(object)
    x[n - 5] = "2.5"  # an integer column turns float near the end
    y = np.where(rng.random(n) < 0.1, "", np.round(rng.random(n), 4).astype(str))  # 10% missing
    z = rng.integers(0, 9, n).astype(str).astype(object)
    z[n // 2] = "abc"  # a number column turns string in the middle
    label = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    rows = ["x,y,z,label"] + [f"{x[i]},{y[i]},{z[i]},{label[i]}" for i in range(n)]
    return ("\n".join(rows) + "\n").encode()


@pytest.mark.parametrize("chunk", [1 << 20, 4096, 777])
def test_stream_profile_matches_pandas(chunk: int) -> None:
    data = big_csv()
    s = tabular.profile_csv(lambda: (data[i:i + chunk] for i in range(0, len(data), chunk)), "label")
    df = pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=[""])
    cols = {c["name"]: c for c in s["columns"]}
    assert s["rows"] == len(df) == 30_000
    assert [cols[k]["type"] for k in "xyz"] == ["float", "float", "string"]
    assert cols["y"]["missing"] == int(df["y"].isna().sum()) > 2000
    assert cols["x"]["min"] == df["x"].min() and cols["x"]["max"] == df["x"].max()
    assert cols["x"]["mean"] == pytest.approx(df["x"].mean())
    assert cols["y"]["mean"] == pytest.approx(df["y"].mean())
    assert s["classes"] == {k: int(v) for k, v in df["label"].value_counts().items()}
