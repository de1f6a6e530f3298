"""The executor setting with its default, ``local``: the hub's process (the app, the CLI, a job run by
the local worker) never imports Ray, and what only a Ray cluster can run is refused at submission
saying it needs ``CONSORTIUM_EXECUTOR=ray``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

# Runs in a fresh interpreter: this test process may have imported Ray for other tests.
HUB_WITHOUT_RAY = textwrap.dedent("""
    import sys
    from fastapi.testclient import TestClient

    import consortium.cli.main  # noqa: F401 - every command's module, cli.hub included
    from consortium.config import Settings
    from consortium.governance import credentials, identity
    from consortium.governance.roles import Role
    from consortium.jobs.worker import WorkerPool, run_worker  # noqa: F401
    from consortium.services import Services
    from consortium.store.db import transaction
    from consortium.web import create_app

    settings = Settings(home=sys.argv[1])
    assert settings.executor == "local"
    svc = Services.start(settings)
    with transaction(svc.session_factory) as s:
        org = identity.create_org(s, svc.keys, "acme", "Acme")
        user = identity.create_user(s, "o@acme.example", "o", "correct horse battery")
        identity.add_member(s, org.id, user.id, Role.owner)
        _, token = credentials.create_token(s, credentials.principal_for(user, org, Role.owner, "t"), "t",
                                            Role.owner, 1)
    h = {"authorization": f"Bearer {token}"}
    with TestClient(create_app(settings, services=svc)) as c:
        assert c.post("/api/v1/datasets/import-sample", json={"sample": "iris", "name": "iris"},
                      headers=h).status_code == 201
        recipe = {"name": "iris", "data": {"dataset": "acme/iris"}, "model": {"type": "logistic"},
                  "train": {"epochs": 2, "workers": 1}, "evaluate": {"cv_folds": 0}}
        r = c.post("/api/v1/jobs", json={"recipe": recipe}, headers=h)
        assert r.status_code == 201, r.text
        run_worker(settings, once=True)  # the local worker's path, in this process
        job = c.get(f"/api/v1/jobs/{r.json()['id']}", headers=h).json()
        assert job["state"] == "succeeded", job
    assert "torch" in sys.modules  # the job really trained here
    print(sorted(m for m in sys.modules if m == "ray" or m.startswith("ray.")))
""")


def test_the_hub_never_imports_ray_with_the_local_executor(tmp_path: Path) -> None:
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("CONSORTIUM_", "RAY_"))}
    r = subprocess.run([sys.executable, "-c", HUB_WITHOUT_RAY, str(tmp_path)], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout[-2000:]


def test_the_local_executor_refuses_what_needs_a_ray_cluster(http: Any, world: Any) -> None:
    a = world.actor(world.org())
    assert http.post("/api/v1/datasets/import-sample", json={"sample": "digits", "name": "digits"},
                     headers=a.headers).status_code == 201
    base = {"name": "wide", "data": {"dataset": f"{a.org}/digits"}, "process": [{"rescale": {}}],
            "model": {"type": "cnn", "channels": [8]}, "train": {"epochs": 2, "batch_size": 32},
            "evaluate": {"cv_folds": 0}}
    space = {"train.lr": {"low": 0.001, "high": 0.1, "log": True}}
    cases = [({**base, "train": {**base["train"], "workers": 2}}, "train.workers"),
             ({**base, "tune": {"trials": 4, "parallel": 2, "space": space}}, "tune.parallel"),
             ({**base, "tune": {"trials": 4, "method": "pbt", "space": space}}, "tune.method")]
    for recipe, field in cases:
        r = http.post("/api/v1/jobs", json={"recipe": recipe}, headers=a.headers)
        assert r.status_code == 422, r.text
        assert f"invalid recipe at {field}" in r.text and "CONSORTIUM_EXECUTOR=ray" in r.text, r.text
    # the same recipe in one process is today's path
    r = http.post("/api/v1/jobs", json={"recipe": {**base, "train": {**base["train"], "workers": 1}}},
                  headers=a.headers)
    assert r.status_code == 201, r.text
    http.post(f"/api/v1/jobs/{r.json()['id']}/cancel", headers=a.headers)
