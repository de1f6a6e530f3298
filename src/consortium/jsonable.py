"""JSON-ready copies of what training and explanation code hands back (numpy arrays and scalars,
tensors, tuples), for job events and stored results.

>>> import numpy as np
>>> jsonable({"loss": np.float32(0.5), "shape": (2, 3), "w": np.array([[1, 2]]), 3: None})
{'loss': 0.5, 'shape': [2, 3], 'w': [[1, 2]], '3': None}
"""

from __future__ import annotations

from typing import Any


def jsonable(obj: Any) -> Any:
    """``obj`` with dict keys as strings, tuples as lists, anything with ``tolist`` (numpy, torch)
    as Python numbers, and any other object as its ``str``."""
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return jsonable(obj.tolist())
    return str(obj)
