"""Names shared by the ServerApp and the ClientApp: record keys, run- and node-config keys.

A run carries the recipe as JSON in the run config (a recipe is data, never code). Nodes read
their data from ``node_config``: ``data-dir`` (their local store, see ``consortium.federation.app.datasets``),
``dataset`` (name in that store) and ``org`` (the organization name reported back).
"""

from __future__ import annotations

import json
from typing import Any

from flwr.app import ConfigRecord, RecordDict

from consortium.errors import InvalidInput

# run config keys
RECIPE = "recipe"  # recipe JSON
OUTPUT_DIR = "output-dir"  # where the ServerApp writes progress.jsonl, model.pt, result.json
VALIDATION_DIR = "validation-dir"  # server-held validation set (node_data store) ...
VALIDATION_NAME = "validation-dataset"  # ... and its name; "" for none
ROUND_TIMEOUT = "round-timeout"  # seconds a round waits for replies at most
STRAGGLER_GRACE = "straggler-grace"  # seconds to wait for more replies once min_nodes replied
NODE_WAIT = "node-wait-timeout"  # seconds to wait for min_nodes to connect
SHAPLEY_SAMPLES = "shapley-samples"  # Monte-Carlo permutations; 0 for none
SIM_DATA_DIR = "sim-data-dir"  # simulation only: data dir when node_config has none
DEFAULT_RUN_CONFIG: dict[str, Any] = {
    RECIPE: "", OUTPUT_DIR: "", VALIDATION_DIR: "", VALIDATION_NAME: "", ROUND_TIMEOUT: 600.0,
    STRAGGLER_GRACE: 8.0, NODE_WAIT: 120.0, SHAPLEY_SAMPLES: 0, SIM_DATA_DIR: "",
}

# node config keys
DATA_DIR = "data-dir"
DATASET = "dataset"
ORG = "org"
POLICY = "policy"  # a JSON file of the dataset policy's rules, read from the hub by the node (issue 19)

# record keys
ARRAYS = "arrays"
CONFIG = "config"
METRICS = "metrics"
PAYLOAD = "payload"  # ConfigRecord holding one JSON string under "json"
STATS_STAGE = "stats"


def pack(content: RecordDict, key: str, value: Any) -> None:
    """Put a JSON-serialisable value into ``content`` as a one-string ConfigRecord."""
    content[key] = ConfigRecord({"json": json.dumps(value)})


def scalar(value: object, key: str) -> int | float | str:
    """One value of a config or metric record, for ``int()``/``float()``: a list or bytes there
    is a malformed message.

    >>> scalar(3, "server-round"), scalar(0.1, "proximal-mu")
    (3, 0.1)
    """
    if not isinstance(value, int | float | str):
        raise InvalidInput(f"record entry {key!r} holds a {type(value).__name__}, not a number")
    return value


def unpack(content: RecordDict, key: str) -> Any:
    record = content.config_records.get(key)
    if record is None:
        raise KeyError(key)
    return json.loads(str(record["json"]))


def recipe_to_json(recipe: Any) -> str:
    """The recipe as run-config JSON (drops an empty ``register``, which does not read back)."""
    d = recipe.to_dict()
    if not d.get("register"):
        d.pop("register", None)
    return json.dumps(d, sort_keys=True)
