"""CLI commands for data protection: ``records`` (the processing record), ``audit export`` and
``audit verify-export`` (the sealed audit export, checked offline), ``withdrawals`` and
``retention``. Wired by ``install`` in ``consortium.cli.main``."""

from __future__ import annotations

from pathlib import Path

import typer

from consortium.cli.common import JSON_OPT, client, console, handled, show

records = typer.Typer(help="Records of processing (GDPR Art. 30 style).", no_args_is_help=True)
withdrawals = typer.Typer(help="Withdraw dataset versions, through lineage.", no_args_is_help=True)
retention = typer.Typer(help="Retention periods and purges.", no_args_is_help=True)


@records.command("processing")
def processing(fmt: str = typer.Option("json", "--format", help="json or csv"),
               out: Path = typer.Option(None, "--out", "-o", help="Write it to this file."),
               partners_only: bool = typer.Option(False, help="Leave out your own jobs."),
               as_json: bool = JSON_OPT) -> None:
    """Who used which of your datasets, when, in which job and project, for which purpose, with
    which privacy settings."""
    import json

    with handled():
        r = client().records.processing_record(format=fmt, partners_only=partners_only)
    if out is not None:
        out.write_text(r if isinstance(r, str) else json.dumps(r, indent=1, default=str))
        console.print(f"saved the processing record to {out}")
    elif isinstance(r, str):
        console.print(r, end="", markup=False, highlight=False)
    else:
        show(r["items"], ["activity", "partner", "dataset", "dataset_version", "job_id", "project", "purpose",
                          "differential_privacy", "epsilon_target", "secure_aggregation", "submitted_at"], as_json)


def audit_export(fmt: str = typer.Option("jsonl", "--format", help="jsonl or syslog (RFC 5424)"),
                 out: Path = typer.Option(..., "--out", "-o", help="The file to write.")) -> None:
    """Export your organization's audit events, sealed by the hub (streamed; any length)."""
    with handled():
        client().records.export_audit(out, fmt)
    console.print(f"saved the audit export to {out}; check it offline with "
                  f"`consortium audit verify-export {out} --key PUBKEY`")


def audit_verify_export(path: Path = typer.Argument(..., help="An export saved by `audit export`."),
                        key: str = typer.Option(..., "--key", help="The hub's public key you kept (base64, "
                                                "or a file from `audit public-key --json`)."),
                        as_json: bool = JSON_OPT) -> None:
    """Offline, without the hub: check that the export is exactly what the hub sealed."""
    from consortium.sdk.protection import Records

    with handled():
        r = Records.verify_export(path, key)
    if as_json:
        show(r, as_json=True)
        return
    console.print(f"[green]export intact[/green]: {r['events']} events of {r['organization']} "
                  f"(seq {r['first_seq']}..{r['last_seq']}), sealed by audit key {r['key_id']}; its checkpoint "
                  f"(event {r['checkpoint']['seq']}) works with `consortium audit verify --checkpoint`")


@withdrawals.command("create")
def withdraw(dataset: str = typer.Argument(..., help="org/name of your dataset"),
             version: int = typer.Argument(..., help="the version number"),
             mode: str = typer.Option("stop", help="stop: deployments of derived models stop; warn: they serve on "
                                      "with a warning to their owner"),
             reason: str = typer.Option("", help="why (kept in the record and the audit log)"),
             keep_grants: bool = typer.Option(False, help="keep the dataset's grants for its other versions"),
             as_json: bool = JSON_OPT) -> None:
    """Withdraw a dataset version: grants end, derived models are marked, blobs are deleted."""
    with handled():
        r = client().withdrawals.withdraw(dataset, version, mode=mode, reason=reason, end_grants=not keep_grants)
    if as_json:
        show(r, as_json=True)
        return
    console.print(f"withdrew {r['dataset']} version {r['version']} ({r['id']}): {len(r['grants_ended'])} grant(s) "
                  f"ended, {len(r['models'])} derived model version(s) marked, {len(r['deployments'])} "
                  f"deployment(s) {'stopped' if r['mode'] == 'stop' else 'warned'}")


@withdrawals.command("list")
def withdrawals_list(as_json: bool = JSON_OPT) -> None:
    """Withdrawals your organization made, and those that marked its models."""
    with handled():
        show(client().withdrawals.list(), ["id", "dataset", "version", "mode", "created_at", "reason"], as_json)


@withdrawals.command("retrain")
def retrain(model: str = typer.Argument(..., help="org/model"),
            version: int = typer.Argument(..., help="the marked version number"), as_json: bool = JSON_OPT) -> None:
    """Run a marked model version's recipe again without the withdrawn data."""
    with handled():
        job = client().withdrawals.retrain_without(model, version)
    if as_json:
        show(job, as_json=True)
    else:
        console.print(f"submitted job {job['id']} ({job['name']})")


@retention.command("dataset")
def retention_dataset(dataset: str = typer.Argument(..., help="org/name of your dataset"),
                      days: int = typer.Option(None, help="days each version is kept (omit: forever)"),
                      as_json: bool = JSON_OPT) -> None:
    """Set how long each version of your dataset is kept after its upload."""
    with handled():
        show(client().retention.set_dataset(dataset, days), as_json=as_json)


@retention.command("job-logs")
def retention_job_logs(days: int = typer.Option(None, help="days after a job ends (omit: forever)"),
                       as_json: bool = JSON_OPT) -> None:
    """Set how long your organization's job logs are kept after each job ends."""
    with handled():
        show(client().retention.set_job_logs(days), as_json=as_json)


@retention.command("list")
def retention_list(as_json: bool = JSON_OPT) -> None:
    """Your organization's retention periods."""
    with handled():
        show(client().retention.list(), ["kind", "target", "days"], as_json)


def install(app: typer.Typer, audit: typer.Typer) -> None:
    """Add these commands to ``app``, and the export commands to its ``audit`` group."""
    app.add_typer(records, name="records")
    app.add_typer(withdrawals, name="withdrawals")
    app.add_typer(retention, name="retention")
    audit.command("export")(audit_export)
    audit.command("verify-export")(audit_verify_export)
