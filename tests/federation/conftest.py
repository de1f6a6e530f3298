"""Shared fixtures: breast_cancer split into a held-out test set and IID organization partitions."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from fl_helpers import split

from consortium.data.samples import load_sample, partition


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def breast_cancer() -> dict[str, Any]:
    train, test = split(load_sample("breast_cancer"))
    orgs = ["northwind", "riverside", "lakeside"]
    return {"train": train, "test": test, "orgs": orgs,
            "parts": dict(zip(orgs, partition(train, 3, skew="iid", seed=0), strict=True))}
