"""The ``train`` job: load the granted dataset inside the worker, run the recipe, register the model.

The submitter receives the model and its metrics, never rows: the data is decrypted in the
worker's memory only (``load_for_compute``), and its use is audited against the dataset's owner.
"""

from __future__ import annotations

import os
from typing import Any

from consortium.errors import InvalidInput
from consortium.governance.audit import EventDraft
from consortium.jobs.context import JobContext
from consortium.store.db import transaction


def threads() -> int:
    return int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)


def load_data(ctx: JobContext, ref: str, version: int | None) -> tuple[Any, dict[str, Any]]:
    """Decrypt one dataset version for this job, after re-checking the grant; audited for its owner."""
    from consortium.data import catalog
    from consortium.data.access import load_for_compute, resolve_version
    from consortium.governance.identity import org_by_id
    from consortium.governance.roles import Permission

    svc = ctx.services
    with transaction(svc.session_factory) as s:
        p = ctx.principal(s)
        ds, v = resolve_version(s, p, ref, version, Permission.compute)
        data = load_for_compute(s, p, ds.id, v.version, svc.blobs)
        info = {"dataset": catalog.full_name(s, ds), "version": v.version, "owner": org_by_id(s, ds.org_id).name}
        svc.audit_in(s, [EventDraft("job.compute_on_dataset", request_id=ctx.job_id, actor_user_id=p.user_id,
                                    actor_org_id=p.org_id, resource_type="dataset", resource_id=ds.id,
                                    resource_org_id=ds.org_id, project_id=ctx.project_id,
                                    details={"job": ctx.job_id, "version": v.version, "rows": data.n_rows})])
    return data, info


def register(ctx: JobContext, model_name: str, result: Any, lineage: dict[str, Any]) -> dict[str, Any]:
    from consortium.registry import models as reg
    from consortium.registry.explain import attach

    svc = ctx.services
    with transaction(svc.session_factory) as s:
        p = ctx.principal(s)
        v = reg.register_training_result(s, p, model_name, result, blobs=svc.blobs, lineage=lineage,
                                         description=f"trained by job {ctx.job_id}")
        model = s.get(reg.RegisteredModel, v.model_id)
        attach(s, v, p.org_id, result, svc.blobs)
        if ctx.project_id and model is not None and getattr(model, "project_id", None) is None:
            model.project_id = ctx.project_id
        if ctx.project_id and model is not None and model.project_id == ctx.project_id:
            from consortium.governance import consent  # its members read it: the contributors' consent

            consent.require_for_project(s, model, ctx.project_id)
        ev = reg.registered_event(v, model, actor_user_id=p.user_id, actor_org_id=p.org_id, request_id=ctx.job_id)
        ev.project_id = ctx.project_id
        svc.audit_in(s, [ev])
        org_name = p.org_name
        return {"model": f"{org_name}/{model_name}", "version": v.version, "version_id": v.id}


def run(ctx: JobContext) -> dict[str, Any]:
    """Load the recipe's dataset, train on it, register the model; returns what the job's result shows."""
    import torch

    from consortium.training.pipeline import run_training
    from consortium.training.tuning import search_record

    torch.set_num_threads(threads())
    recipe = ctx.recipe  # validated once, when the worker loaded the job
    if recipe.data.dataset is None:
        raise InvalidInput("invalid recipe at data.dataset: a training job needs a dataset")
    ctx.progress({"stage": "load"}, force=True)
    data, info = load_data(ctx, recipe.data.dataset, recipe.data.version)
    ctx.log(f"loaded {data.n_rows} rows of {info['dataset']} v{info['version']} (owner {info['owner']})")
    result = run_training(recipe, data, on_progress=ctx.progress, should_stop=ctx.should_stop)
    ctx.check_cancel()
    ctx.log(f"test metrics: {', '.join(f'{k}={v:.4f}' for k, v in result.metrics.items() if isinstance(v, float))}")
    model_name = recipe.registration.model if recipe.registration else recipe.name
    lineage: dict[str, Any] = {"job_id": ctx.job_id, "datasets": [info],
                               "organizations": sorted({info["owner"]}), "source": "training"}
    if result.tuning:  # the model card's record of the search (method, budget, best child, preferences)
        lineage["tuning"] = search_record(result.tuning)
    reg = register(ctx, model_name, result, lineage)
    return {**reg, "metrics": result.metrics, "cv": (result.cv or {}).get("summary"),
            "tuning": result.tuning and search_record(result.tuning),
            "history_len": len(result.history), "split_sizes": result.split_sizes,
            "onnx_max_abs_diff": result.onnx_max_abs_diff}
