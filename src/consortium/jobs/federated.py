"""The ``federated`` job: train one model across several organizations' datasets with Flower.

Flow, in the worker: (1) open one approval record per participating organization and wait while
an organization whose node is in ``manual`` mode has not decided (the job's progress shows
``stage: waiting_for_approval`` and who is pending); an organization that rejects the job is left
out while the others still number ``federated.min_nodes`` (and at least two), otherwise the job
fails naming it; (2) find the organizations whose own node joins (``federated_runs.joining_nodes``);
for every other dataset, a hub dataset, load it with the submitter's ``compute`` grant
(``load_for_compute``, audited for its owner) and write it, minus a held-out ``data.test_size``
share, into that organization's node directory ``CONSORTIUM_HOME/nodes/<org>/``; (3) run the job
with one node per organization (``federation.engine.embedded.run_on_nodes``); (4) register the ONNX
model like any model version, with lineage naming the contributing organizations and dataset
versions, epsilon/delta when DP was used, and the contribution report; (5) write the privacy ledger.
With ``tune`` (``jobs.federated_tuning``), step (3) is a search whose children are federated runs of
their own, one at a time, after the one round of approvals; each child charges the ledger when it
ends, and step (4) registers the best child's model with the search in its lineage.

Where the data lives. A site's rows stay at its site: an organization's online ``consortium node``
that advertises a dataset named like the job's (a node dataset it published with ``--publish``,
``consortium.data.node_datasets``, or a hub dataset of the same name) trains on its own rows, and
the hub reads none of them; a node dataset cannot be read at the hub at all. This is the demo's
path: ``consortium up`` keeps each demo organization's breast-cancer partition in its site's own
directory (``Settings.demo_sites``, outside the hub's home) and runs its node there. Only a hub
dataset (uploaded rows) is decrypted by the worker and staged in ``CONSORTIUM_HOME/nodes/<org>``,
for the organization's node on the hub's machine reading that directory, or else for a SuperNode
the worker starts for this job; its held-out rows form the hub-side validation set used for the
global metrics and the contribution report. When every dataset trains at its site there is no
hub-side validation set: the metrics are the nodes' own evaluation (``site_evaluation``).

Transport: the job's SuperLink serves TLS (CA under ``CONSORTIUM_HOME/federation-pki``) and
admits only SuperNodes whose public keys the worker registered (nodes it started, and the
joining agents' keys sent at their registration); ``CONSORTIUM_FEDERATION_INSECURE=true`` turns
both off. It listens on ``CONSORTIUM_FEDERATION_HOST`` (loopback by default; an interface for
sites on other hosts, dialled at ``CONSORTIUM_FEDERATION_PUBLIC_HOST``, see examples/multisite/). The
job's Flower processes carry the tag ``job-<id>.<attempt>``: the next attempt of the job, and
workers (at start and after re-queueing), kill those a killed worker left behind
(``jobs.federated_runs.sweep_orphans``). A SuperNode the SuperLink refuses (its key was not
registered for this job) is audited as ``federation.node_refused`` and named in the job's log.

Engine: ``CONSORTIUM_FEDERATION_ENGINE`` = ``deployment`` (default: real SuperLink + SuperNode
processes on loopback) or ``simulation`` (Flower's in-process engine; much faster, used in tests).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from consortium.errors import InvalidInput, PermissionDenied, Unavailable
from consortium.jobs.context import JobCancelled, JobContext
from consortium.jobs.train import load_data, threads
from consortium.store.db import transaction

if TYPE_CHECKING:
    from consortium.federation.engine.embedded import Engine

APPROVAL_POLL_S = 1.0


def _name_refusing_sites(ctx: JobContext, e: Exception) -> None:
    """Raise the run's failure again naming the sites that refused it under their policy and the
    rules they cited (``site_refusals``), when any did; otherwise return."""
    from consortium.jobs import site_refusals

    with transaction(ctx.services.session_factory) as s:
        named = site_refusals.summary(s, ctx.job_id)
    if named:
        raise PermissionDenied(f"{named} ({e})", hint="the data owners' rules: `consortium datasets policy show`; "
                                                       "change the recipe to meet them") from e


def engine_name() -> Engine:
    name = os.environ.get("CONSORTIUM_FEDERATION_ENGINE", "deployment").strip() or "deployment"
    if name == "simulation":
        return "simulation"
    if name != "deployment":
        raise InvalidInput(f"unknown federation engine {name!r}",
                           hint="set CONSORTIUM_FEDERATION_ENGINE to deployment or simulation")
    return "deployment"


def node_root(ctx: JobContext, org: str) -> Path:
    """``CONSORTIUM_HOME/nodes/<org>``: the data directory of ``org``'s local node."""
    return ctx.services.settings.home / "nodes" / org


def wait_for_approvals(ctx: JobContext, owners: dict[str, str], min_nodes: int | None = None) -> set[str]:
    """Block until every participating organization decided (``owners``: org id -> name). Returns
    the names of those that rejected the job: the job runs without them while the others still
    number ``min_nodes`` (and at least two); otherwise a rejection fails it, naming the sites."""
    from consortium.governance.policies import manual_orgs
    from consortium.jobs import federated_nodes

    shown: list[str] | None = None
    datasets = [d["dataset_id"] for d in ctx.resolved.get("datasets", [])]
    while True:
        with transaction(ctx.services.session_factory) as s:
            federated_nodes.open_approvals(s, ctx.job_id, list(owners), manual_orgs(s, datasets))
            states = federated_nodes.approval_states(s, ctx.job_id)
        rejected = sorted(owners[o] for o, st in states.items() if st == "rejected" and o in owners)
        left = len(owners) - len(rejected)
        if rejected and (min_nodes is None or left < max(min_nodes, 2)):
            raise PermissionDenied(f"{', '.join(rejected)} rejected this federated job, leaving {left} of "
                                   f"{len(owners)} organizations (min_nodes: {min_nodes})",
                                   hint="ask the organization why, or run without its dataset")
        pending = sorted(owners[o] for o, st in states.items() if st == "pending" and o in owners)
        if not pending:
            if shown or rejected:
                ctx.progress({"stage": "approved", "approvals": {owners[o]: st for o, st in states.items()},
                              "without": rejected}, force=True)
            if rejected:
                ctx.log(f"running without {', '.join(rejected)} (rejected the job); {left} organizations remain")
            return set(rejected)
        if pending != shown:
            ctx.progress({"stage": "waiting_for_approval", "pending": pending,
                          "hint": "an admin of each pending organization approves with "
                                  f"POST /api/v1/nodes/<node>/approve/{ctx.job_id}"}, force=True)
            ctx.log(f"waiting for approval by: {', '.join(pending)}")
            shown = pending
        ctx.check_cancel()
        time.sleep(APPROVAL_POLL_S)


def attempt(ctx: JobContext) -> tuple[int, dict[str, list[int]]]:
    """This run's attempt number, after killing the Flower processes earlier attempts left."""
    from consortium.jobs.federated_runs import sweep_orphans
    from consortium.store.tables.jobs import Job

    with transaction(ctx.services.session_factory) as s:
        job = s.get(Job, ctx.job_id)
        return (int(job.attempts) if job is not None else 0), sweep_orphans(s, ctx.job_id)


def materialize(ctx: JobContext, recipe: Any, skip: Any = ()) -> tuple[dict[str, tuple[Any, str]], Any,
                                                                         list[dict[str, Any]]]:
    """Load every dataset, write its training share to its owner's node directory.

    Returns the node map (org -> (dir, dataset name)), the pooled held-out validation set and
    one info dict per dataset."""
    from sklearn.model_selection import train_test_split

    from consortium.federation.app.datasets import save_dataset

    nodes: dict[str, tuple[Any, str]] = {}
    infos, held = [], []
    resolved = {d["dataset"]: d["version"] for d in ctx.resolved.get("datasets", [])}
    for ref in recipe.federated.datasets:
        ctx.check_cancel()
        if ref in skip:
            continue
        data, info = load_data(ctx, ref, resolved.get(ref))  # the version checked at submission
        owner = info["owner"]
        if owner in nodes:
            raise InvalidInput(f"federated.datasets names two datasets of {owner}",
                               hint="one dataset per organization (each organization is one node)")
        y = data.target_values(recipe.data.target) if data.kind == "tabular" else data.labels
        idx = list(range(data.n_rows))
        strat = y if y is not None and len(set(map(str, y))) > 1 else None
        try:
            tr, te = train_test_split(idx, test_size=recipe.data.test_size, random_state=recipe.data.seed,
                                      stratify=strat)
        except ValueError:
            tr, te = train_test_split(idx, test_size=recipe.data.test_size, random_state=recipe.data.seed)
        import numpy as np

        name = f"{ref.split('/')[-1]}-v{info['version']}-{ctx.job_id}"
        path = save_dataset(node_root(ctx, owner), name, data.subset(np.asarray(sorted(tr))))
        nodes[owner] = (path.parent, name)
        held.append(data.subset(np.asarray(sorted(te))))
        infos.append({**info, "rows": data.n_rows, "train_rows": len(tr), "held_out_rows": len(te)})
        ctx.log(f"{owner}: {len(tr)} rows of {info['dataset']} v{info['version']} in its node directory")
    validation = _concat(held) if held else None
    return nodes, validation, infos


def _concat(parts: list[Any]) -> Any:
    import numpy as np
    import pandas as pd

    from consortium.data.frame import DataFrameSet

    first = parts[0]
    if first.kind == "image":
        return DataFrameSet.from_images(np.concatenate([p.images for p in parts]),
                                        np.concatenate([p.labels for p in parts]), first.class_names)
    d = DataFrameSet.from_frame(pd.concat([p.frame for p in parts], ignore_index=True), target=first.target)
    d.class_names = list(first.class_names)
    return d


class ProgressForwarder:
    """A progress sink that turns Flower's round records into job progress events, counting the
    rounds it saw (``rounds_seen``)."""

    def __init__(self, ctx: JobContext, rounds: int, extra: dict[str, Any] | None = None) -> None:
        self.ctx, self.rounds, self.rounds_seen = ctx, rounds, 0
        self.extra = dict(extra or {})  # added to each event (a tuning child's number)

    def __call__(self, rec: dict[str, Any]) -> None:
        ctx, rounds = self.ctx, self.rounds
        kind = rec.get("kind")
        if kind == "round":
            self.rounds_seen += 1
        if kind == "start":
            ctx.progress({"stage": "training", "round": 0, "rounds": rounds, "nodes": rec.get("nodes"),
                          "strategy": rec.get("strategy"), **self.extra}, force=True)
        elif kind == "round":
            g = rec.get("global") or {}
            ctx.progress({"stage": "training", "round": rec.get("round"), "rounds": rounds,
                          "nodes": rec.get("nodes") or {}, "missing": rec.get("missing") or [],
                          "loss": g.get("loss", rec.get("train_loss")), "accuracy": g.get("accuracy"),
                          "train_loss": rec.get("train_loss"), "seconds": rec.get("seconds"), **self.extra})
        if ctx.should_stop():
            raise JobCancelled("cancelled on request")


def forward_progress(ctx: JobContext, rounds: int) -> ProgressForwarder:
    """The progress sink of a federated job (see ``ProgressForwarder``)."""
    return ProgressForwarder(ctx, rounds)


def charge_planned(ctx: JobContext) -> None:
    """A DP job that stopped after some rounds still spent privacy: charge its planned epsilon
    (an upper bound) to each dataset's ledger."""
    from consortium.jobs import federated_budgets

    plan = ctx.resolved.get("privacy") or {}
    if plan:
        with transaction(ctx.services.session_factory) as s:
            federated_budgets.record_spend(s, ctx.job_id, {ds: (p["epsilon"], p["delta"]) for ds, p in plan.items()})


def run(ctx: JobContext) -> dict[str, Any]:
    """Run one federated job from ``ctx.recipe``; returns what the job's result shows."""
    import torch

    from consortium.federation.engine.embedded import run_on_nodes
    from consortium.federation.engine.network import Listen
    from consortium.federation.engine.processes import job_tag
    from consortium.jobs import federated_runs
    from consortium.training.tuning import search_record

    torch.set_num_threads(threads())
    recipe = ctx.recipe  # validated once, when the worker loaded the job
    if recipe.federated is None:
        raise InvalidInput("a federated job needs a federated section in its recipe")
    resolved = ctx.resolved
    owners = {d["owner_org_id"]: d["owner"] for d in resolved.get("datasets", [])}
    ctx.progress({"stage": "approval", "rounds": recipe.federated.rounds}, force=True)
    rejected = wait_for_approvals(ctx, owners, recipe.federated.min_nodes)
    left_out = {d["dataset"] for d in resolved.get("datasets", []) if d["owner"] in rejected}
    if rejected:  # the job runs without the organizations that said no
        resolved = {**resolved, "datasets": [d for d in resolved.get("datasets", []) if d["owner"] not in rejected]}
    settings = ctx.services.settings
    work = settings.home / "federation" / ctx.job_id
    number, left = attempt(ctx)  # an earlier attempt's processes die here (its worker was killed)
    if left:
        ctx.log(f"killed {sum(map(len, left.values()))} Flower process(es) left by an earlier attempt of this job")
    shutil.rmtree(work, ignore_errors=True)
    with transaction(ctx.services.session_factory) as s:
        joining = federated_runs.joining_nodes(s, resolved.get("datasets", []), settings.home / "nodes")
    site = {o: r for o, r in joining.items() if r["where"] == "site"}
    ctx.progress({"stage": "load", "site_nodes": {o: r["node"] for o, r in site.items()}}, force=True)
    staged, validation, infos = materialize(ctx, recipe, skip={r["ref"] for r in site.values()} | left_out)
    nodes = {o: v for o, v in staged.items() if o not in joining}  # the rest get a SuperNode per job
    for o, r in joining.items():
        if r["where"] == "hub":  # the organization's standing node reads the staged rows itself
            r["dataset"] = staged[o][1]
    for i in infos:
        joined = joining.get(i["owner"])
        if joined is not None and joined["where"] == "hub":
            i["location"] = f"node {joined['node']} on the hub's machine (rows staged by the hub)"
    infos += [{"dataset": r["ref"], "version": r["version"], "owner": o, "node": r["node"], "train_rows": None,
               "location": f"node {r['node']} at the organization's site"} for o, r in site.items()]
    engine = engine_name()
    run_recipe = recipe
    if joining:
        engine = "deployment"  # node agents connect to a real SuperLink
        # every organization's node must be connected before the statistics round
        run_recipe = recipe.model_copy(update={"federated": recipe.federated.model_copy(
            update={"min_nodes": max(recipe.federated.min_nodes, len(recipe.federated.datasets) - len(left_out))})})
        ctx.log("node agents: " + ", ".join(f"{o} ({r['node']}, {r['where']})" for o, r in joining.items()))
    superlink: list[str] = []

    def started(dep: Any) -> None:
        security = {**federated_runs.admit(dep, joining), "tag": dep.tag}
        superlink.append(dep.address)
        with transaction(ctx.services.session_factory) as s:
            federated_runs.assign_nodes(s, ctx.job_id, joining, dep.address, "run", security)
        ctx.progress({"stage": "waiting_for_nodes", "superlink": dep.address, "nodes": sorted(joining)}, force=True)

    def refused(r: Any) -> None:  # a SuperNode the job's SuperLink turned away
        with transaction(ctx.services.session_factory) as s:
            ctx.services.audit_in(s, [federated_runs.refusal_event(s, ctx.job_id, ctx.org_id, r)])
        ctx.log(f"the SuperLink refused a SuperNode from {r.peer or 'an unknown address'}: {r.reason} "
                f"(key {r.fingerprint or 'not logged'})")

    def run_one(r: Any, sink: Any, work_dir: Path) -> Any:
        """One federated run of ``r`` (the job's recipe, or a tuning child's) on the job's nodes; its
        ``final`` metrics are the sites' own evaluation when the hub holds no validation rows."""
        if joining:  # every organization's node must be connected before the statistics round
            r = r.model_copy(update={"federated": r.federated.model_copy(
                update={"min_nodes": run_recipe.federated.min_nodes if run_recipe.federated else 2})})
        try:
            res = run_on_nodes(r, nodes, engine=engine, validation=validation,
                               progress=sink, work_dir=work_dir, on_superlink=started if joining else None,
                               secure=not settings.federation_insecure, pki_dir=settings.home / "federation-pki",
                               listen=Listen.from_settings(settings),
                               tag=job_tag(ctx.job_id, number), on_refusal=refused)
            if res.final is None:  # no hub-held rows to evaluate on: the sites' own evaluation
                res.final = site_evaluation(res.history)
            return res
        except Exception as e:
            if joining and not ctx.should_stop():  # a site that refused it under its policy is named
                _name_refusing_sites(ctx, e)
            raise
        finally:
            if joining and superlink:  # the nodes leave this run (a next tuning child assigns them again)
                with transaction(ctx.services.session_factory) as s:
                    federated_runs.assign_nodes(s, ctx.job_id, joining, superlink[-1], "done")

    tuning, rounds = None, recipe.federated.rounds
    try:
        if recipe.tune is not None:  # each child is one federated run (issue 20 point 3)
            from consortium.jobs.federated_tuning import tune_children

            result, tuning = tune_children(
                ctx, recipe, run_one, work, owners={i["owner"] for i in infos}, hub_rows=validation_rows(infos) > 0,
                forwarder=lambda extra: ProgressForwarder(ctx, rounds, extra),
                site_eval=site_evaluation)
        else:
            sink = forward_progress(ctx, rounds)
            try:
                result = run_one(recipe, sink, work)
            except BaseException:
                if sink.rounds_seen:  # model updates left the nodes: their privacy cost counts
                    charge_planned(ctx)
                if ctx.should_stop():
                    raise JobCancelled("cancelled on request") from None
                raise
        ctx.check_cancel()
        evaluation = evaluate_final(recipe, result, validation)
        if tuning is not None:  # the card's plot of the reward over children
            from consortium.evaluation import plots

            evaluation.setdefault("plots", {})["tuning_rewards"] = plots.search_curve(
                tuning["rewards"], tuning.get("reward", "reward"))
        reg = register(ctx, recipe, result, infos, engine, evaluation, tuning=tuning)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for d, name in staged.values():
            shutil.rmtree(d / name, ignore_errors=True)
    final = result.final or {}
    return {**reg, "metrics": {k: v for k, v in final.items() if isinstance(v, (int, float))},
            "rounds": len([h for h in result.history if "round" in h]), "contributors": result.contributors,
            "epsilon": result.epsilon, "contribution": result.contribution, "engine": result.engine,
            "seconds": round(result.seconds, 2), "timings": result.timings,
            **({"tuning": search_record(tuning)} if tuning is not None else {})}


def site_evaluation(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Without a hub-held validation set (every dataset trained at its site): the last round's
    evaluation at the nodes, weighted by their rows: ``site_eval_loss`` (and ``site_eval_accuracy``)
    of the global model each node received in that round, on its own rows before its local training.

    >>> site_evaluation([{"round": 1, "nodes": {"a": {"num_examples": 1, "eval_loss": 1.0, "accuracy": 0.5},
    ...                                         "b": {"num_examples": 3, "eval_loss": 0.2, "accuracy": 0.9}}}])
    {'site_eval_loss': 0.4, 'site_eval_accuracy': 0.8}
    """
    nodes = next((h["nodes"] for h in reversed(history) if h.get("nodes")), None)
    if not nodes:
        return None
    n = sum(m["num_examples"] for m in nodes.values()) or 1
    out = {"site_eval_loss": round(sum(m["eval_loss"] * m["num_examples"] for m in nodes.values()) / n, 6)}
    if all("accuracy" in m for m in nodes.values()):
        out["site_eval_accuracy"] = round(sum(m["accuracy"] * m["num_examples"] for m in nodes.values()) / n, 6)
    return out


def evaluate_final(recipe: Any, result: Any, validation: Any) -> dict[str, Any]:
    """Plots (confusion matrix and ROC, or predicted vs true) and drift reference statistics of the
    final model on the hub-held validation rows, like a hub-trained version has; ``{}`` without
    validation rows. The model takes raw features (its scaling is inside), so the reference is
    over raw features, which is what the prediction log holds."""
    if validation is None:
        return {}
    from consortium.evaluation import plots
    from consortium.evaluation.metrics import confusion
    from consortium.evaluation.reference import reference_stats
    from consortium.federation.app.features import GlobalStats, to_arrays
    from consortium.federation.app.model import encode_labels
    from consortium.training.trainer import predict_proba

    x, y_raw = to_arrays(validation, recipe.data.target, recipe.process)
    if len(x) == 0:
        return {}
    stats = GlobalStats.from_dict(result.stats)
    task = recipe.resolved_task
    y = encode_labels(y_raw, recipe, stats)
    out = predict_proba(result.model(), x, task=task)
    names = _class_names(result.stats) or []
    if task == "classification" and out.ndim == 2:
        png = {"confusion_matrix": plots.confusion_matrix(confusion(y, out.argmax(1), out.shape[1]), names),
               "roc": plots.roc(y, out, names)}
    else:
        png = {"predicted_vs_true": plots.predicted_vs_true(y, out)}
    target = recipe.data.target or validation.target
    features = [str(c) for c in validation.frame.columns if c != target] if x.ndim == 2 else None
    return {"plots": png, "reference_stats": reference_stats(x, features)}


def _class_names(stats: dict[str, Any]) -> list[str] | None:
    """The model's class names: the nodes' names for their labels, else the labels themselves."""
    return stats.get("class_names") or [str(c) for c in stats.get("classes", [])] or None


def register(ctx: JobContext, recipe: Any, result: Any, infos: list[dict[str, Any]], engine: str,
             evaluation: dict[str, Any] | None = None, tuning: dict[str, Any] | None = None) -> dict[str, Any]:
    """Register the federated model as a new version of the submitter's model (with ``evaluation``:
    plots and drift reference from ``evaluate_final``); write the ledger. With ``tuning`` (the
    search's summary; ``result`` is its best child) the lineage records the search, and the ledger
    is left alone: each child charged its own epsilon when it ended."""
    from consortium.jobs import federated_budgets
    from consortium.registry import models as reg
    from consortium.registry.explain import attach_federated
    from consortium.training.tuning import search_record

    if result.onnx is None:
        raise Unavailable("the federated model could not be exported to ONNX",
                          hint="; ".join(result.contribution.get("warnings", [])) or "see the job log")
    svc = ctx.services
    model_name = recipe.registration.model if recipe.registration else recipe.name
    final = result.final or {}
    dp = recipe.federated.dp
    by_owner = {i["owner"]: i for i in infos}
    contributors = sorted(result.contributors)
    lineage: dict[str, Any] = {
        "job_id": ctx.job_id, "recipe": ctx.recipe.to_dict(),
        "datasets": [{"dataset": i["dataset"], "version": i["version"], "owner": i["owner"],
                      "rows": i["train_rows"] if i["train_rows"] is not None else result.node_rows.get(i["owner"]),
                      **({"location": i["location"]} if "location" in i else {})} for i in infos],
        "organizations": contributors, "source": "federated", "engine": result.engine,
        "strategy": recipe.federated.strategy, "rounds": recipe.federated.rounds,
        "secure_aggregation": recipe.federated.secure_aggregation, "node_rows": result.node_rows,
        "contribution": result.contribution,
        "validation": "held-out share (data.test_size) of each organization's rows, evaluated at the hub"
        if validation_rows(infos) else "none at the hub (every dataset trained at its site): site_eval_* metrics "
        "are the last round's evaluation at the nodes, on their own rows before local training"}
    if dp is not None and result.epsilon:
        lineage.update({"epsilon": max(result.epsilon.values()), "delta": dp.delta,
                        "epsilon_by_organization": result.epsilon})
    if tuning is not None:  # the model card's record of the search; the version is the best child's model
        lineage["tuning"] = {**search_record(tuning), "children": len(tuning["trials"])}
        lineage["tuned_recipe"] = result.recipe
    metrics = {k: v for k, v in final.items() if isinstance(v, (int, float))}
    columns = validation_columns(ctx, recipe)
    with transaction(svc.session_factory) as s:
        p = ctx.principal(s)
        v = reg.register_version(
            s, p, model_name, onnx=result.onnx, blobs=svc.blobs, metrics=metrics, lineage=lineage,
            signature={"raw_columns": columns} if columns else None,
            task=recipe.resolved_task, class_names=_class_names(result.stats),
            description=f"federated across {', '.join(contributors)} by job {ctx.job_id}", source_format="federated",
            **(evaluation or {}))
        model = s.get(reg.RegisteredModel, v.model_id)
        attach_federated(s, v, p.org_id, result, svc.blobs, columns)
        if ctx.project_id and model is not None and getattr(model, "project_id", None) is None:
            model.project_id = ctx.project_id
        if ctx.project_id and model is not None and model.project_id == ctx.project_id:
            from consortium.governance import consent  # its members read it: the contributors' consent

            consent.require_for_project(s, model, ctx.project_id)
        ev = reg.registered_event(v, model, actor_user_id=p.user_id, actor_org_id=p.org_id, request_id=ctx.job_id)
        ev.project_id = ctx.project_id
        ev.details = {**(ev.details or {}), "federated": True, "organizations": contributors}
        svc.audit_in(s, [ev])
        if dp is not None and result.epsilon and tuning is None:
            ids = {d["owner"]: d["dataset_id"] for d in ctx.resolved.get("datasets", [])}
            federated_budgets.record_spend(s, ctx.job_id, {ids[o]: (eps, dp.delta) for o, eps in result.epsilon.items()
                                                     if o in ids and o in by_owner})
        return {"model": f"{p.org_name}/{model_name}", "version": v.version, "version_id": v.id}


def validation_rows(infos: list[dict[str, Any]]) -> int:
    """Rows the hub held out for validation (0 when every dataset trained at its site)."""
    return sum(int(i.get("held_out_rows") or 0) for i in infos)


def validation_columns(ctx: JobContext, recipe: Any) -> list[str] | None:
    """Feature column names in model input order (tabular jobs), from the stored schema."""
    resolved = ctx.resolved.get("datasets") or []
    if not resolved:
        return None
    from consortium.store.tables.data import Dataset, DatasetVersion

    with transaction(ctx.services.session_factory) as s:
        from sqlalchemy import select

        v = s.scalar(select(DatasetVersion).join(Dataset, Dataset.id == DatasetVersion.dataset_id)
                     .where(Dataset.id == resolved[0]["dataset_id"], DatasetVersion.version == resolved[0]["version"]))
        if v is None or v.schema.get("kind") != "tabular":
            return None
        target = recipe.data.target or v.schema.get("target")
        return [c["name"] for c in v.schema.get("columns", []) if c["name"] != target]
