"""CLI commands for data owners' control (issue 19): ``datasets policy show|set|clear`` (a dataset's
rules) and ``consents list|ask|approve|refuse`` (consent for models trained on others' data).
Wired by ``install`` in ``consortium.cli.main``; every command calls the SDK."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from consortium.cli.common import JSON_OPT, LIMIT_OPT, client, console, handled, show

policy = typer.Typer(help="A dataset's policy: the rules every job using it must meet.", no_args_is_help=True)
consents = typer.Typer(help="Consent requests for models trained on other organizations' data.",
                       no_args_is_help=True)
REF = typer.Argument(..., help="ORG/NAME, or NAME in your organization.")
CONSENT_ID = typer.Argument(..., help="The request's id (cns_...).")


def _show_policy(p: dict[str, Any], as_json: bool) -> None:
    if as_json:
        show(p, as_json=True)
        return
    set_rules = {k: p["rules"][k] for k in p["set"]}
    show({"dataset": p["dataset"], **(set_rules or {"rules": "(none set: grants and budgets only)"}),
          "set_by": p.get("set_by") or "", "updated_at": p.get("updated_at") or ""})


def _csv(v: str | None) -> list[str] | None:
    return None if v is None else [x.strip() for x in v.split(",") if x.strip()]


@policy.command("show")
def show_policy(ref: str = REF, as_json: bool = JSON_OPT) -> None:
    """The dataset's rules."""
    with handled("dataset", ref):
        _show_policy(client().policies.get(ref), as_json)


@policy.command("set")
def set_policy(
    ref: str = REF,
    from_file: Path = typer.Option(None, "--from", help="A JSON file with the whole rule set (replaces it)."),
    organizations: str = typer.Option(None, help="Comma-separated organizations that may use it."),
    projects: str = typer.Option(None, help="Comma-separated projects (org/name) jobs must run in."),
    purposes: str = typer.Option(None, help="Comma-separated purposes the job's project must state."),
    dp_max_epsilon: float = typer.Option(None, help="Federated jobs must use DP with at most this epsilon."),
    max_rounds: int = typer.Option(None, help="Most federated rounds."),
    max_epochs: int = typer.Option(None, help="Most epochs (per round for federated jobs)."),
    model_types: str = typer.Option(None, help="Comma-separated: mlp, cnn, logistic."),
    max_parameters: int = typer.Option(None, help="Largest model, in parameters."),
    min_rows: int = typer.Option(None, help="Fewest rows an update is computed from."),
    manual_approval: bool = typer.Option(None, "--manual-approval/--auto-approval",
                                         help="Every federated job waits for your admin's approval."),
    model_download: bool = typer.Option(None, "--model-download/--no-model-download",
                                        help="Owners of models trained on it may download their ONNX file."),
    as_json: bool = JSON_OPT,
) -> None:
    """Set rules: the options given change those rules and keep the others; --from replaces them all."""
    given = {"organizations": _csv(organizations), "projects": _csv(projects), "purposes": _csv(purposes),
             "dp_max_epsilon": dp_max_epsilon, "max_rounds": max_rounds, "max_epochs": max_epochs,
             "model_types": _csv(model_types), "max_parameters": max_parameters, "min_rows": min_rows,
             "manual_approval": manual_approval, "model_download": model_download}
    with handled("dataset", ref):
        c = client()
        if from_file is not None:
            rules = json.loads(from_file.read_text())
        else:
            rules = {k: v for k, v in c.policies.get(ref)["rules"].items() if v not in (None, False)}
        rules.update({k: v for k, v in given.items() if v is not None})
        _show_policy(c.policies.set(ref, rules), as_json)


@policy.command("clear")
def clear_policy(ref: str = REF, as_json: bool = JSON_OPT) -> None:
    """Remove every rule of the dataset."""
    with handled("dataset", ref):
        p = client().policies.clear(ref)
    if as_json:
        show(p, as_json=True)
    else:
        console.print(f"removed the policy of {p['dataset']}")


COLUMNS = ["id", "model", "contributor", "organization", "action", "state", "created_at"]


@consents.command("list")
def list_consents(direction: str = typer.Option("all", help="all, received or sent."),
                  limit: int | None = LIMIT_OPT, as_json: bool = JSON_OPT) -> None:
    """Requests your organization received (as a contributor) or sent."""
    with handled():
        show(client().consents.list(direction, limit=limit), COLUMNS, as_json)


@consents.command("ask")
def ask(model: str = typer.Argument(..., help="Your model: NAME or ORG/NAME."),
        organization: str = typer.Argument(..., help="The organization it would go to (download: your own)."),
        action: str = typer.Option("deploy", help="share, deploy or download."),
        note: str = typer.Option("", help="A note for the contributors."), as_json: bool = JSON_OPT) -> None:
    """Ask each contributor whose consent the action needs."""
    with handled("model", model):
        show(client().consents.ask(model, organization, action, note), COLUMNS, as_json)


@consents.command("approve")
def approve(consent_id: str = CONSENT_ID, as_json: bool = JSON_OPT) -> None:
    """Agree, as the contributing organization."""
    with handled():
        show(client().consents.approve(consent_id), as_json=as_json)


@consents.command("refuse")
def refuse(consent_id: str = CONSENT_ID, as_json: bool = JSON_OPT) -> None:
    """Refuse, as the contributing organization."""
    with handled():
        show(client().consents.refuse(consent_id), as_json=as_json)


def install(app: typer.Typer, datasets: typer.Typer) -> None:
    """``datasets policy ...`` and ``consents ...``."""
    datasets.add_typer(policy, name="policy")
    app.add_typer(consents, name="consents")
