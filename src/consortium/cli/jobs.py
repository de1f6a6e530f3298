"""CLI: submit recipes, list and watch jobs (live progress bar with loss), cancel, logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from consortium.cli.common import JSON_OPT, client, console, err_console, handled, show

jobs = typer.Typer(help="Training, tuning and federated jobs.", no_args_is_help=True)
JOB_ARG = typer.Argument(..., help="The job's id (`jobs list`).")


@jobs.command("submit")
def submit(recipe: Path = typer.Argument(..., exists=True, readable=True, help="Recipe file (YAML or JSON)."),
           project: str = typer.Option(None, help="Run the job in this project."),
           watch_: bool = typer.Option(False, "--watch", help="Follow progress until the job ends.")) -> None:
    """Queue a job from a recipe file; invalid recipes are refused with the bad field's path."""
    with handled():
        job = client().jobs.submit(recipe.read_text(), project=project)
    console.print(f"queued [bold]{job['id']}[/bold] ({job['kind']}: {job['name']})")
    if watch_:
        watch(job["id"])


@jobs.command("list")
def list_(state: str = typer.Option(None, help="queued, running, succeeded, failed or cancelled"),
          as_json: bool = JSON_OPT) -> None:
    """Your organization's jobs, newest first."""
    with handled():
        show(client().jobs.list(state), ["id", "name", "kind", "state", "created_at", "finished_at", "error"],
             as_json)


@jobs.command("show")
def show_job(job_id: str = JOB_ARG, as_json: bool = JSON_OPT) -> None:
    """A job's state, progress and result."""
    with handled():
        j = client().jobs.get(job_id)
    show(j if as_json else {k: j[k] for k in ("id", "name", "kind", "state", "progress", "result", "error",
                                             "created_at", "started_at", "finished_at")}, as_json=as_json)


@jobs.command("watch")
def watch(job_id: str = JOB_ARG) -> None:
    """Follow a job live: a progress bar over epochs (or federated rounds, or tuning children) with the
    latest loss (or the child's reward and the best so far)."""
    c = client()
    with handled(), Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                             TextColumn("{task.completed}/{task.total}"), TextColumn("{task.fields[info]}"),
                             TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(job_id, total=None, info="queued")
        for ev in c.jobs.follow(job_id):
            d = ev["data"]
            if ev["kind"] == "state":
                bar.update(task, info=d.get("state", ""))
                if d.get("error"):
                    err_console.print(f"[red]{d['error']}[/red]")
            elif ev["kind"] == "log":
                bar.console.print(f"[dim]{d.get('message', '')}[/dim]")
            elif isinstance(d.get("trial"), dict):  # a tuning child ended: its reward and the best so far
                t = d["trial"]
                bar.update(task, total=d.get("trials"), completed=int(t.get("number", 0)) + 1,
                           info=_fmt({"reward": t.get("reward"), "best": t.get("best_reward")}, ("reward", "best"))
                           + f" {t.get('state', '').lower()}", description=f"{job_id} tune")
                if t.get("best_number") == t.get("number") and t.get("best_params"):
                    bar.console.print(f"[dim]child {t['number']}: new best {_fmt(t, ('reward',))} with "
                                      f"{t['best_params']}[/dim]")
            elif "round" in d:
                bar.update(task, total=d.get("rounds"), completed=d["round"],
                           info=_fmt(d, ("loss", "accuracy")), description=f"{job_id} round")
            elif "epoch" in d:
                bar.update(task, total=d.get("epochs"), completed=d["epoch"],
                           info=_fmt(d, ("loss", "val_loss", "val_accuracy")),
                           description=f"{job_id} {d.get('stage', 'train')}")
            elif "stage" in d:
                bar.update(task, info=d["stage"])
        job = c.jobs.get(job_id)
    colour = {"succeeded": "green", "failed": "red"}.get(job["state"], "yellow")
    console.print(f"[{colour}]{job['state']}[/{colour}]")
    if job.get("result"):
        show({k: v for k, v in job["result"].items() if k in ("model", "version", "metrics", "cv")})
    if job["state"] == "failed":
        raise typer.Exit(1)


def _fmt(d: dict[str, Any], keys: tuple[str, ...]) -> str:
    return " ".join(f"{k}={d[k]:.4f}" for k in keys if isinstance(d.get(k), (int, float)))


@jobs.command("cancel")
def cancel(job_id: str = JOB_ARG, as_json: bool = JSON_OPT) -> None:
    """Cancel a queued or running job."""
    with handled():
        j = client().jobs.cancel(job_id)
    if as_json:
        show(j, as_json=True)
        return
    console.print(f"{j['id']}: {j['state']}{' (cancel requested)' if j['cancel_requested'] else ''}")


@jobs.command("logs")
def logs(job_id: str = JOB_ARG) -> None:
    """Print a job's log lines."""
    with handled():
        for e in client().jobs.events(job_id, kind="log"):
            console.print(f"{e['time']}  {e['data'].get('message', '')}")
            if e["data"].get("traceback"):
                console.print(e["data"]["traceback"], markup=False)
