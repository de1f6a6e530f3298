"""The recipe is parsed once: a job stores the validated recipe, normalized, with what submission
resolved beside it (``Job.resolved``, no private keys in the recipe); the worker loads it once, and
a stored recipe that no longer validates fails its job with the reason instead of the worker."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from consortium.jobs import queue
from consortium.jobs.context import JobContext
from consortium.jobs.worker import execute
from consortium.recipe import Recipe, parse_recipe
from consortium.store.db import transaction
from consortium.store.tables.jobs import Job

SOURCE = """
name: bc-once
data: {dataset: DATASET, target: target}
process: [{normalize: null}]
model: {type: mlp, hidden: [8]}
train: {epochs: 2}
"""


def test_a_job_stores_the_validated_recipe_and_what_submission_resolved(http: Any, world: Any,
                                                                        services: Any) -> None:
    owner = world.actor(world.org())
    r = http.post("/api/v1/datasets/import-sample", json={"sample": "breast_cancer", "name": "bc"},
                  headers=owner.headers)
    assert r.status_code == 201, r.text
    text = SOURCE.replace("DATASET", f"{owner.org}/bc")
    r = http.post("/api/v1/jobs", json={"recipe": text}, headers=owner.headers)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["recipe"] == parse_recipe(text).to_dict()  # normalized: defaults filled, {normalize: null} expanded
    assert not [k for k in out["recipe"] if k.startswith("_")]
    with transaction(services.session_factory) as s:
        job = queue.get(s, out["id"])
        assert job.resolved["datasets"][0]["dataset"] == f"{owner.org}/bc"
        assert job.resolved["datasets"][0]["version"] == 1 and job.resolved["datasets"][0]["owner"] == owner.org
        ctx = JobContext.of(services, job)  # what the worker runs: one validation of the stored document
        assert isinstance(ctx.recipe, Recipe) and ctx.recipe == parse_recipe(text)
        assert ctx.resolved == job.resolved
        queue.request_cancel(s, job)  # no worker here: leave nothing queued


def test_a_stored_recipe_that_no_longer_validates_fails_its_job(world: Any, services: Any) -> None:
    owner = world.actor(world.org())
    with transaction(services.session_factory) as s:  # as if queued by a hub with looser bounds
        job = queue.submit(s, org_id=owner.org_id, user_id=owner.user_id, kind="train", name="old",
                           recipe={"name": "old", "train": {"batch_size": 10**6}})
    assert execute(services, job.id, "test-worker") == "failed"
    with transaction(services.session_factory) as s:
        job = queue.get(s, job.id)
        assert job.state == "failed" and job.error is not None
        assert job.error.startswith("invalid recipe at train.batch_size"), job.error
        assert [e.data for e in queue.events(s, job.id, kinds=["state"])][-1]["state"] == "failed"


def _scratch_database(backend: str, tmp_path: Path) -> tuple[str, Any]:
    """An empty database of this backend (PostgreSQL: created here, the module's is at the newest
    revision) and what drops it."""
    import sqlalchemy as sa

    if backend != "postgres":
        return f"sqlite:///{tmp_path / 'mig.db'}", lambda: None
    base = os.environ["CONSORTIUM_TEST_POSTGRES_URL"]
    name = f"consortium_mig_{secrets.token_hex(4)}"
    admin = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return base.rsplit("/", 1)[0] + "/" + name, drop


def test_the_migration_moves_resolved_out_of_the_recipe(backend: str, tmp_path: Path) -> None:
    """Jobs stored with the old private key keep what it held, in the new column."""
    import sqlalchemy as sa
    from alembic import command

    from consortium.store.db import alembic_config

    url, drop = _scratch_database(backend, tmp_path)
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        cfg = alembic_config(url)
        command.upgrade(cfg, "0300_jobs")
        resolved = {"datasets": [{"dataset": "a/bc", "dataset_id": "ds_1", "version": 2, "owner": "a",
                                  "owner_org_id": "org_a"}]}
        with engine.begin() as c:
            c.execute(sa.text("INSERT INTO organizations (id, name, display_name, description, created_at) "
                              "VALUES ('org_a', 'a', 'A', '', CURRENT_TIMESTAMP)"))
            c.execute(sa.text("INSERT INTO users (id, email, name, password_hash, is_operator, disabled, "
                              "created_at) VALUES ('usr_1', 'u@a.example', 'u', 'x', false, false, CURRENT_TIMESTAMP)"))
            jobs = sa.table("jobs", *(sa.column(n) for n in ("id", "org_id", "user_id", "kind", "name", "state",
                                                             "cancel_requested", "attempts", "max_attempts",
                                                             "created_at")),
                            sa.column("recipe", sa.JSON), sa.column("progress", sa.JSON))
            for job_id, recipe in (("job_old", {"name": "x", "_resolved": resolved}), ("job_plain", {"name": "y"})):
                c.execute(jobs.insert().values(id=job_id, org_id="org_a", user_id="usr_1", kind="train", name="x",
                                               state="queued", recipe=recipe, progress={}, cancel_requested=False,
                                               attempts=0, max_attempts=2, created_at=sa.func.current_timestamp()))
        command.upgrade(cfg, "heads")
        with engine.connect() as c:
            rows = {r.id: r for r in c.execute(sa.select(Job.id, Job.recipe, Job.resolved))}
        assert rows["job_old"].recipe == {"name": "x"} and rows["job_old"].resolved == resolved
        assert rows["job_plain"].recipe == {"name": "y"} and rows["job_plain"].resolved == {}
        command.downgrade(cfg, "0300_jobs")  # and back: the key returns to the recipe
        with engine.connect() as c:
            back = dict(c.execute(sa.text("SELECT id, recipe FROM jobs")).all())
        assert {k: v if isinstance(v, dict) else json.loads(v) for k, v in back.items()} == {
            "job_old": {"name": "x", "_resolved": resolved}, "job_plain": {"name": "y"}}
    finally:
        engine.dispose()
        drop()
