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
        """Queue a job from a recipe (dict, YAML/JSON text, or a path to a recipe file),
        optionally in a ``project``. Returns the job (``{"id", "name", "kind", "state": "queued", ...}``);
        an invalid recipe raises ``InvalidInput`` naming the bad field.

        >>> job = c.jobs.submit(Path("examples/digits-cnn.yaml"))       # doctest: +SKIP
        >>> job["state"]                                                # doctest: +SKIP
        'queued'
        """
        if isinstance(recipe, Path):
            recipe = recipe.read_text()
        return self._post("/jobs", {"recipe": recipe, "project": project})

    def list(self, state: str | None = None, limit: int | None = 50) -> list[dict[str, Any]]:
        """Your organization's jobs, newest first, optionally in one ``state`` (queued,
        running, succeeded, failed, cancelled); at most ``limit`` (None: all).

        >>> [j["id"] for j in c.jobs.list("running")]                    # doctest: +SKIP
        """
        return self._list("/jobs", limit=limit, state=state)

    def get(self, job_id: str) -> dict[str, Any]:
        """One job: ``{"id", "name", "kind", "state", "progress", "result", "error",
        "created_at", "started_at", "finished_at", ...}``; ``result`` holds the registered model, version
        and metrics once it succeeded.

        >>> c.jobs.get(job["id"])["progress"]                           # doctest: +SKIP
        {'stage': 'train', 'epoch': 3, 'epochs': 10, 'loss': 0.41}
        """
        return self._get(f"/jobs/{job_id}")

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job (a running one stops at its next checkpoint).
        Returns the job with ``cancel_requested``.

        >>> c.jobs.cancel(job["id"])["cancel_requested"]                # doctest: +SKIP
        True
        """
        return self._post(f"/jobs/{job_id}/cancel")

    def events(self, job_id: str, after: int = 0, kind: str | None = None) -> builtins.list[dict[str, Any]]:
        """A job's events after event id ``after``, oldest first (``kind``: progress, log or state):
        ``[{"id", "time", "kind", "data"}]``.

        >>> [e["data"]["state"] for e in c.jobs.events(job["id"], kind="state")]  # doctest: +SKIP
        """
        return self._list(f"/jobs/{job_id}/events", after=after, kind=kind)

    def logs(self, job_id: str) -> builtins.list[str]:
        """A job's log lines, as text.

        >>> for line in c.jobs.logs(job["id"]): print(line)              # doctest: +SKIP
        """
        return [e["data"].get("message", "") for e in self.events(job_id, kind="log")]

    def follow(self, job_id: str, poll_s: float = 0.5, timeout_s: float | None = None) -> Iterator[dict[str, Any]]:
        """Yield a job's events as they arrive until it ends (polling every ``poll_s``);
        ``Unavailable`` after ``timeout_s``.

        >>> for ev in c.jobs.follow(job["id"]):                          # doctest: +SKIP
        ...     print(ev["kind"], ev["data"])
        """
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

    def wait(self, job_id: str, timeout_s: float = 600, poll_s: float = 0.5, progress: bool = False) -> dict[str, Any]:
        """Block until the job ends; returns the final job (as ``get``: ``state``, ``result`` with
        the registered model, version and metrics, ``error``). ``Unavailable`` after ``timeout_s``.

        With ``progress=True`` a progress bar over epochs (or federated rounds) shows the stage and
        the latest loss: ``tqdm.auto``'s, so a text bar in a terminal and a widget in Jupyter.

        >>> job = c.jobs.submit(Path("examples/digits-cnn.yaml"))       # doctest: +SKIP
        >>> c.jobs.wait(job["id"], progress=True)["result"]["metrics"]  # doctest: +SKIP
        digits-cnn train: 100%|██████████| 10/10 [00:31<00:00, loss=0.0812, state=succeeded]
        {'accuracy': 0.97, ...}
        """
        deadline = time.monotonic() + timeout_s
        bar = _ProgressBar(job_id) if progress else None
        try:
            while True:
                job = self.get(job_id)
                if bar is not None:
                    bar.show(job)
                if job["state"] in TERMINAL:
                    return job
                if time.monotonic() > deadline:
                    raise Unavailable(f"job {job_id} still {job['state']} after {timeout_s} s")
                time.sleep(poll_s)
        finally:
            if bar is not None:
                bar.close()


class _ProgressBar:
    """A job's progress as a ``tqdm.auto`` bar (terminal or Jupyter widget): epochs or rounds
    done of the total, the stage in the description, the latest loss and the state after it."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.bar: Any = None
        self.total: int | None = None
        self.stage = ""

    def show(self, job: dict[str, Any]) -> None:
        from tqdm.auto import tqdm  # type: ignore[import-untyped]  # tqdm ships no types (types-tqdm is not installed)

        p = job.get("progress") or {}
        total = p.get("epochs") or p.get("rounds")
        done = p.get("epoch", p.get("round", 0)) or 0
        stage = str(p.get("stage") or ("round" if "round" in p else "")) or job["state"]
        if self.bar is None:
            self.bar = tqdm(total=total, desc=f"{job.get('name') or self.job_id} {stage}", unit="step",
                            leave=True, dynamic_ncols=True)
        elif total != self.total or stage != self.stage:  # a new stage (e.g. another CV fold): restart
            self.bar.reset(total=total)
            self.bar.set_description(f"{job.get('name') or self.job_id} {stage}")
        self.total, self.stage = total, stage
        self.bar.n = min(int(done), int(total)) if isinstance(total, int) else int(done)
        post = {k: round(float(p[k]), 4) for k in ("loss", "val_loss", "accuracy")
                if isinstance(p.get(k), (int, float))}
        self.bar.set_postfix(**post, state=job["state"], refresh=False)
        if job["state"] == "succeeded" and isinstance(total, int):
            self.bar.n = total
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
