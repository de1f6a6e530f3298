"""The processing steps a recipe can name, by name: one explicit list (nothing registers itself
when its module is imported), and ``make_step``, which builds one.

>>> import numpy as np
>>> from consortium.processing.table import Table
>>> s = make_step("normalize", {"method": "standard"})
>>> t = Table(num=np.array([[1.0], [3.0]]), names=["a"], cat={}, image=False)
>>> s.fit(t); s.apply(t, training=False).num.ravel().tolist()
[-1.0, 1.0]
>>> make_step("sharpen")
Traceback (most recent call last):
...
consortium.errors.InvalidInput: unknown processing step 'sharpen' (use one of: drop_missing, ...)
"""

from __future__ import annotations

from typing import Any

from consortium.errors import InvalidInput
from consortium.processing.cleaning import ClipOutliers, DropDuplicates, DropMissing, Impute
from consortium.processing.encoding import OneHot
from consortium.processing.scaling import Normalize, Rescale
from consortium.processing.steps import Step

STEPS: dict[str, type[Step]] = {cls.name: cls for cls in (
    DropMissing, DropDuplicates, Impute, ClipOutliers,  # cleaning
    OneHot,  # encoding
    Normalize, Rescale,  # scaling
)}


def make_step(name: str, params: dict[str, Any] | None = None, fitted: dict[str, Any] | None = None) -> Step:
    """The step ``name`` with its recipe ``params`` (and its ``fitted`` state, when reloaded)."""
    if name not in STEPS:
        raise InvalidInput(f"unknown processing step {name!r}", hint=f"use one of: {', '.join(STEPS)}")
    return STEPS[name](params, fitted)
