"""One federated job on the server side, whatever runs its rounds: the run's recipe, outputs and
records (``FederatedRun``), waiting for nodes and exchanging messages with a deadline, and a
node's round metrics. The ``ServerApp`` (``server_app``) runs the plain round loop on it, the
SecAgg+ workflow (``secure``) its own; both import this module, never each other.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict
from flwr.serverapp import Grid

from consortium.errors import InvalidInput, Unavailable
from consortium.federation.app import protocol as P
from consortium.federation.app.progress import JsonlSink, MultiSink, ProgressSink

LOCAL_SINKS: dict[str, ProgressSink] = {}  # in-process callbacks by output dir (simulation)
POLL = 0.2


def wait_for_nodes(grid: Grid, n: int, timeout: float) -> list[int]:
    """Connected node ids once at least ``n`` are there; ``Unavailable`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        ids = list(grid.get_node_ids())
        if len(ids) >= n:
            return ids
        if time.monotonic() > deadline:
            raise Unavailable(f"only {len(ids)} of the {n} required nodes connected within {timeout:.0f} s",
                              hint="start the organizations' nodes or lower federated.min_nodes")
        time.sleep(POLL)


def exchange(grid: Grid, messages: Iterable[Message], *, timeout: float, quorum: int,
             grace: float, timing: dict[str, float] | None = None,
             orgs: set[str] | None = None, org_of: Callable[[Message], str] | None = None) -> list[Message]:
    """Push messages and collect replies until all answered, the deadline, ``grace`` seconds
    after ``quorum`` replies arrived (stragglers and dead nodes do not hold a round forever), or,
    given ``orgs`` and ``org_of`` (a reply's organization), once every one of ``orgs`` replied: a
    node id left then is a dead session of an organization whose restarted node already answered
    (the SuperLink lists it for about a minute), and nothing it could send would be used.
    ``timing`` gets ``push_s`` and the seconds from the push to the ``first_reply_s`` and
    ``last_reply_s``."""
    start = time.monotonic()
    ids = set(grid.push_messages(list(messages)))
    pushed = time.monotonic()
    replies: list[Message] = []
    deadline = start + timeout
    quorum_at: float | None = None
    while ids and time.monotonic() < deadline:
        got = list(grid.pull_messages(ids))
        if got and timing is not None:
            timing.setdefault("first_reply_s", round(time.monotonic() - pushed, 3))
            timing["last_reply_s"] = round(time.monotonic() - pushed, 3)
        replies.extend(got)
        ids.difference_update(m.metadata.reply_to_message_id for m in got)
        ok = sum(1 for m in replies if not m.has_error())
        if orgs and org_of is not None and orgs <= {org_of(m) for m in replies if not m.has_error()}:
            break
        if quorum_at is None and ok >= quorum:
            quorum_at = time.monotonic()
            deadline = min(deadline, quorum_at + max(grace, 0.5 * (quorum_at - start)))
        if ids:
            time.sleep(POLL)
    if timing is not None:
        timing["push_s"] = round(pushed - start, 3)
    return replies


class FederatedRun:
    """One federated run as the ServerApp drives it: the recipe and run settings, the global model,
    the statistics the nodes sent, and the per-round history written to the output directory."""

    def __init__(self, grid: Grid, context: Context) -> None:
        from consortium.recipe import parse_recipe

        cfg = context.run_config
        self.grid = grid
        self.recipe = parse_recipe(json.loads(str(cfg[P.RECIPE])))
        if self.recipe.federated is None:
            raise InvalidInput("the recipe has no federated section", hint="add federated: {datasets: [...]}")
        self.fed = self.recipe.federated
        self.out = Path(str(cfg[P.OUTPUT_DIR]))
        self.out.mkdir(parents=True, exist_ok=True)
        self.sink = MultiSink(JsonlSink(self.out / "progress.jsonl"), LOCAL_SINKS.get(str(self.out)))
        # the recipe's federated.round_timeout_s wins over the engine's run-config default
        self.round_timeout = float(self.fed.round_timeout_s or cfg.get(P.ROUND_TIMEOUT, 600.0))
        self.grace = float(cfg.get(P.STRAGGLER_GRACE, 8.0))
        self.node_wait = float(cfg.get(P.NODE_WAIT, 120.0))
        self.shapley = int(cfg.get(P.SHAPLEY_SAMPLES, 0))
        self.validation = self._validation(str(cfg.get(P.VALIDATION_DIR, "")), str(cfg.get(P.VALIDATION_NAME, "")))
        self.run_id = context.run_id
        self.history: list[dict[str, Any]] = []
        self.epsilon: dict[str, float] = {}
        self.contributors: set[str] = set()
        self.started = time.monotonic()
        # the organizations whose datasets the job names ("org/name"): a round is complete once each replied
        self.orgs = {d.split("/", 1)[0] for d in self.fed.datasets if "/" in d}

    # ------------------------------------------------------------------ data and model
    def _validation(self, root: str, name: str) -> Any:
        if not root or not name:
            return None
        from consortium.federation.app.datasets import load_dataset
        from consortium.federation.app.features import to_arrays

        return to_arrays(load_dataset(root, name), self.recipe.data.target, self.recipe.process)

    def collect_stats(self) -> None:
        from consortium.federation.app.features import merge_stats

        ids = wait_for_nodes(self.grid, self.fed.min_nodes, self.node_wait)
        content = RecordDict({P.CONFIG: ConfigRecord({"stage": P.STATS_STAGE})})
        msgs = [Message(content=content, dst_node_id=i, message_type=MessageType.QUERY) for i in ids]
        # once min_nodes answered, the rest get the straggler grace: a node that died before the
        # run still counts as connected until the SuperLink misses its heartbeats (about a minute)
        replies = [m for m in exchange(self.grid, msgs, timeout=self.round_timeout, quorum=self.fed.min_nodes,
                                       grace=self.grace, orgs=self.orgs,
                                       org_of=lambda m: str(P.unpack(m.content, P.PAYLOAD)["org"]))
                   if not m.has_error()]
        if len(replies) < self.fed.min_nodes:
            raise Unavailable(f"only {len(replies)} nodes answered the statistics query; "
                              f"{self.fed.min_nodes} required")
        payloads = [P.unpack(m.content, P.PAYLOAD) for m in replies]
        self.node_rows = {p["org"]: p["stats"]["n_rows"] for p in payloads}
        self.privacy = {p["org"]: p["privacy"] for p in payloads if "privacy" in p}
        self.stats = merge_stats([p["stats"] for p in payloads])

    def build_model(self) -> Any:
        from consortium.federation.app.model import global_model

        self.model = global_model(self.recipe, self.stats)
        return self.model

    def state(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self.model.state_dict().items()}

    def load(self, state: dict[str, np.ndarray]) -> None:
        import torch

        self.model.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in state.items()})

    def evaluate_state(self, state: dict[str, np.ndarray] | None = None) -> dict[str, Any] | None:
        """Global evaluation on the server-held validation set (None without one)."""
        if self.validation is None:
            return None
        from consortium.federation.app.model import encode_labels
        from consortium.training.trainer import evaluate, predict_proba

        if state is not None:
            self.load(state)
        x, y_raw = self.validation
        y = encode_labels(y_raw, self.recipe, self.stats)
        task, loss = self.recipe.resolved_task, self.recipe.resolved_loss
        res: dict[str, Any] = evaluate(self.model, x, y, loss=loss)
        try:
            from consortium.evaluation.metrics import compute_metrics
        except ImportError:
            return res
        try:
            proba = predict_proba(self.model, x, task=task)
            res.update(compute_metrics(task, y, proba, [str(c) for c in self.stats.classes]))
        except Exception as e:  # noqa: BLE001 - extra metrics are optional; keep loss/accuracy
            res["metrics_error"] = str(e)
        return res

    def score(self, state: dict[str, np.ndarray]) -> float:
        res = self.evaluate_state(state) or {}
        return float(res["accuracy"]) if "accuracy" in res else -float(res.get("loss", np.nan))

    # ------------------------------------------------------------------ records
    def round_record(self, rnd: int, per_node: dict[str, dict[str, Any]], seconds: float,
                     state: dict[str, np.ndarray], timing: dict[str, float] | None = None) -> None:
        for org, m in per_node.items():
            self.contributors.add(org)
            if "epsilon" in m:
                self.epsilon[org] = float(m["epsilon"])
        n = sum(m["num_examples"] for m in per_node.values()) or 1
        rec = {"kind": "round", "round": rnd, "nodes": per_node,
               "missing": sorted((set(self.node_rows) | self.contributors) - set(per_node)),
               "train_loss": sum(m["loss"] * m["num_examples"] for m in per_node.values()) / n,
               "global": self.evaluate_state(state), "seconds": seconds}
        if timing:  # where the round's seconds went (the ServerApp's view)
            rec["timing"] = timing
        self.history.append(rec)
        self.sink(rec)

    def finish(self, state: dict[str, np.ndarray], contribution: dict[str, Any]) -> None:
        import torch

        self.load(state)
        contribution = {**contribution, **self.participation()}
        torch.save(self.model.state_dict(), self.out / "model.pt")
        result = {"run_id": self.run_id, "recipe": json.loads(P.recipe_to_json(self.recipe)),
                  "stats": self.stats.to_dict(), "history": self.history, "epsilon": self.epsilon,
                  "privacy_plan": self.privacy,
                  "contributors": sorted(self.contributors), "node_rows": self.node_rows,
                  "contribution": contribution, "final": self.evaluate_state(state),
                  "seconds": time.monotonic() - self.started}
        tmp = self.out / "result.json.tmp"
        tmp.write_text(json.dumps(result, default=float))
        tmp.rename(self.out / "result.json")
        self.sink({"kind": "done", "rounds": len(self.history), "seconds": result["seconds"]})


    def participation(self) -> dict[str, Any]:
        """Who took part in how many rounds, and the rounds each organization dropped out of
        (died, or answered after the round timeout / straggler grace)."""
        dropped: dict[str, list[int]] = {}
        rounds: dict[str, int] = {}
        for rec in self.history:
            for org in rec["missing"]:
                dropped.setdefault(org, []).append(rec["round"])
            for org in rec["nodes"]:
                rounds[org] = rounds.get(org, 0) + 1
        out: dict[str, Any] = {"rounds_taken_part": rounds, "dropped": dropped}
        if dropped:
            out["dropped_note"] = ("; ".join(f"{o} dropped out of round{'s' if len(r) > 1 else ''} "
                                             f"{', '.join(map(str, r))}" for o, r in sorted(dropped.items()))
                                   + ": its update was missing from those rounds' aggregates")
        return out


def node_metrics(m: dict[str, Any]) -> dict[str, Any]:
    """A node's round metrics as recorded: loss, examples, eval loss (and accuracy, epsilon, time)."""
    out = {"loss": float(m["train_loss"]), "num_examples": int(m["num-examples"]),
           "eval_loss": float(m["eval_loss"])}
    for k in ("eval_accuracy", "epsilon", "train_seconds"):
        if k in m:
            out[k] = float(m[k])
    if "eval_accuracy" in out:
        out["accuracy"] = out["eval_accuracy"]
    return out
