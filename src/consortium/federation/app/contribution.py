"""Who helped: each organization's contribution to the final model, measured on validation data.

Two measures over the last round's updates (the only per-organization models the server holds):

- leave-one-out: score of the sample-weighted average of all updates minus the score of the
  average without that organization's update (positive: the organization helped);
- Monte-Carlo Shapley (optional): average marginal gain of adding the organization's update
  to a random coalition, over ``samples`` random orderings; the empty coalition is the global
  model the round started from.

The score is validation accuracy for classification and minus the loss for regression. Home-made
(the formulas are a few lines); it needs individual updates, so it is not available when secure
aggregation hides them.

>>> import numpy as np
>>> w = {"a": ({"w": np.array([1.0])}, 10), "b": ({"w": np.array([3.0])}, 10)}
>>> r = contribution_report(w, {"w": np.array([0.0])}, lambda s: -abs(float(s["w"][0]) - 1.0),
...                         shapley_samples=20, seed=0)
>>> r["leave_one_out"]["a"]["gain"] > 0 > r["leave_one_out"]["b"]["gain"]
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

State = dict[str, np.ndarray]


def weighted_average(updates: list[tuple[State, int]]) -> State:
    """Sample-weighted average of state dicts (FedAvg's rule)."""
    total = float(sum(n for _, n in updates))
    keys = updates[0][0].keys()
    out: State = {}
    for k in keys:
        ref = updates[0][0][k]
        acc = sum(s[k].astype(np.float64) * (n / total) for s, n in updates)
        out[k] = np.asarray(acc).astype(ref.dtype) if ref.dtype.kind == "f" else ref.copy()
    return out


def contribution_report(updates: dict[str, tuple[State, int]], base: State,
                        score: Callable[[State], float], *, shapley_samples: int = 0,
                        seed: int = 0) -> dict[str, Any]:
    """Leave-one-out gains and (if ``shapley_samples`` > 0) Monte-Carlo Shapley values."""
    orgs = sorted(updates)
    cache: dict[frozenset[str], float] = {}

    def value(coalition: frozenset[str]) -> float:
        if coalition not in cache:
            cache[coalition] = score(base) if not coalition else \
                score(weighted_average([updates[o] for o in sorted(coalition)]))
        return cache[coalition]

    everyone = frozenset(orgs)
    full = value(everyone)
    loo: dict[str, Any] = {}
    for org in orgs:
        rest = everyone - {org}
        without = value(rest) if rest else value(frozenset())
        loo[org] = {"score_without": without, "gain": full - without,
                    "num_examples": int(updates[org][1])}
    report: dict[str, Any] = {"available": True, "score": "accuracy or -loss on validation",
                              "score_all": full, "score_start": value(frozenset()),
                              "leave_one_out": loo}
    if shapley_samples > 0:
        rng = np.random.default_rng(seed)
        marg = {o: 0.0 for o in orgs}
        for _ in range(shapley_samples):
            order = list(rng.permutation(orgs))
            members: frozenset[str] = frozenset()
            prev = value(members)
            for o in order:
                members = members | {o}
                cur = value(members)
                marg[o] += cur - prev
                prev = cur
        report["shapley"] = {o: marg[o] / shapley_samples for o in orgs}
        report["shapley_samples"] = shapley_samples
    return report
