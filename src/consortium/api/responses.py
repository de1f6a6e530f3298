"""Response classes shared by routes."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    """JSON rendered by orjson: ~5x faster than the standard library on prediction answers, and
    numpy arrays and scalars serialize as they are (NaN and infinity become null, as JSON wants).

    >>> import numpy as np
    >>> FastJSONResponse({"p": np.float32(0.5), "y": np.array([1, 2])}).body
    b'{"p":0.5,"y":[1,2]}'
    """

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
