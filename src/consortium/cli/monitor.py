"""CLI for monitoring: ``consortium monitor DEPLOYMENT`` (a live table), ``consortium feedback`` and
``consortium monitoring ...`` (settings, drift, prediction log, trigger check). Calls the SDK only."""

from __future__ import annotations

import json
import time
from typing import Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table

from consortium.cli.common import JSON_OPT, client, console, handled, show
from consortium.errors import ConsortiumError

monitoring = typer.Typer(help="Monitoring settings, drift, the prediction log, retraining checks.",
                         no_args_is_help=True)
DEPLOYMENT_ARG = typer.Argument(..., help="The deployment's name (or org~name).")


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}{unit}" if abs(v) < 1000 else f"{v:.0f}{unit}"
    return f"{v}{unit}"


def snapshot(c: Any, deployment: str, minutes: int) -> dict[str, Any]:
    """One reading of the figures the live table shows (drift is None for non-owners)."""
    m = c.monitoring.metrics(deployment, minutes=minutes)
    try:
        d: dict[str, Any] | None = c.monitoring.drift(deployment)
    except ConsortiumError:  # only the owner sees drift
        d = None
    q = c.monitoring.quality(deployment)
    return {"deployment": deployment, "minutes": minutes, "requests": m["requests"],
            "rate_per_s": m["requests_per_second"], "errors": m["errors"], "error_rate": m["error_rate"],
            "rejected": m["rejected"], "p50_ms": m["p50_ms"], "p95_ms": m["p95_ms"], "p99_ms": m["p99_ms"],
            "drift": d["status"] if d else None, "max_psi": d.get("max_psi") if d else None,
            "accuracy_metric": q["metric"], "live": q["live"], "test": q["test"], "labelled_rows": q["labelled_rows"],
            "orgs": m["orgs"]}


def render(s: dict[str, Any]) -> Group:
    """The reading as two tables: the deployment's figures, then one row per calling organization."""
    t = Table(title=f"{s['deployment']} - last {s['minutes']} min", show_header=False)
    t.add_column(style="bold")
    t.add_column(justify="right")
    drift = "-" if s["drift"] is None else f"{s['drift']} (max PSI {_fmt(s['max_psi'])})"
    for k, v in [("rate", _fmt(s["rate_per_s"], " /s")), ("requests", str(s["requests"])),
                 ("errors", f"{s['errors']} ({_fmt(s['error_rate'])})"), ("rejected", str(s["rejected"])),
                 ("p50", _fmt(s["p50_ms"], " ms")), ("p95", _fmt(s["p95_ms"], " ms")),
                 ("p99", _fmt(s["p99_ms"], " ms")), ("drift", drift),
                 (f"live {s['accuracy_metric']}", f"{_fmt(s['live'])} (test {_fmt(s['test'])}, "
                                                  f"{s['labelled_rows']} labelled)")]:
        t.add_row(k, v)
    orgs = Table(title="by calling organization")
    for col in ("org", "requests", "errors", "p50", "p95", "p99"):
        orgs.add_column(col, justify="left" if col == "org" else "right")
    for org, f in sorted(s["orgs"].items()):
        orgs.add_row(org, str(f["requests"]), str(f["errors"]), _fmt(f.get("p50_ms"), " ms"),
                     _fmt(f.get("p95_ms"), " ms"), _fmt(f.get("p99_ms"), " ms"))
    return Group(t, orgs)


def monitor(deployment: str = typer.Argument(..., help="deployment name"),
            minutes: int = typer.Option(15, help="window of the figures"),
            interval: float = typer.Option(2.0, help="seconds between refreshes"),
            once: bool = typer.Option(False, "--once", help="print one reading and exit (scripts, tests)"),
            as_json: bool = JSON_OPT) -> None:
    """A live table of request rate, latency, errors, drift and feedback accuracy (Ctrl-C to stop)."""
    with handled("deployment", deployment):
        c = client()
        if once or as_json:
            s = snapshot(c, deployment, minutes)
            if as_json:
                console.print_json(json.dumps(s, default=str))
            else:
                console.print(render(s))
            return
        with Live(render(snapshot(c, deployment, minutes)), console=console, refresh_per_second=4) as live:
            try:
                while True:
                    time.sleep(interval)
                    live.update(render(snapshot(c, deployment, minutes)))
            except KeyboardInterrupt:
                pass


def feedback(deployment: str = DEPLOYMENT_ARG,
             prediction_id: str = typer.Argument(..., help="The prediction_id the deployment answered."),
             labels: list[str] = typer.Argument(..., help="the true label (one per row of the prediction)"),
             as_json: bool = JSON_OPT) -> None:
    """Report the true label(s) of a prediction (numbers are sent as numbers)."""
    def parse(x: str) -> Any:
        try:
            return json.loads(x) if x.strip()[:1] in "-0123456789" else x
        except ValueError:
            return x

    values = [parse(x) for x in labels]
    with handled():
        c = client()
        out = c.monitoring.feedback(deployment, prediction_id, labels=values) if len(values) > 1 else \
            c.monitoring.feedback(deployment, prediction_id, label=values[0])
        show(out, as_json=as_json)


@monitoring.command("settings")
def settings_cmd(deployment: str = DEPLOYMENT_ARG, as_json: bool = JSON_OPT) -> None:
    """Show the monitoring settings and recent retraining runs (owner)."""
    with handled():
        show(client().monitoring.settings(deployment), as_json=as_json)


@monitoring.command("set")
def set_cmd(deployment: str = DEPLOYMENT_ARG,
            sample_rate: float = typer.Option(None, help="share of predictions logged, 0-1"),
            retention_days: int = typer.Option(None, help="days logged predictions are kept"),
            retrain: bool = typer.Option(None, "--retrain/--no-retrain", help="enable the retraining trigger"),
            min_accuracy: float = typer.Option(None, help="retrain below this live accuracy"),
            on_drift: bool = typer.Option(None, "--on-drift/--not-on-drift", help="retrain on a drift alert"),
            as_json: bool = JSON_OPT) -> None:
    """Change monitoring settings (only the options given)."""
    pol = {k: v for k, v in {"enabled": retrain, "min_accuracy": min_accuracy, "on_drift": on_drift}.items()
           if v is not None}
    with handled():
        show(client().monitoring.configure(deployment, sample_rate=sample_rate, retention_days=retention_days,
                                           retrain=pol or None), as_json=as_json)


@monitoring.command("drift")
def drift_cmd(deployment: str = DEPLOYMENT_ARG, as_json: bool = JSON_OPT) -> None:
    """PSI and KS per feature against the training reference (owner)."""
    with handled():
        d = client().monitoring.drift(deployment)
        if as_json:
            show(d, as_json=True)
            return
        show({k: v for k, v in d.items() if k != "features"}, title=f"drift of {deployment}")
        if d["features"]:
            show(d["features"], ["name", "status", "psi", "ks", "live_mean", "reference_mean"])


@monitoring.command("predictions")
def predictions_cmd(deployment: str = DEPLOYMENT_ARG, limit: int = typer.Option(20, help="At most this many."),
                    as_json: bool = JSON_OPT) -> None:
    """The newest logged predictions (owner; decrypted, audited)."""
    with handled():
        show(client().monitoring.predictions(deployment, limit=limit, payload=as_json),
             ["id", "created_at", "caller_org", "rows", "protocol"], as_json)


@monitoring.command("check")
def check_cmd(deployment: str = DEPLOYMENT_ARG, as_json: bool = JSON_OPT) -> None:
    """Evaluate the retraining trigger now."""
    with handled():
        show(client().monitoring.check(deployment), as_json=as_json)


def install(app: typer.Typer) -> None:
    """Add ``monitor``, ``feedback`` and ``monitoring`` to the main command."""
    app.command("monitor")(monitor)
    app.command("feedback")(feedback)
    app.add_typer(monitoring, name="monitoring")
