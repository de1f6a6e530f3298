"""CLI for the registry and deployments: ``consortium models ...``, ``consortium deploy``,
``consortium deployments ...``. Calls the SDK only."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from consortium.cli.common import JSON_OPT, client, console, handled, json_arg, show

models = typer.Typer(help="Registered models: upload, versions, aliases, model cards.", no_args_is_help=True)
deployments = typer.Typer(help="Deployments: list, predict, usage, share, undeploy.", no_args_is_help=True)
MODEL_ARG = typer.Argument(..., help="org/model, or model in your organization")
DEPLOYMENT_ARG = typer.Argument(..., help="The deployment's name (or org~name).")


@models.command("list")
def models_list(as_json: bool = JSON_OPT) -> None:
    """Models of your organization."""
    with handled():
        show(client().models.list(), ["name", "latest_version", "task", "aliases", "description"], as_json)


@models.command("show")
def models_show(model: str = typer.Argument(..., help="org/model or model"), as_json: bool = JSON_OPT) -> None:
    """The model card: description, intended use, metrics and lineage per version."""
    with handled("model", model):
        card = client().models.get(model)
        if as_json:
            show(card, as_json=True)
            return
        vs = card.pop("versions")
        show({k: v for k, v in card.items() if k != "deployments"}, title=card["name"])
        show([{"version": v["version"], "format": v["source_format"], "metrics": v["metrics"],
               "lineage": {k: x for k, x in v["lineage"].items() if x and k != "recipe"}} for v in vs])


@models.command("versions")
def models_versions(model: str = MODEL_ARG, as_json: bool = JSON_OPT) -> None:
    """A model's versions with their format, task and test metrics, oldest first."""
    with handled("model", model):
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
def models_explain(model: str = MODEL_ARG,
                   inputs: str = typer.Argument(..., help='one input as JSON, e.g. "[1.2, 3.4]"'),
                   version: str = typer.Option("latest", help="version number or alias"),
                   target: str = typer.Option(None, help="class to explain (default: the predicted one)"),
                   png: Path = typer.Option(None, help="image models: write the heat map here")) -> None:
    """Explain one prediction with Integrated Gradients (per-feature scores, or a heat map)."""
    import base64

    with handled("model", model):
        out = client().models.explain(model, json_arg(inputs, "the input", "[1.2, 3.4]"), version, target)
    if out.get("features"):
        rows = sorted(out["features"], key=lambda f: -abs(f.get("score", 0)))[:20]
        show(rows, title=f"attributions for class {out.get('target')}")
    if out.get("heatmap_png"):
        dest = png or Path("explanation.png")
        dest.write_bytes(base64.b64decode(out["heatmap_png"]))
        console.print(f"heat map written to {dest}")


@models.command("plot")
def models_plot(model: str = MODEL_ARG,
                name: str = typer.Argument(..., help="loss_curve, confusion_matrix, roc, ..."),
                version: str = typer.Option("latest", help="Version number or alias."),
                out: Path = typer.Option(None, "-o", help="output PNG")) -> None:
    """Save a plot recorded with a version (loss curve, confusion matrix, ROC) as PNG."""
    with handled("model", model):
        data = client().models.plot(model, name, version)
    dest = out or Path(f"{model.replace('/', '_')}-{name}.png")
    dest.write_bytes(data)
    console.print(f"wrote {dest}")


@models.command("alias")
def models_alias(model: str = MODEL_ARG, alias: str = typer.Argument(..., help="e.g. production"),
                 version: str = typer.Argument(..., help="version number"), as_json: bool = JSON_OPT) -> None:
    """Point an alias (e.g. production) at a version; deployments following it switch."""
    with handled("model", model):
        show(client().models.set_alias(model, alias, int(version) if version.isdigit() else version),
             as_json=as_json)


def deploy(model: str = typer.Argument(..., help="MODEL[:VERSION|@ALIAS], e.g. digits@production"),
           name: str = typer.Option(..., "--name", help="deployment name (unique on the hub)"),
           description: str = typer.Option("", help="What the deployment is for."),
           as_json: bool = JSON_OPT) -> None:
    """Serve a model version (or whatever an alias points at) under a name."""
    with handled("model", model.split("@")[0].split(":")[0]):
        d = client().deployments.create(name, model, description)
        show(d if as_json else {**{k: d[k] for k in ("name", "model", "version", "alias")},
                                "predict": d["endpoints"]["predict"],
                                "open inference": d["endpoints"]["open_inference"]}, as_json=as_json)


@deployments.command("list")
def deployments_list(as_json: bool = JSON_OPT) -> None:
    """Deployments of your organization and those shared with it (with your quota on them)."""
    with handled():
        show(client().deployments.list(), ["name", "org", "model", "version", "alias", "limits"], as_json)


@deployments.command("show")
def deployments_show(name: str = DEPLOYMENT_ARG, as_json: bool = JSON_OPT) -> None:
    """A deployment: the model and version it serves, its inputs, endpoints and your quota."""
    with handled("deployment", name):
        d = client().deployments.get(name)
    if as_json:
        show(d, as_json=True)
        return
    ends = d.pop("endpoints", None) or {}
    sig = d.pop("signature", None) or {}
    show({**d, **{f"endpoint {k}": v for k, v in ends.items()},
          **{f"signature {k}": v for k, v in sig.items()}}, title=d.get("name"))


@deployments.command("delete")
def deployments_delete(name: str = DEPLOYMENT_ARG, as_json: bool = JSON_OPT) -> None:
    """Undeploy (grants on it are revoked)."""
    with handled("deployment", name):
        show(client().deployments.delete(name), as_json=as_json)


@deployments.command("predict")
def deployments_predict(name: str = DEPLOYMENT_ARG,
                        inputs: str = typer.Argument(..., help='JSON rows, e.g. "[[1, 2, 3]]", or @file.json'),
                        as_json: bool = JSON_OPT) -> None:
    """Send raw rows (or pixels) and print predictions."""
    with handled("deployment", name):
        rows = json_arg(inputs, "inputs", "[[1.0, 2.0, 3.0]]")
        out = client().deployments.predict(name, rows)
        # the predictions as a JSON list, as the README's tour shows them: ["0", "7"]
        show(out if as_json else {"predictions": json.dumps(out["predictions"]), "version": out["version"]},
             as_json=as_json)


@deployments.command("share")
def deployments_share(name: str = DEPLOYMENT_ARG, org: str = typer.Argument(..., help="The grantee organization."),
                      per_minute: int = typer.Option(None, help="Its quota: requests per minute."),
                      per_day: int = typer.Option(None, help="Its quota: requests per day."),
                      as_json: bool = JSON_OPT) -> None:
    """Let another organization invoke a deployment, with an optional quota."""
    with handled("deployment", name):
        show(client().deployments.share(name, org, per_minute=per_minute, per_day=per_day), as_json=as_json)


@deployments.command("usage")
def deployments_usage(name: str = DEPLOYMENT_ARG, minutes: int = typer.Option(60, help="Window, in minutes."),
                      as_json: bool = JSON_OPT) -> None:
    """Calls, errors and quota rejections per calling organization over the last minutes."""
    with handled("deployment", name):
        u = client().deployments.usage(name, minutes)
        show(u if as_json else [{"org": k, **v} for k, v in u["totals"].items()], as_json=as_json)


def install(app: typer.Typer) -> None:
    """Add ``models``, ``deploy`` and ``deployments`` to the main command."""
    app.add_typer(models, name="models")
    app.command("deploy")(deploy)
    app.add_typer(deployments, name="deployments")
