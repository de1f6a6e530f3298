"""The Flower ``ClientApp`` every node runs: our code only, configured by data.

A node never runs code sent by the hub: it loads the dataset named in its ``node_config``
from its own store, reads the recipe (JSON) from the run config, and answers three messages:

- ``query`` (stage ``stats``): row count, feature sums and class labels (``features``), plus
  the node's DP plan when the recipe asks for DP.
- ``train``: load the global weights, evaluate them on the local rows, train
  ``local_epochs`` epochs (FedProx term, DP-SGD when asked), return the new weights, the
  sample count, losses, accuracy and the epsilon spent so far.
- legacy ``train`` messages of the SecAgg+ workflow (``fitins.*`` records), handled by the
  same code behind Flower's ``secaggplus_mod``.

Run by Flower, not called directly: ``flower-supernode --node-config "data-dir='...'
dataset='bc' org='northwind'"`` with ``consortium.federation.app.client_app:app`` as the app's
``clientapp`` component.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from consortium.federation.app import protocol as P
from consortium.federation.app import site_policy

app = ClientApp()
_CACHE: dict[tuple[str, str, float], Any] = {}
_LOCK = threading.Lock()


def _recipe(context: Context) -> Any:
    from consortium.recipe import parse_recipe

    return parse_recipe(json.loads(str(context.run_config[P.RECIPE])))


def node_identity(context: Context) -> tuple[str, str, str]:
    """(data dir, dataset name, organization) of this node, from node or run config."""
    cfg = context.node_config
    data_dir = str(cfg.get(P.DATA_DIR) or "")
    dataset = str(cfg.get(P.DATASET) or "")
    if not data_dir:  # simulation engine: node_config only has partition-id
        data_dir = str(context.run_config.get(P.SIM_DATA_DIR) or "")
        names = sorted(p.name for p in Path(data_dir).iterdir() if not p.name.startswith("."))
        dataset = names[int(cfg["partition-id"])]
    org = str(cfg.get(P.ORG) or dataset)
    return data_dir, dataset, org


class _Local(NamedTuple):
    x: np.ndarray
    y: np.ndarray
    kind: str
    org: str
    class_names: list[str]  # the dataset's names for its labels (label i is class_names[i]), if any


def _local_arrays(context: Context) -> _Local:
    """The node's rows as raw arrays (cached per process; the file's mtime keys the cache)."""
    from consortium.federation.app.datasets import load_dataset
    from consortium.federation.app.features import check_process, to_arrays

    data_dir, dataset, org = node_identity(context)
    recipe = _recipe(context)
    meta = Path(data_dir) / dataset / "meta.json"
    key = (data_dir, dataset, meta.stat().st_mtime if meta.exists() else 0.0)
    with _LOCK:
        if key not in _CACHE:
            data = load_dataset(data_dir, dataset)
            check_process(recipe.process)
            x, y = to_arrays(data, recipe.data.target, recipe.process)
            _CACHE[key] = (x, y, data.kind, list(data.class_names))
        x, y, kind, names = _CACHE[key]
    return _Local(x, y, kind, org, names)


_PLANS: dict[tuple[str, str], Any] = {}


def _privacy(context: Context, recipe: Any, n_rows: int) -> Any:
    """The node's DP plan for this run, planned once (the noise search takes seconds) and reused:
    kept in memory and in the run's ledger file, so a restarted ClientApp process reuses it too."""
    from consortium.federation.app.privacy import NodePrivacy, plan_job

    fed = recipe.federated
    if fed is None or fed.dp is None:
        return None
    dp = fed.dp
    key = json.dumps([n_rows, recipe.train.batch_size, fed.rounds, fed.local_epochs, dp.epsilon, dp.delta,
                      dp.max_grad_norm, dp.noise_multiplier])
    path = _ledger(context)
    with _LOCK:
        plan = _PLANS.get((str(path), key))
        if plan is None:
            saved = _read_ledger(path)
            if saved.get("plan_key") == key:
                plan = NodePrivacy(**saved["plan"])
            else:
                plan = plan_job(recipe, {"node": n_rows})["node"]
                _write_ledger(path, {"steps": int(saved.get("steps", 0)), "plan": plan.to_dict(), "plan_key": key})
            _PLANS[(str(path), key)] = plan
    return plan


@app.query()
def query(msg: Message, context: Context) -> Message:
    from consortium.federation.app.features import local_stats

    x, y, kind, org, names = _local_arrays(context)
    recipe = _recipe(context)
    site_policy.enforce(context.node_config, recipe, len(y))  # the data owner's rules, at the site (issue 19)
    out: dict[str, Any] = {"org": org, "stats": {**local_stats(x, y, kind), "class_names": names}}
    plan = _privacy(context, recipe, len(y))
    if plan is not None:
        out["privacy"] = plan.to_dict()
    content = RecordDict()
    P.pack(content, P.PAYLOAD, out)
    return Message(content, reply_to=msg)


def _ledger(context: Context) -> Path:
    """This node's privacy ledger of the run: DP-SGD steps taken, and the plan they follow."""
    data_dir, dataset, _ = node_identity(context)
    return Path(data_dir) / ".privacy" / f"run-{context.run_id}-{dataset}.json"


def _read_ledger(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def _write_ledger(path: Path, entry: dict[str, Any]) -> None:
    from consortium.fileutil import write_private

    write_private(path, json.dumps(entry).encode())


def local_round(context: Context, state: dict[str, Any], stats_dict: dict[str, Any],
                server_round: int, proximal_mu: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """Evaluate then train the global model on this node's rows; returns (new state, metrics)."""
    import torch

    from consortium.federation.app.features import GlobalStats
    from consortium.federation.app.model import encode_labels, global_model
    from consortium.training.trainer import evaluate, train_epochs

    torch.set_num_threads(int(os.environ.get("CONSORTIUM_NODE_THREADS", "1")))
    recipe = _recipe(context)
    fed = recipe.federated
    stats = GlobalStats.from_dict(stats_dict)
    x, y_raw, _, org, _ = _local_arrays(context)
    y = encode_labels(y_raw, recipe, stats)
    model = global_model(recipe, stats)
    missing = set(model.state_dict()) - set(state)
    if any(not k.startswith("0.") for k in missing):  # only the Scale buffers may be left out
        raise ValueError(f"the global model lacks weights: {sorted(missing)[:5]}")
    model.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()}, strict=False)
    site_policy.enforce(context.node_config, recipe, len(y), server_round=server_round,
                        parameters=sum(int(t.numel()) for t in model.parameters() if t.requires_grad))
    task, loss = recipe.resolved_task, recipe.resolved_loss
    before = evaluate(model, x, y, loss=loss)
    plan = _privacy(context, recipe, len(y))
    seed = recipe.train.seed * 1_000_003 + server_round * 7919 + sum(map(ord, org))
    epochs = fed.local_epochs if fed else 1
    dp = None
    if plan is not None:  # noise planned for the whole job; each round spends its share
        dp = recipe.federated.dp.model_copy(update={"noise_multiplier": plan.noise_multiplier})
    model.train()  # evaluate() left it in eval mode; Opacus refuses that
    t0 = time.perf_counter()
    hist = train_epochs(model, x, y, recipe.train.model_copy(update={"early_stopping": None}), task=task,
                        epochs=epochs, seed=seed, dp=dp, proximal_mu=proximal_mu)
    out = {"loss": float(hist[-1]["loss"]), "steps": plan.steps_per_round if plan else 0}
    metrics: dict[str, Any] = {"num-examples": int(len(y)), "train_loss": out["loss"],
                               "train_seconds": time.perf_counter() - t0,
                               "eval_loss": before["loss"]}
    if "accuracy" in before:
        metrics["eval_accuracy"] = before["accuracy"]
    if plan is not None:
        from consortium.federation.app.privacy import epsilon_for

        ledger = _ledger(context)
        with _LOCK:
            entry = _read_ledger(ledger)
            entry["steps"] = int(entry.get("steps", 0)) + out["steps"]
            _write_ledger(ledger, entry)
        # exact: the RDP accountant over every step this node took in the run, with the one plan
        metrics["epsilon"] = epsilon_for(plan.noise_multiplier, plan.sample_rate, entry["steps"], plan.delta)
    new_state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items() if k in state}
    return new_state, {"org": org, **metrics}


def _train_message(msg: Message, context: Context) -> Message:
    arrays = msg.content.array_records[P.ARRAYS]
    cfg = msg.content.config_records[P.CONFIG]
    stats = json.loads(str(cfg["stats"]))
    state = {k: a.numpy() for k, a in arrays.items()}
    rnd = int(P.scalar(cfg["server-round"], "server-round"))
    new_state, metrics = local_round(context, state, stats, rnd,
                                     float(P.scalar(cfg.get("proximal-mu", 0.0), "proximal-mu")))
    org = metrics.pop("org")
    content = RecordDict({P.ARRAYS: ArrayRecord({k: _arr(v) for k, v in new_state.items()}),
                          P.METRICS: MetricRecord({k: float(v) if k != "num-examples" else int(v)
                                                   for k, v in metrics.items()})})
    content["node"] = ConfigRecord({"org": org})
    return Message(content, reply_to=msg)


def _arr(v: np.ndarray) -> Any:
    from flwr.app import Array

    return Array(np.ascontiguousarray(v))


def _legacy_fit(msg: Message, context: Context) -> Message:
    """Answer a legacy ``fitins`` message (SecAgg+ workflow) with a legacy ``fitres``."""
    from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.compat.common.recorddict_compat import fitres_to_recorddict, recorddict_to_fitins

    fitins = recorddict_to_fitins(msg.content, keep_input=True)
    cfg = fitins.config
    keys = json.loads(str(cfg["state-keys"]))
    state = dict(zip(keys, parameters_to_ndarrays(fitins.parameters), strict=False))
    new_state, metrics = local_round(context, state, json.loads(str(cfg["stats"])),
                                     int(cfg["server-round"]), float(cfg.get("proximal-mu", 0.0)))
    n = int(metrics.pop("num-examples"))
    res = FitRes(status=Status(code=Code.OK, message=""),
                 parameters=ndarrays_to_parameters([new_state[k] for k in keys]),
                 num_examples=n, metrics={k: v for k, v in metrics.items()})
    return Message(fitres_to_recorddict(res, keep_input=True), reply_to=msg)


def _maybe_secagg(msg: Message, context: Context, call_next: Callable[[Message, Context], Message]) -> Message:
    """Route SecAgg+ stages through Flower's ``secaggplus_mod``; plain messages skip it."""
    from flwr.client.mod import secaggplus_mod
    from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS

    if RECORD_KEY_CONFIGS in msg.content.config_records:
        return secaggplus_mod(msg, context, call_next)
    return call_next(msg, context)


@app.train(mods=[_maybe_secagg])
def train(msg: Message, context: Context) -> Message:
    if "fitins.parameters" in msg.content.array_records:
        return _legacy_fit(msg, context)
    return _train_message(msg, context)
