"""The SDK as a notebook user meets it (issue 21, point 18): ``help(consortium.Client)`` lists the
resource groups; every public method of the client and of every group has a docstring with an
example; ``jobs.wait(progress=True)`` draws a tqdm bar (a real worker runs a real job) and returns
the finished job."""

from __future__ import annotations

import inspect
import io
import pydoc
from typing import Any

import pytest

import consortium
from consortium.sdk.client import Client

UNUSED = "csm_tok_unused"  # no hub is called: the groups only need a client


def _groups() -> dict[str, type]:
    c = Client("http://127.0.0.1:9", UNUSED)
    try:
        return {name: type(getattr(c, name)) for name in Client.GROUPS}
    finally:
        c.close()


def test_help_lists_every_group() -> None:
    text = pydoc.render_doc(consortium.Client, renderer=pydoc.plaintext)
    groups = _groups()
    c = Client("http://127.0.0.1:9", UNUSED)
    attached = {k for k, v in vars(c).items() if hasattr(v, "c") and v.c is c}
    c.close()
    assert attached == set(Client.GROUPS)  # GROUPS names every group the client attaches
    for name in groups:
        assert f"``{name}``" in text, f"help(consortium.Client) does not mention the {name} group"


def test_every_public_method_has_a_docstring_with_an_example() -> None:
    missing = []
    classes = {"Client": Client, **{f"Client.{k}": v for k, v in _groups().items()}}
    for label, cls in classes.items():
        for name, member in inspect.getmembers(cls):
            if name.startswith("_") or not callable(member) or name in ("GROUPS",):
                continue
            doc = inspect.getdoc(member) or ""
            if not doc.strip() or ">>> " not in doc:
                missing.append(f"{label}.{name}")
    assert not missing, f"{len(missing)} public methods without a docstring example: {missing}"


@pytest.fixture(scope="module")
def trainer(world: Any, http: Any) -> Any:
    a = world.actor(world.org(), "admin")
    r = http.post("/api/v1/datasets/import-sample", json={"sample": "iris", "name": "iris"}, headers=a.headers)
    assert r.status_code == 201, r.text
    return a


@pytest.mark.one_backend  # a real worker trains; the progress bar does not depend on the database
def test_wait_with_a_progress_bar(live_url: str, trainer: Any, worker: Any, monkeypatch: Any) -> None:
    """tqdm.auto picks the terminal bar outside Jupyter; the bar goes to stderr and ends at the
    total epochs with the state after it."""
    import sys

    recipe = {"name": "iris-progress", "data": {"dataset": f"{trainer.org}/iris", "target": "target", "seed": 0},
              "model": {"type": "mlp", "hidden": [8]}, "train": {"epochs": 4, "batch_size": 32},
              "evaluate": {"cv_folds": 0}, "register": {"model": "iris-progress"}}
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)  # where tqdm writes
    with Client(live_url, trainer.token) as c:
        job = c.jobs.submit(recipe)
        done = c.jobs.wait(job["id"], timeout_s=240, poll_s=0.2, progress=True)
    assert done["state"] == "succeeded", done.get("error")
    out = err.getvalue()
    assert "iris-progress" in out and "4/4" in out and "state=succeeded" in out, out[-500:]
    assert done["result"]["model"].endswith("iris-progress")
