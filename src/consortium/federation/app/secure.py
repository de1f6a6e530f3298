"""Secure aggregation with Flower's SecAgg+ (legacy workflow): the server sees only the sum.

Flower 1.42 reaches SecAgg+ only through its legacy workflow: ``DefaultWorkflow`` with
``SecAggPlusWorkflow`` as the fit step, a legacy strategy, and ``secaggplus_mod`` on the
client (``client_app`` routes SecAgg+ messages through it). Node updates are quantized
(values clipped to +-``CLIPPING_RANGE``) and masked; the server unmasks only the weighted sum,
so the aggregate equals plain FedAvg up to quantization rounding. Per-organization
contributions cannot be measured here: the server never holds an individual update.

The workflow gets the grid through ``QuorumGrid``: Flower's ``send_and_receive`` pulls replies
every 3 s, so each of SecAgg+'s four stages took at least 3 s, and a node that died waited out the
whole timeout in each stage it was still asked in. ``QuorumGrid`` polls every 0.2 s and, once
``quorum`` nodes answered (the reconstruction threshold, at least ``min_nodes``), gives the rest
the straggler grace: a dropout costs seconds, and SecAgg+ carries on without it by design.

``DropoutTolerantSecAggPlus`` mends a gap in Flower 1.42's workflow (read in
``flwr/server/workflow/secure_aggregation/secaggplus_workflow.py``): its unmask stage asks the
survivors for a key share of every node *sampled* at setup, so a node that dropped before it
shared its keys (a dead node the SuperLink still listed, or one that did not answer the setup or
share-keys stage) has no shares anywhere, every survivor's ``secaggplus_mod`` fails on the
missing share and the round ends "Not enough shares to recover secret". Such a node never masked
anyone's vector (masks are only made with nodes whose shares were forwarded), so nothing needs
reconstructing for it: after the share-keys stage the sampled set is cut to the nodes that took
part in it. Nodes that drop later (while training) are still recovered from their shares.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from consortium.errors import Unavailable

if TYPE_CHECKING:
    from consortium.federation.app.run import FederatedRun

CLIPPING_RANGE = 8.0
RECONSTRUCTION = 0.67  # share of the sampled nodes whose key shares must survive


class QuorumGrid:
    """A ``Grid`` whose ``send_and_receive`` is ``run.exchange`` (0.2 s polls, straggler grace once
    ``quorum(n)`` of ``n`` messages were answered); everything else is the wrapped grid's."""

    def __init__(self, grid: Any, min_nodes: int, grace: float) -> None:
        self._grid, self._min, self._grace = grid, min_nodes, grace

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)

    def send_and_receive(self, messages: Any, *, timeout: float | None = None) -> list[Any]:
        import math

        from consortium.federation.app.run import exchange

        msgs = list(messages)
        quorum = min(len(msgs), max(self._min, math.ceil(RECONSTRUCTION * len(msgs))))
        return exchange(self._grid, msgs, timeout=timeout if timeout is not None else 3600.0, quorum=quorum,
                        grace=self._grace)


def _secagg_workflow() -> type:
    """``SecAggPlusWorkflow`` with the sampled set cut after the share-keys stage (see above)."""
    from flwr.server.workflow import SecAggPlusWorkflow

    class DropoutTolerantSecAggPlus(SecAggPlusWorkflow):
        def share_keys_stage(self, grid: Any, context: Any, state: Any) -> bool:
            ok = bool(super().share_keys_stage(grid, context, state))
            # only nodes that shared their keys can have masked a vector: the others need no unmasking
            state.sampled_node_ids = set(state.active_node_ids)
            return ok

    return DropoutTolerantSecAggPlus


def run_secure_rounds(run: FederatedRun, context: Any) -> None:
    """Run the rounds of ``run`` through SecAgg+; same records and outputs as ``run_rounds``."""
    from flwr.server import LegacyContext, ServerConfig
    from flwr.server.workflow import DefaultWorkflow

    from consortium.federation.app.run import node_metrics
    from consortium.federation.app.strategies import legacy_strategy

    fed = run.fed
    full = run.state()
    # only learned weights go through SecAgg+: the Scale buffers (global feature means, up to
    # thousands) are the same at every node and would not survive its clipping range
    keys = [k for k in full if not k.startswith("0.")]
    start = {k: full[k] for k in keys}
    stats_json = json.dumps(run.stats.to_dict())
    captured: dict[int, dict[str, Any]] = {}
    final: dict[str, Any] = {"state": full}
    clock = [time.monotonic()]
    current = [0]

    def fit_config(rnd: int) -> dict[str, Any]:
        current[0] = rnd
        return {"stats": stats_json, "state-keys": json.dumps(keys), "server-round": rnd,
                "proximal-mu": float(fed.proximal_mu if fed.strategy == "fedprox" else 0.0)}

    def fit_metrics(results: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
        captured[current[0]] = {str(m["org"]): node_metrics({**m, "num-examples": n}) for n, m in results}
        return {}

    def evaluate_fn(rnd: int, ndarrays: list[np.ndarray], _: dict[str, Any]) -> Any:
        state = {**full, **dict(zip(keys, [np.asarray(a) for a in ndarrays], strict=False))}
        if rnd == 0:
            return None
        if rnd not in captured:
            raise Unavailable(f"round {rnd}: secure aggregation did not complete "
                              "(too few nodes stayed for unmasking)")
        final["state"] = state
        run.round_record(rnd, captured[rnd], time.monotonic() - clock[0], state)
        clock[0] = time.monotonic()
        res = run.history[-1]["global"]
        return None if res is None else (float(res["loss"]), {k: v for k, v in res.items()
                                                              if isinstance(v, (int, float))})

    strategy = legacy_strategy(fed.strategy, min_nodes=fed.min_nodes, initial=[start[k] for k in keys],
                               proximal_mu=fed.proximal_mu, fit_config=fit_config,
                               fit_metrics=fit_metrics, evaluate_fn=evaluate_fn)
    legacy = LegacyContext(context, config=ServerConfig(num_rounds=fed.rounds, round_timeout=run.round_timeout),
                           strategy=strategy)
    workflow = DefaultWorkflow(fit_workflow=_secagg_workflow()(
        num_shares=1.0, reconstruction_threshold=RECONSTRUCTION, clipping_range=CLIPPING_RANGE,
        max_weight=float(max(run.node_rows.values()) + 1), timeout=run.round_timeout))
    workflow(QuorumGrid(run.grid, fed.min_nodes, run.grace), legacy)  # type: ignore[arg-type]
    if len(run.history) < fed.rounds:
        raise Unavailable(f"secure aggregation stopped after {len(run.history)} of {fed.rounds} rounds")
    run.finish(final["state"], {"available": False,
                                "reason": "secure aggregation hides individual updates from the server"})
