"""The Flower ``ServerApp``: one federated job from a recipe in the run config.

Flow: wait for ``min_nodes`` nodes -> one ``query`` round for feature statistics (no rows
leave a node) -> the global model -> ``rounds`` training rounds with the recipe's strategy
(FedAvg / FedProx / FedAdam from ``flwr.serverapp.strategy``, or the SecAgg+ workflow when
``secure_aggregation`` is on) -> contribution report -> files in the run's ``output-dir``:
``progress.jsonl`` (one record per event, see ``progress``), ``model.pt`` (state dict) and
``result.json``.

Rounds use one message per node (the reply also carries the node's evaluation of the incoming
global model), and replies are polled every 0.2 s with a deadline, instead of the 3 s sleep of
``Grid.send_and_receive``. A node that does not answer in time is left out of that round; the
job fails only when fewer than ``min_nodes`` replied. A node that comes back takes part again.

The run's state, outputs and records are ``run.FederatedRun``'s; SecAgg+ rounds are ``secure``'s.
Run by Flower (``serverapp = "consortium.federation.app.server_app:app"``); see
``consortium.federation.engine`` for the runners.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message
from flwr.serverapp import Grid, ServerApp

from consortium.errors import ConsortiumError, Unavailable
from consortium.federation.app import protocol as P
from consortium.federation.app.progress import JsonlSink
from consortium.federation.app.run import FederatedRun, exchange, node_metrics, wait_for_nodes

app = ServerApp()


def run_rounds(run: FederatedRun) -> None:
    """The plain round loop (message API strategies)."""
    from consortium.federation.app.contribution import contribution_report
    from consortium.federation.app.strategies import message_strategy

    fed = run.fed
    strategy = message_strategy(fed.strategy, min_nodes=fed.min_nodes, proximal_mu=fed.proximal_mu)
    state = run.state()
    last_updates: dict[str, tuple[dict[str, np.ndarray], int]] = {}
    round_start_state = state
    missed: dict[int, int] = {}  # node id -> last round it did not answer
    for rnd in range(1, fed.rounds + 1):
        t0 = time.monotonic()
        wait_for_nodes(run.grid, fed.min_nodes, run.node_wait)
        timing = {"wait_nodes_s": round(time.monotonic() - t0, 3)}
        cfg = ConfigRecord({"stats": json.dumps(run.stats.to_dict())})
        msgs = list(strategy.configure_train(rnd, ArrayRecord({k: _array(v) for k, v in state.items()}),
                                             cfg, run.grid))
        # a node that missed the last round (dead until the SuperLink notices, ~1 min) sits this
        # one out instead of holding it up; it is asked again the round after
        live = [m for m in msgs if missed.get(m.metadata.dst_node_id) != rnd - 1]
        msgs = live if len(live) >= fed.min_nodes else msgs
        replies = exchange(run.grid, msgs, timeout=run.round_timeout, quorum=fed.min_nodes, grace=run.grace,
                           timing=timing, orgs=run.orgs, org_of=reply_org)
        t_replies = time.monotonic()
        valid = [m for m in replies if not m.has_error()]
        answered = {m.metadata.src_node_id for m in valid}
        missed.update({m.metadata.dst_node_id: rnd for m in msgs if m.metadata.dst_node_id not in answered})
        if len(valid) < fed.min_nodes:
            raise Unavailable(f"round {rnd}: {len(valid)} of {len(msgs)} nodes replied; "
                              f"federated.min_nodes is {fed.min_nodes}",
                              hint="check the nodes' logs, raise round-timeout or lower min_nodes")
        arrays, _ = strategy.aggregate_train(rnd, valid)
        if arrays is None:
            raise Unavailable(f"round {rnd}: the strategy could not aggregate the replies")
        round_start_state = state
        state = {k: a.numpy() for k, a in arrays.items()}
        per_node, last_updates = {}, {}
        for m in valid:
            org = reply_org(m)
            metrics = dict(m.content.metric_records[P.METRICS])
            per_node[org] = node_metrics(metrics)
            last_updates[org] = ({k: a.numpy() for k, a in m.content.array_records[P.ARRAYS].items()},
                                 int(P.scalar(metrics["num-examples"], "num-examples")))
        timing["aggregate_s"] = round(time.monotonic() - t_replies, 3)
        run.round_record(rnd, per_node, time.monotonic() - t0, state, timing)
    if run.validation is None:
        contribution: dict[str, Any] = {"available": False, "reason": "no server-held validation set"}
    else:
        contribution = contribution_report(last_updates, round_start_state, run.score,
                                           shapley_samples=run.shapley, seed=run.recipe.train.seed)
        contribution["note"] = "over the last round's updates, averaged with FedAvg's rule"
    run.finish(state, contribution)


def reply_org(m: Message) -> str:
    """The organization of a node's training reply (its ``node`` config record)."""
    return str(m.content.config_records["node"]["org"])


def _array(v: np.ndarray) -> Any:
    from flwr.app import Array

    return Array(np.ascontiguousarray(v))


@app.main()
def main(grid: Grid, context: Context) -> None:
    from consortium.federation.app import pull_backoff

    pull_backoff.shorten()  # the replies' arrays are pulled as soon as a node's reply is listed
    out = Path(str(context.run_config.get(P.OUTPUT_DIR, "")))
    try:
        run = FederatedRun(grid, context)
        run.collect_stats()
        run.build_model()
        run.sink({"kind": "start", "run": context.run_id, "strategy": run.fed.strategy,
                  "rounds": run.fed.rounds, "nodes": sorted(run.node_rows), "node_rows": run.node_rows,
                  "secure_aggregation": run.fed.secure_aggregation, "privacy": run.privacy})
        if run.fed.secure_aggregation:
            from consortium.federation.app.secure import run_secure_rounds

            run_secure_rounds(run, context)
        else:
            run_rounds(run)
    except Exception as e:
        code = e.code if isinstance(e, ConsortiumError) else "error"
        if str(out):
            JsonlSink(out / "progress.jsonl")({"kind": "error", "code": code, "message": str(e)})
        raise
