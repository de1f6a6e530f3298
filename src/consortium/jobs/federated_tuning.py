"""Federated tuning: ``tune`` on a federated job (issue 20 point 3). Each child is one federated run.

The search is centralized tuning's (``training.tuning.search``): the same sampler (``tune.method``
tpe or random, or the rl controller proposing each child), the same Hyperband pruner, the same
summary; only the child differs. A child here is one whole federated run of the job's recipe with
the sampled values, on the job's nodes, after the job's approvals (one approval covers every child:
the organizations approved the job, whose recipe declares the search). Its steps are the rounds:
after each round the child reports the global model's validation loss (on the hub-held rows, or,
when every dataset trains at its site, the nodes' own evaluation, ``site_eval_loss``), and
Hyperband may stop it there (never after the last round). Its reward is the final model's
validation accuracy (minus its loss for regression), the value minimized is that loss, and the
best child is the completed one with the lowest: its model is the version the job registers,
with the search on its card (``lineage.tuning``).

Privacy: with ``federated.dp`` each child is a DP run, charged to the ledger when it ends (the
epsilon its nodes report; for a pruned or failed child that trained a round, the planned
epsilon of one child, an upper bound). The submission check (``federated_budgets.check_privacy``)
refused the job unless children x epsilon fit every budget, and the job's reservation shrinks by
what its children charged. Children run one at a time, at most ``MAX_FEDERATED_CHILDREN``
(``recipe.schema.check_federated_tune``).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from consortium.errors import ConsortiumError
from consortium.jobs.context import JobCancelled, JobContext
from consortium.store.db import transaction

Sink = Callable[[dict[str, Any]], None]
RunOne = Callable[[Any, Sink, Path], Any]  # (child recipe, progress sink, work dir) -> FederatedResult, final set
SiteEval = Callable[[list[dict[str, Any]]], dict[str, Any] | None]  # rounds -> the nodes' weighted evaluation


def scores(m: dict[str, Any] | None, task: str) -> tuple[float | None, float | None]:
    """(validation loss, reward) of a round's or the final evaluation: the hub-held rows' ``loss``
    and ``accuracy``, else the nodes' ``site_eval_*``; the reward is minus the loss for regression.

    >>> scores({"site_eval_loss": 0.4, "site_eval_accuracy": 0.8}, "classification")
    (0.4, 0.8)
    >>> scores({"loss": 2.0}, "regression")
    (2.0, -2.0)
    """
    if not m:
        return None, None
    loss = m.get("loss", m.get("site_eval_loss"))
    acc = m.get("accuracy", m.get("site_eval_accuracy"))
    loss = float(loss) if isinstance(loss, (int, float)) and math.isfinite(loss) else None
    if task == "classification":
        return loss, float(acc) if isinstance(acc, (int, float)) else None
    return loss, None if loss is None else -loss


class ChildSink:
    """A child's progress: each record goes to ``forward`` (the job's progress, with the child's
    number); each round is reported to the child's trial and may prune it (``pruned`` then says
    so). Counts the rounds (``rounds_seen``) and keeps the epsilon the nodes reported so far."""

    def __init__(self, forward: Sink, rounds: int, trial: Any, task: str, site_eval: SiteEval) -> None:
        self.forward, self.rounds, self.trial, self.task, self.site_eval = forward, rounds, trial, task, site_eval
        self.pruned, self.rounds_seen = False, 0
        self.epsilon: dict[str, float] = {}

    def __call__(self, rec: dict[str, Any]) -> None:
        import optuna

        self.forward(rec)
        if rec.get("kind") != "round":
            return
        self.rounds_seen += 1
        for org, m in (rec.get("nodes") or {}).items():
            if isinstance(m.get("epsilon"), (int, float)):
                self.epsilon[org] = float(m["epsilon"])
        rnd = int(rec.get("round") or self.rounds_seen)
        loss, reward = scores(rec.get("global") or self.site_eval([rec]), self.task)
        self.trial.set_user_attr("rounds", rnd)
        if reward is not None:
            self.trial.set_user_attr("reward", reward)  # the latest model's; a pruned child keeps it
        if loss is None or rnd >= self.rounds:
            return
        self.trial.report(loss, rnd)
        if self.trial.should_prune():
            self.pruned = True
            raise optuna.TrialPruned(f"pruned by Hyperband after round {rnd}")


def charge(ctx: JobContext, recipe: Any, owners: set[str], number: int, result: Any = None,
           sink: ChildSink | None = None) -> None:
    """Write one child's privacy spend to the ledger (nothing without ``federated.dp``): the epsilon
    each node reported at the end (``result``), else the planned epsilon of one child (the
    submission's plan), else the last epsilon the nodes reported in a round."""
    from consortium.jobs import federated_budgets

    dp = recipe.federated.dp
    if dp is None:
        return
    ids = {d["owner"]: d["dataset_id"] for d in ctx.resolved.get("datasets", []) if d["owner"] in owners}
    plan = ctx.resolved.get("privacy") or {}
    if result is not None and result.epsilon:
        spends = {ids[o]: (float(e), dp.delta) for o, e in result.epsilon.items() if o in ids}
    elif plan:
        spends = {ds: (float(p.get("epsilon_per_child", p["epsilon"])), float(p["delta"]))
                  for ds, p in plan.items() if ds in ids.values()}
    else:
        spends = {ids[o]: (e, dp.delta) for o, e in (sink.epsilon if sink else {}).items() if o in ids}
    if not spends:
        return
    with transaction(ctx.services.session_factory) as s:
        federated_budgets.record_spend(s, ctx.job_id, spends)
    ctx.log(f"child {number}: charged epsilon {max(e for e, _ in spends.values()):.4f} to the privacy ledger "
            f"of {len(spends)} dataset(s)")


def tune_children(ctx: JobContext, recipe: Any, run_one: RunOne, work: Path, *, owners: set[str], hub_rows: bool,
                  forwarder: Callable[[dict[str, Any]], Sink], site_eval: SiteEval) -> tuple[Any, dict[str, Any]]:
    """Search ``recipe.tune`` with one federated run per child (``run_one``, on the organizations
    ``owners``; ``hub_rows``: whether the hub holds validation rows); returns the best child's
    ``FederatedResult`` and the search's summary (``training.tuning.search``). ``forwarder(extra)``
    is the job's progress sink for one child, ``site_eval`` the nodes' evaluation of a round
    (``jobs.federated`` gives both; passed in, so this module does not import it back)."""
    import optuna

    from consortium.recipe import apply_params
    from consortium.training.tuning import search

    spec, fed = recipe.tune, recipe.federated
    task = recipe.resolved_task
    metric = ("val_" if hub_rows else "site_eval_") + ("accuracy" if task == "classification" else "loss")
    reward = metric if task == "classification" else f"-{metric}"
    results: dict[int, Any] = {}
    ctx.log(f"tuning: {spec.trials} children of {fed.rounds} rounds each ({spec.method}, Hyperband over rounds; "
            f"reward {reward})")

    def child(trial: Any, params: dict[str, Any]) -> float:
        number = trial.number
        r = apply_params(recipe, params).model_copy(update={"tune": None})
        sink = ChildSink(forwarder({"child": number, "children": spec.trials}), fed.rounds, trial, task, site_eval)
        ctx.log(f"child {number}: " + ", ".join(f"{k}={v}" for k, v in params.items()))
        where = work / f"child-{number}"
        try:
            result = run_one(r, sink, where)
        except BaseException as e:
            if sink.rounds_seen:  # model updates left the nodes: their privacy cost counts
                charge(ctx, r, owners, number, sink=sink)
            if ctx.should_stop():
                raise JobCancelled("cancelled on request") from None
            if sink.pruned:
                raise optuna.TrialPruned(f"pruned after round {sink.rounds_seen}") from None
            if isinstance(e, Exception):
                trial.set_user_attr("error", f"{type(e).__name__}: {e}"[:500])
            raise
        finally:
            shutil.rmtree(where, ignore_errors=True)
        charge(ctx, r, owners, number, result=result)
        loss, score = scores(result.final, task)
        if score is not None:
            trial.set_user_attr("reward", score)
        if loss is None:
            raise optuna.TrialPruned("the child's model diverged (no finite validation loss)")
        results[number] = result
        return loss

    def on_trial(row: dict[str, Any]) -> None:
        ctx.progress({"stage": "tune", "trial": row, "trials": spec.trials}, force=True)
        reward_s = "none" if row["reward"] is None else f"{row['reward']:.4f}"
        best_s = "" if row["best_reward"] is None else f"; best {row['best_reward']:.4f} (child {row['best_number']})"
        ctx.log(f"child {row['number']} {row['state'].lower()} after {row.get('rounds', 0)} round(s): "
                f"reward {reward_s}{best_s}" + (f"; {row['error']}" if row.get("error") else ""))

    best, summary = search(spec, child, seed=recipe.train.seed, max_resource=fed.rounds, reward=reward,
                           should_stop=ctx.should_stop, on_trial=on_trial,
                           catch=(ConsortiumError, RuntimeError, ValueError))
    ctx.log(f"tuning done: best child {best.number} ({summary['best_params']}): validation loss "
            f"{summary['best_value']:.4f}, reward {summary['rewards'][best.number]}; {summary['n_complete']} "
            f"completed, {summary['n_pruned']} pruned, {summary['n_failed']} failed")
    return results[best.number], summary
