"""CLI: ``consortium node`` (run a site's node agent) and ``consortium nodes`` (list, approve or
reject federated jobs, save local data, privacy budgets)."""

from __future__ import annotations

import socket
from typing import Any

import typer

from consortium.cli.common import JSON_OPT, client, console, err_console, handled, show

nodes = typer.Typer(help="Federation nodes, job approvals and privacy budgets.", no_args_is_help=True)


def node(hub: str = typer.Option(..., "--hub", envvar="CONSORTIUM_URL", help="The hub's URL."),
         token: str = typer.Option(..., "--token", envvar="CONSORTIUM_TOKEN",
                                   help="An admin API token of your organization."),
         data_dir: str = typer.Option(..., "--data-dir", help="Local datasets (saved with `nodes add-data`)."),
         approve: str = typer.Option("auto", "--approve", help="auto: accept federated jobs; "
                                     "manual: each job waits for `consortium nodes approve`."),
         name: str = typer.Option(None, "--name", help="Node name inside your organization (default: host)."),
         interval: float = typer.Option(15.0, help="Seconds between heartbeats."),
         publish: bool = typer.Option(False, "--publish", help="List each local dataset in the hub's catalog "
                                      "as a node dataset (schema and statistics; its rows stay here)."),
         ca_cert: str = typer.Option(None, "--ca-cert", envvar="CONSORTIUM_CA_CERT",
                                     help="Trust only this CA (PEM) for the hub's HTTPS certificate."),
         warm: bool = typer.Option(True, "--warm/--cold", help="Keep a warm training process (about 460 MB) "
                                   "so a job's first message is answered within a second; --cold starts one "
                                   "per job (a few seconds of CPU) and holds nothing between jobs."),
         parent_pid: int = typer.Option(None, "--parent-pid", hidden=True,
                                        help="Stop when this process is gone (set by `consortium up`).")) -> None:
    """Run this site's node: register with the hub, advertise local datasets (schema and
    statistics, never rows), heartbeat. Connects outbound only; stop with Ctrl-C or SIGTERM
    (the node's running SuperNodes are stopped with it)."""
    import signal
    from pathlib import Path

    from consortium.federation.node.agent import NodeAgent
    from consortium.sdk.client import Client
    from consortium.store.home import make_private

    make_private(Path(data_dir))  # the site's data and keys: files 0600, directories 0700

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    node_name = (name or socket.gethostname()).lower()
    with handled():
        agent = NodeAgent(Client(hub, token, ca_cert=ca_cert), node_name, data_dir, approve=approve,
                          interval=interval, parent_pid=parent_pid, publish=publish, warm=warm)

        shown: list[str] = []

        def report(n: dict[str, Any]) -> None:
            if "error" in n:
                what = "heartbeat" if shown else "registration"
                err_console.print(f"[yellow]{what} failed[/yellow] ({n['failures']}): {n['error']}")
                return
            if not shown:
                console.print(f"node [bold]{n['org']}/{n['name']}[/bold] registered ({n['approve']} approval), "
                              f"advertising {len(n['datasets'])} dataset(s)")
                shown.append(n["id"])
            if n.get("pending"):
                console.print(f"jobs waiting for your approval: {', '.join(n['pending'])} "
                              f"(consortium nodes approve {n['name']} JOB)")
        try:
            agent.run(on_beat=report)
        except KeyboardInterrupt:
            agent.stop.set()
            console.print("node stopped")


@nodes.command("list")
def list_(as_json: bool = JSON_OPT) -> None:
    """Your organization's nodes, whether they are online and which jobs wait for approval."""
    with handled():
        show(client().nodes.list(), ["id", "name", "approve", "online", "last_seen", "pending"], as_json)


@nodes.command("approve")
def approve(node: str = typer.Argument(..., help="The node's name (`nodes list`)."),
            job_id: str = typer.Argument(..., help="The federated job's id.")) -> None:
    """Let a federated job use your organization's data."""
    with handled():
        r = client().nodes.approve(node, job_id)
    console.print(f"{r['org']} approved job {r['job_id']}")


@nodes.command("reject")
def reject(node: str = typer.Argument(..., help="The node's name (`nodes list`)."),
           job_id: str = typer.Argument(..., help="The federated job's id.")) -> None:
    """Refuse a federated job the use of your organization's data."""
    with handled():
        r = client().nodes.reject(node, job_id)
    console.print(f"{r['org']} rejected job {r['job_id']}")


@nodes.command("add-data")
def add_data(data_dir: str = typer.Argument(..., help="The node's data directory (as for `consortium node`)."),
             name: str = typer.Argument(..., help="The dataset's name on this node."),
             file: str = typer.Argument(..., help="A CSV, Parquet or NPZ file."),
             target: str = typer.Option(None, help="Target column (tabular data)."),
             policy: str = typer.Option(None, "--policy", help="A JSON file of policy rules (as for `datasets "
                                        "policy set`) the site itself enforces, whatever the hub sends.")) -> None:
    """Save a local CSV/Parquet/NPZ file into a node data directory (it stays on this machine)."""
    from pathlib import Path

    from consortium.data.frame import DataFrameSet
    from consortium.federation.app.datasets import save_dataset
    from consortium.store.home import make_private

    with handled():
        make_private(Path(data_dir))
        path = Path(file)
        if path.suffix == ".npz":
            import numpy as np

            with np.load(path) as z:
                data = DataFrameSet.from_images(z["images"], z["labels"])
        else:
            import pandas as pd

            frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
            data = DataFrameSet.from_frame(frame, target=target)
        out = save_dataset(data_dir, name, data)
        kept = _save_site_policy(data_dir, name, policy) if policy else None
    console.print(f"saved {data.n_rows} rows as {out}")
    if kept:
        console.print(f"the site's own policy: {kept}")


def _save_site_policy(data_dir: str, name: str, file: str) -> str:
    import json
    from pathlib import Path

    from consortium.errors import InvalidInput
    from consortium.federation.node import local_policy

    try:
        raw = json.loads(Path(file).read_text())
    except (OSError, ValueError) as e:
        raise InvalidInput(f"cannot read the policy file {file}: {e}", hint="give a JSON object of rules") from e
    if not isinstance(raw, dict):
        raise InvalidInput(f"the policy file {file} must hold a JSON object of rules")
    local_policy.save(data_dir, name, raw)
    return json.dumps(local_policy.load(data_dir, name).set_rules())  # type: ignore[union-attr]


@nodes.command("policy")
def site_policy(data_dir: str = typer.Argument(..., help="The node's data directory."),
                name: str = typer.Argument(..., help="The dataset's name on this node."),
                file: str = typer.Option(None, "--file", help="Replace the site's rules with this JSON file."),
                clear: bool = typer.Option(False, "--clear", help="Remove the site's own rules."),
                as_json: bool = JSON_OPT) -> None:
    """Show, set or clear the rules this site enforces on a local dataset itself, on top of (and
    never weakened by) the policy the hub sends. Kept in DATA_DIR/.node/local-policies/."""
    from consortium.federation.node import local_policy

    with handled():
        if file:
            _save_site_policy(data_dir, name, file)
        elif clear:
            local_policy.clear(data_dir, name)
        rules = local_policy.load(data_dir, name)
    show({"dataset": name, "rules": rules.set_rules() if rules else {},
          "file": str(local_policy.path(data_dir, name))}, as_json=as_json)


@nodes.command("budget")
def budget(dataset: str = typer.Argument(..., help="org/name of the dataset."),
           epsilon: float = typer.Option(None, help="Set the budget (owner admins)."),
           delta: float = typer.Option(1e-5, help="The delta of (epsilon, delta)-DP."),
           as_json: bool = JSON_OPT) -> None:
    """Show (or set with --epsilon) a dataset's privacy budget and what jobs spent."""
    with handled():
        c = client()
        b = c.nodes.set_budget(dataset, epsilon, delta) if epsilon is not None else c.nodes.budget(dataset)
    show(b, as_json=as_json)
