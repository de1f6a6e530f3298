"""CLI for the registry and deployments: ``consortium models ...``, ``consortium deploy``,
``consortium deployments ...``. Calls the SDK only."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from consortium.cli.common import JSON_OPT, client, console, handled, show

models = typer.Typer(help="Registered models: upload, versions, aliases, model cards.", no_args_is_help=True)
deployments = typer.Typer(help="Deployments: list, predict, usage, share, undeploy.", no_args_is_help=True)


@models.command("list")
def models_list(as_json: bool = JSON_OPT) -> None:
    """Models of your organization."""
    with handled():
        show(client().models.list(), ["name", "latest_version", "task", "aliases", "description"], as_json)


@models.command("show")
def models_show(model: str = typer.Argument(..., help="org/model or model"), as_json: bool = JSON_OPT) -> None:
    """The model card: description, intended use, metrics and lineage per version."""
    with handled():
        card = client().models.get(model)
        if as_json:
            show(card, as_json=True)
            return
        vs = card.pop("versions")
        show({k: v for k, v in card.items() if k != "deployments"}, title=card["name"])
        show([{"version": v["version"], "format": v["source_format"], "metrics": v["metrics"],
               "lineage": {k: x for k, x in v["lineage"].items() if x and k != "recipe"}} for v in vs])


@models.command("versions")
def models_versions(model: str, as_json: bool = JSON_OPT) -> None:
    with handled():
        show(client().models.versions(model), ["version", "source_format", "task", "metrics", "created_at"], as_json)


@models.command("upload")
def models_upload(file: Path = typer.Argument(..., exists=True, dir_okay=False, help=".onnx or .keras file"),
                  name: str = typer.Option(..., "--name", help="model name (a new version is added)"),
                  description: str = typer.Option("", help="What the model does."),
                  task: str = typer.Option(None, help="classification or regression"),
                  class_names: str = typer.Option(None, help="comma-separated class names"),
                  project: str = typer.Option(None, help="place the model in this project"),
                  as_json: bool = JSON_OPT) -> None:
    """Upload an ONNX or Keras 3 model (pickles are refused)."""
    with handled():
        with console.status(f"uploading {file.name} ({file.stat().st_size} bytes)"):
            v = client().models.upload(file, name=name, description=description, task=task,
                                       class_names=class_names.split(",") if class_names else None,
                                       project=project)
        show({k: v[k] for k in ("model", "version", "source_format", "onnx_sha256", "signature")}
             if not as_json else v, as_json=as_json)


@models.command("explain")
def models_explain(model: str, inputs: str = typer.Argument(..., help='one input as JSON, e.g. "[1.2, 3.4]"'),
                   version: str = typer.Option("latest", help="version number or alias"),
                   target: str = typer.Option(None, help="class to explain (default: the predicted one)"),
                   png: Path = typer.Option(None, help="image models: write the heat map here")) -> None:
    """Explain one prediction with Integrated Gradients (per-feature scores, or a heat map)."""
    import base64

    with handled():
        out = client().models.explain(model, json.loads(inputs), version, target)
    if out.get("features"):
        rows = sorted(out["features"], key=lambda f: -abs(f.get("score", 0)))[:20]
        show(rows, title=f"attributions for class {out.get('target')}")
    if out.get("heatmap_png"):
        dest = png or Path("explanation.png")
        dest.write_bytes(base64.b64decode(out["heatmap_png"]))
        console.print(f"heat map written to {dest}")


@models.command("plot")
def models_plot(model: str, name: str = typer.Argument(..., help="loss_curve, confusion_matrix, roc, ..."),
                version: str = typer.Option("latest"), out: Path = typer.Option(None, "-o", help="output PNG")) -> None:
    """Save a plot recorded with a version (loss curve, confusion matrix, ROC) as PNG."""
    with handled():
        data = client().models.plot(model, name, version)
    dest = out or Path(f"{model.replace('/', '_')}-{name}.png")
    dest.write_bytes(data)
    console.print(f"wrote {dest}")


@models.command("alias")
def models_alias(model: str, alias: str, version: str = typer.Argument(..., help="version number")) -> None:
    """Point an alias (e.g. production) at a version; deployments following it switch."""
    with handled():
        show(client().models.set_alias(model, alias, int(version) if version.isdigit() else version))


def deploy(model: str = typer.Argument(..., help="MODEL[:VERSION|@ALIAS], e.g. digits@production"),
           name: str = typer.Option(..., "--name", help="deployment name (unique on the hub)"),
           description: str = typer.Option(""), as_json: bool = JSON_OPT) -> None:
    """Serve a model version (or whatever an alias points at) under a name."""
    with handled():
        d = client().deployments.create(name, model, description)
        show(d if as_json else {k: d[k] for k in ("name", "model", "version", "alias", "endpoints")},
             as_json=as_json)


@deployments.command("list")
def deployments_list(as_json: bool = JSON_OPT) -> None:
    with handled():
        show(client().deployments.list(), ["name", "org", "model", "version", "alias", "limits"], as_json)


@deployments.command("show")
def deployments_show(name: str, as_json: bool = JSON_OPT) -> None:
    with handled():
        show(client().deployments.get(name), as_json=as_json)


@deployments.command("delete")
def deployments_delete(name: str) -> None:
    """Undeploy (grants on it are revoked)."""
    with handled():
        show(client().deployments.delete(name))


@deployments.command("predict")
def deployments_predict(name: str,
                        inputs: str = typer.Argument(..., help='JSON rows, e.g. "[[1, 2, 3]]", or @file.json'),
                        as_json: bool = JSON_OPT) -> None:
    """Send raw rows (or pixels) and print predictions."""
    text = Path(inputs[1:]).read_text() if inputs.startswith("@") else inputs
    with handled():
        out = client().deployments.predict(name, json.loads(text))
        show(out if as_json else {"predictions": out["predictions"], "version": out["version"]}, as_json=as_json)


@deployments.command("share")
def deployments_share(name: str, org: str, per_minute: int = typer.Option(None),
                      per_day: int = typer.Option(None)) -> None:
    """Let another organization invoke a deployment, with an optional quota."""
    with handled():
        show(client().deployments.share(name, org, per_minute=per_minute, per_day=per_day))


@deployments.command("usage")
def deployments_usage(name: str, minutes: int = typer.Option(60), as_json: bool = JSON_OPT) -> None:
    with handled():
        u = client().deployments.usage(name, minutes)
        show(u if as_json else [{"org": k, **v} for k, v in u["totals"].items()], as_json=as_json)


def install(app: typer.Typer) -> None:
    """Add ``models``, ``deploy`` and ``deployments`` to the main command."""
    app.add_typer(models, name="models")
    app.command("deploy")(deploy)
    app.add_typer(deployments, name="deployments")
