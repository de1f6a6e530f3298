"""SDK group ``client.jobs``: submit recipes, follow progress, cancel.

>>> job = client.jobs.submit(open("recipe.yaml").read())          # doctest: +SKIP
>>> for ev in client.jobs.follow(job["id"]): print(ev["data"])    # doctest: +SKIP
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from consortium.errors import Unavailable
from consortium.sdk.resources import Group

TERMINAL = {"succeeded", "failed", "cancelled"}


class Jobs(Group):
    def submit(self, recipe: str | dict[str, Any] | Path, project: str | None = None) -> dict[str, Any]:
        """Queue a job from a recipe (dict, YAML/JSON text, or a path to a recipe file)."""
        if isinstance(recipe, Path):
            recipe = recipe.read_text()
        return self._post("/jobs", {"recipe": recipe, "project": project})

    def list(self, state: str | None = None, limit: int | None = 50) -> list[dict[str, Any]]:
        """Your organization's newest ``limit`` jobs (``None``: all of them)."""
        return self._list("/jobs", limit=limit, state=state)

    def get(self, job_id: str) -> dict[str, Any]:
        return self._get(f"/jobs/{job_id}")

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._post(f"/jobs/{job_id}/cancel")

    def events(self, job_id: str, after: int = 0, kind: str | None = None) -> builtins.list[dict[str, Any]]:
        """Every event after event id ``after``, oldest first."""
        return self._list(f"/jobs/{job_id}/events", after=after, kind=kind)

    def logs(self, job_id: str) -> builtins.list[str]:
        return [e["data"].get("message", "") for e in self.events(job_id, kind="log")]

    def follow(self, job_id: str, poll_s: float = 0.5, timeout_s: float | None = None) -> Iterator[dict[str, Any]]:
        """Yield events as they arrive until the job ends (polling)."""
        after, deadline = 0, None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            evs = self.events(job_id, after=after)
            yield from evs
            if evs:
                after = evs[-1]["id"]
            job = self.get(job_id)
            if job["state"] in TERMINAL and not evs:
                return
            if deadline is not None and time.monotonic() > deadline:
                raise Unavailable(f"job {job_id} still {job['state']} after {timeout_s} s")
            time.sleep(poll_s)

    def wait(self, job_id: str, timeout_s: float = 600, poll_s: float = 0.5) -> dict[str, Any]:
        """Block until the job ends; returns the final job."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.get(job_id)
            if job["state"] in TERMINAL:
                return job
            if time.monotonic() > deadline:
                raise Unavailable(f"job {job_id} still {job['state']} after {timeout_s} s")
            time.sleep(poll_s)
