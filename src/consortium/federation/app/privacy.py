"""Differential-privacy planning and accounting for federated jobs (sample-level DP-SGD).

Each node runs DP-SGD (Opacus) on its own rows. The noise is planned once for the whole job:
``rounds * local_epochs`` epochs of Poisson-sampled batches, so the target epsilon holds for the
job, not per round. The RDP accountant (Opacus) turns (noise, sample rate, steps, delta) into
epsilon. The hub calls ``check_budget`` before a job starts and refuses it when any node's
planned epsilon would exceed the budget.

>>> plan = plan_node(epsilon=3.0, delta=1e-5, n_rows=200, batch_size=32, rounds=3, local_epochs=2)
>>> round(plan.epsilon, 1) <= 3.0, plan.steps
(True, 42)
>>> round(epsilon_for(plan.noise_multiplier, plan.sample_rate, plan.steps, 1e-5), 1) <= 3.0
True
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, TypedDict

from consortium.errors import Conflict, InvalidInput


@dataclass(frozen=True)
class NodePrivacy:
    """The DP-SGD settings one node uses for the whole job and the epsilon they spend."""

    noise_multiplier: float
    sample_rate: float
    steps: int  # over the whole job
    steps_per_round: int
    delta: float
    max_grad_norm: float
    epsilon: float  # planned, after all rounds

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def steps_per_epoch(n_rows: int, batch_size: int) -> int:
    """Batches per epoch, as the node's DataLoader makes them."""
    return max(1, math.ceil(n_rows / batch_size))


def epsilon_for(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """Epsilon spent by ``steps`` Poisson-sampled DP-SGD steps (Opacus RDP accountant)."""
    if steps <= 0:
        return 0.0
    from opacus.accountants import RDPAccountant

    acc = RDPAccountant()
    acc.history = [(float(noise_multiplier), float(sample_rate), int(steps))]
    return float(acc.get_epsilon(delta=delta))


def plan_node(*, epsilon: float, delta: float, n_rows: int, batch_size: int, rounds: int,
              local_epochs: int, max_grad_norm: float = 1.0,
              noise_multiplier: float | None = None) -> NodePrivacy:
    """Noise for one node so that the whole job spends at most ``epsilon`` (or the epsilon a
    fixed ``noise_multiplier`` spends)."""
    if n_rows < 1:
        raise InvalidInput(f"a node with {n_rows} rows cannot train")
    per_epoch = steps_per_epoch(n_rows, batch_size)
    sample_rate = 1.0 / per_epoch
    per_round = per_epoch * local_epochs
    steps = per_round * rounds
    if noise_multiplier is None:
        from opacus.accountants.utils import get_noise_multiplier

        noise_multiplier = float(get_noise_multiplier(
            target_epsilon=epsilon, target_delta=delta, sample_rate=sample_rate, steps=steps,
            accountant="rdp", epsilon_tolerance=0.01))
    spent = epsilon_for(noise_multiplier, sample_rate, steps, delta)
    return NodePrivacy(noise_multiplier=noise_multiplier, sample_rate=sample_rate, steps=steps,
                       steps_per_round=per_round, delta=delta, max_grad_norm=max_grad_norm,
                       epsilon=spent)


def plan_job(recipe: Any, node_rows: dict[str, int]) -> dict[str, NodePrivacy]:
    """Per-organization plan for a recipe with ``federated.dp`` (rows: training rows per org)."""
    fed = recipe.federated
    if fed is None or fed.dp is None:
        raise InvalidInput("the recipe has no federated.dp section", hint="add federated.dp: {epsilon: 3}")
    dp = fed.dp
    return {org: plan_node(epsilon=dp.epsilon, delta=dp.delta, n_rows=n, batch_size=recipe.train.batch_size,
                           rounds=fed.rounds, local_epochs=fed.local_epochs,
                           max_grad_norm=dp.max_grad_norm, noise_multiplier=dp.noise_multiplier)
            for org, n in node_rows.items()}


class Overspend(TypedDict):
    """One organization whose planned privacy loss exceeds its remaining budget."""

    org: str
    planned_epsilon: float
    budget: float


def check_budget(recipe: Any, node_rows: dict[str, int],
                 budget: float | dict[str, float]) -> dict[str, NodePrivacy]:
    """Plan the job and raise ``Conflict`` (with the numbers) if any organization's planned
    epsilon exceeds its remaining budget; returns the plan otherwise.

    >>> from consortium.recipe import parse_recipe
    >>> r = parse_recipe({"name": "x", "federated": {"datasets": ["a/x", "b/x"], "rounds": 2,
    ...                   "dp": {"epsilon": 8}}})
    >>> try:
    ...     check_budget(r, {"a": 100, "b": 100}, 5.0)
    ... except Conflict as e:
    ...     print(e.code, e.details["over"][0]["org"])
    conflict a
    """
    plan = plan_job(recipe, node_rows)
    over: list[Overspend] = []
    for org, p in plan.items():
        limit = budget.get(org) if isinstance(budget, dict) else budget
        if limit is None:
            raise InvalidInput(f"no privacy budget given for organization {org!r}")
        if p.epsilon > limit + 1e-9:
            over.append(Overspend(org=org, planned_epsilon=round(p.epsilon, 4), budget=limit))
    if over:
        worst = max(over, key=lambda o: o["planned_epsilon"] - o["budget"])
        raise Conflict(
            f"planned privacy loss exceeds the budget for {len(over)} organization(s): "
            f"{worst['org']} would spend epsilon={worst['planned_epsilon']} of a remaining {worst['budget']}",
            hint="lower federated.dp.epsilon, or use fewer rounds / local epochs",
            details={"over": over, "delta": recipe.federated.dp.delta})
    return plan
