"""``consortium datasets ...``: list, show, upload (with a progress bar), preview, download, delete,
import samples.

Every command goes through the SDK (``client().datasets``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from consortium.cli.common import JSON_OPT, LIMIT_OPT, client, console, handled, show

app = typer.Typer(help="Datasets: upload, inspect, preview, download and share (with `grants`).",
                  no_args_is_help=True)


@app.command("list")
def list_(scope: str = typer.Option("all", help="own, shared or all."), limit: int | None = LIMIT_OPT,
          as_json: bool = JSON_OPT) -> None:
    """Your organization's datasets and the ones shared with it."""
    with handled():
        show(client().datasets.list(scope, limit=limit), ["full_name", "latest_version", "versions", "access",
                                             "description"], as_json)


@app.command("show")
def show_(ref: str = typer.Argument(..., help="ORG/NAME, or NAME in your organization."),
          as_json: bool = JSON_OPT) -> None:
    """A dataset and its versions."""
    with handled("dataset", ref):
        d = client().datasets.get(ref)
        if as_json:
            show(d, as_json=True)
            return
        versions = d.pop("version_list", [])
        show(d)
        show([{k: v[k] for k in ("version", "format", "rows", "target", "size_bytes", "checksum",
                                  "created_at")} for v in versions], title="versions")


@app.command("upload")
def upload(file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV, Parquet, NPZ or zip."),
           name: str = typer.Option(..., "--name", "-n", help="Dataset name in your organization."),
           target: str = typer.Option(None, "--target", "-t", help="Target column (tabular data)."),
           format: str = typer.Option(None, help="csv, parquet, npz or image_zip (default: guessed)."),
           description: str = typer.Option("", help="What the data is."),
           as_json: bool = JSON_OPT) -> None:
    """Upload FILE as the next version of dataset NAME (created on first upload)."""
    with handled():
        c = client()
        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                      TransferSpeedColumn(), console=console, transient=True) as bar:
            task = bar.add_task(f"uploading {file.name}", total=file.stat().st_size)
            v = c.datasets.upload(file, name, target=target, format=format, description=description,
                                  progress=lambda sent, total: bar.update(task, completed=sent))
        if as_json:
            show(v, as_json=True)
            return
        verb = "stored" if v["created"] else "unchanged (same as)"
        console.print(f"{verb} [bold]{v['dataset']}[/bold] version {v['version']}: {v['rows']} rows, "
                      f"{v['format']}, {v['checksum']}")
        _stats(v["schema"])


def _stats(schema: dict[str, Any]) -> None:
    if schema.get("kind") == "image":
        console.print(f"images {schema['image_shape']} (C, H, W), {schema['channels']} channel(s)")
    else:
        show([{k: col.get(k) for k in ("name", "type", "missing", "min", "max", "mean")}
              for col in schema.get("columns", [])], title="columns")
    if schema.get("classes"):
        names = schema.get("class_names") or []
        show([{"class": names[int(k)] if names and k.isdigit() and int(k) < len(names) else k, "rows": n}
              for k, n in schema["classes"].items()], title="class balance")


@app.command("preview")
def preview(ref: str = typer.Argument(..., help="ORG/NAME, or NAME in your organization."),
            version: str = typer.Option("latest", help="Version number or 'latest'."),
            rows: int = typer.Option(10, help="How many rows to show (owner/download grant only)."),
            as_json: bool = JSON_OPT) -> None:
    """Statistics of a version, and its first rows if you may read rows."""
    with handled("dataset", ref):
        p = client().datasets.preview(ref, version, rows)
    if as_json:
        show(p, as_json=True)
        return
    console.print(f"[bold]{p['dataset']}[/bold] version {p['version']}: {p['rows']} rows, {p['format']}")
    _stats(p["schema"])
    if p.get("rows_preview") is None:
        console.print(f"[dim]rows hidden: {p.get('rows_hidden')}[/dim]")
    elif p["kind"] == "image":
        show([{"label": r["label"]} for r in p["rows_preview"]], title="first rows")
    else:
        show(p["rows_preview"], title="first rows")


@app.command("download")
def download(ref: str = typer.Argument(..., help="ORG/NAME, or NAME in your organization."),
             output: Path = typer.Option(Path("."), "--output", "-o", help="File or directory."),
             version: str = typer.Option("latest", help="Version number or 'latest'.")) -> None:
    """Download a version's file (owner or `download` grant); its checksum is verified."""
    with handled("dataset", ref):
        out = client().datasets.download(ref, output, version)
    console.print(f"saved {out}")


@app.command("delete")
def delete(ref: str = typer.Argument(..., help="ORG/NAME, or NAME in your organization."),
           version: int = typer.Option(None, "--version", "-v", help="Delete only this version."),
           yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
           as_json: bool = JSON_OPT) -> None:
    """Delete a dataset (every version, and every grant on it) or one version; admins only."""
    what = f"version {version} of dataset {ref}" if version is not None else f"dataset {ref}, every version"
    if not yes and not typer.confirm(f"Delete {what}? Its files are removed for good", default=False):
        console.print("nothing deleted")
        raise typer.Exit(1)
    with handled():
        out = client().datasets.delete(ref, version)
    if as_json:
        show(out, as_json=True)
        return
    versions = ", ".join(str(v) for v in out["versions"]) or "none"
    console.print(f"deleted {out['dataset']}" + (f" version {versions}" if version is not None else
                                                 f" (versions: {versions})")
                  + (f"; revoked {len(out['revoked_grants'])} grant(s)" if out.get("revoked_grants") else ""))


@app.command("samples")
def samples(as_json: bool = JSON_OPT) -> None:
    """The bundled sample datasets."""
    with handled():
        show(client().datasets.samples(), ["name", "description"], as_json)


@app.command("import-sample")
def import_sample(sample: str = typer.Argument(..., help="digits, breast_cancer, iris, wine or diabetes."),
                  name: str = typer.Option(None, help="Dataset name (default: the sample's)."),
                  partitions: int = typer.Option(1, help="Split the rows into N partitions."),
                  part: int = typer.Option(None, help="Which partition (1..N) goes to your organization."),
                  skew: str = typer.Option("iid", help="iid, or label (skewed class mix per partition)."),
                  seed: int = typer.Option(0, help="Seed of the split."),
                  to_orgs: str = typer.Option(None, help="a,b,c: one partition per organization "
                                                         "(hub operators)."),
                  as_json: bool = JSON_OPT) -> None:
    """Import a scikit-learn bundled dataset, whole or as partitions across organizations."""
    orgs = [o.strip() for o in to_orgs.split(",") if o.strip()] if to_orgs else None
    with handled():
        out = client().datasets.import_sample(sample, name, partitions=partitions, part=part, skew=skew,
                                              seed=seed, to_orgs=orgs)
    show(out, ["dataset", "version", "rows", "part", "partitions", "created"], as_json)
