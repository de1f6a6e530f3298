"""SDK groups for the registry and deployments: ``client.models`` and ``client.deployments``.

>>> import consortium
>>> c = consortium.Client("http://127.0.0.1:8000", token="csm_tok_...")           # doctest: +SKIP
>>> v = c.models.upload("cnn.keras", name="digits")                               # doctest: +SKIP
>>> c.models.set_alias("st-marys/digits", "production", v["version"])             # doctest: +SKIP
>>> c.deployments.create("digits", "digits@production")                           # doctest: +SKIP
>>> c.deployments.predict("digits", [[0.0] * 64])["predictions"]                  # doctest: +SKIP
['1']
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from consortium.sdk.resources import API, Grants, Group, segment

CHUNK = 1 << 20


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def _ref(client_group: Group, model: str) -> str:
    """``org/model`` as given, or the caller's organization for a bare name."""
    if "/" in model:
        return model
    return f"{client_group.c.me()['org']}/{model}"


class Models(Group):
    def list(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Models of your organization (and those granted or in your projects):
        ``[{"name", "latest_version", "task", "aliases", "description"}]``.

        >>> [m["name"] for m in c.models.list()]                         # doctest: +SKIP
        """
        return self._list("/models", limit=limit)

    def get(self, model: str) -> dict[str, Any]:
        """The model card of ``org/model`` (or a bare name in your organization): description,
        intended use, aliases, deployments and every version with its metrics and lineage.

        >>> card = c.models.get("digits-cnn")                            # doctest: +SKIP
        >>> card["versions"][-1]["metrics"]["accuracy"]                  # doctest: +SKIP
        0.97
        """
        return self._get(f"/models/{_ref(self, model)}")

    def versions(self, model: str) -> builtins.list[dict[str, Any]]:
        """A model's versions, oldest first: ``[{"version", "source_format", "task",
        "metrics", "created_at", ...}]``.

        >>> [v["metrics"].get("accuracy") for v in c.models.versions("digits-cnn")]  # doctest: +SKIP
        """
        return self._list(f"/models/{_ref(self, model)}/versions")

    def version(self, model: str, version: int | str = "latest") -> dict[str, Any]:
        """One version (number or alias) with its signature, metrics, lineage and plots.

        >>> c.models.version("digits-cnn", "production")["version"]     # doctest: +SKIP
        3
        """
        return self._get(f"/models/{_ref(self, model)}/versions/{version}")

    def explain(self, model: str, inputs: Any, version: int | str = "latest",
                target: int | str | None = None) -> dict[str, Any]:
        """Integrated Gradients for one input: per-feature scores (``features``), or a base64
        heat map (``heatmap_png``) for images; ``target`` is the class explained (default: predicted).

        >>> out = c.models.explain("bc-risk", [17.99, 10.38, ...])       # doctest: +SKIP
        >>> out["features"][0]                                           # doctest: +SKIP
        {'name': 'worst radius', 'score': 0.31}
        """
        return self._post(f"/models/{_ref(self, model)}/versions/{version}/explain",
                          {"inputs": inputs, "target": target})

    def plot(self, model: str, name: str, version: int | str = "latest") -> bytes:
        """A PNG plot recorded with the version: ``loss_curve``, ``confusion_matrix``, ``roc``, ...

        >>> Path("cm.png").write_bytes(c.models.plot("digits-cnn", "confusion_matrix"))  # doctest: +SKIP
        """
        return self.c.request("GET", f"/api/v1/models/{_ref(self, model)}/versions/{version}/plots/{name}")

    def upload(self, path: str | Path, *, name: str, description: str = "", task: str | None = None,
               class_names: builtins.list[str] | None = None, project: str | None = None) -> dict[str, Any]:
        """Upload an ONNX or Keras 3 ``.keras`` file (streamed) as a new version of ``name``
        (optionally placing the model in a project, whose members may then read and deploy-call it).
        Returns the version (``{"model", "version", "source_format", "onnx_sha256", "signature", ...}``).

        >>> v = c.models.upload("cnn.keras", name="digits")               # doctest: +SKIP
        >>> v["version"]                                                 # doctest: +SKIP
        1
        """
        p = Path(path)
        params = {"name": name, "filename": p.name, "description": description or None, "task": task,
                  "class_names": ",".join(class_names) if class_names else None, "project": project}
        return self.c.request("POST", API + "/models/upload", params=params, content=_chunks(p),
                              headers={"content-type": "application/octet-stream"})

    def update(self, model: str, *, description: str | None = None, intended_use: str | None = None) -> dict[str, Any]:
        """Edit the model card's description and intended use (versions never change).

        >>> c.models.update("digits-cnn", intended_use="research only")  # doctest: +SKIP
        """
        body = {k: v for k, v in {"description": description, "intended_use": intended_use}.items() if v is not None}
        return self._patch(f"/models/{_ref(self, model)}", body)

    def set_alias(self, model: str, alias: str, version: int | str) -> dict[str, Any]:
        """Point ``alias`` at a version; deployments following it switch without dropping requests.

        >>> c.models.set_alias("digits-cnn", "production", 3)           # doctest: +SKIP
        """
        return self.c.request("PUT", f"{API}/models/{_ref(self, model)}/aliases/{alias}",
                              json={"version": version})

    def delete_alias(self, model: str, alias: str) -> dict[str, Any]:
        """Remove an alias (deployments following it keep their version until re-pointed).

        >>> c.models.delete_alias("digits-cnn", "staging")              # doctest: +SKIP
        """
        return self._delete(f"/models/{_ref(self, model)}/aliases/{alias}")

    def download(self, model: str, version: int | str, path: str | Path) -> Path:
        """Save a version's ONNX file to ``path`` (needs a ``download`` grant or ownership).

        >>> c.models.download("digits-cnn", 3, "digits.onnx")           # doctest: +SKIP
        PosixPath('digits.onnx')
        """
        data = self.c.request("GET", f"{API}/models/{_ref(self, model)}/versions/{version}/onnx")
        out = Path(path)
        out.write_bytes(data)
        return out


class Deployments(Group):
    def create(self, name: str, model: str, description: str = "") -> dict[str, Any]:
        """Deploy ``[org/]model[:version|@alias]`` under ``name``. Returns the deployment,
        with its ``endpoints`` (``predict``, ``open_inference``).

        >>> c.deployments.create("digits", "digits-cnn@production")["endpoints"]["predict"]  # doctest: +SKIP
        """
        return self._post("/deployments", {"name": name, "model": model,
                                           "description": description})

    def list(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Deployments of your organization and those shared with it (``limits``: your quota):
        ``[{"name", "org", "model", "version", "alias", ...}]``.

        >>> [d["name"] for d in c.deployments.list()]                    # doctest: +SKIP
        """
        return self._list("/deployments", limit=limit)

    def get(self, name: str) -> dict[str, Any]:
        """One deployment (name, or ``org~name``): model, served version, signature, endpoints.

        >>> c.deployments.get("bc-risk")["signature"]["inputs"]          # doctest: +SKIP
        """
        return self._get(f"/deployments/{segment(name)}")

    def delete(self, name: str) -> dict[str, Any]:
        """Undeploy (grants on it are revoked). Returns ``{"name", "deleted", "revoked_grants"}``.

        >>> c.deployments.delete("digits")["deleted"]                   # doctest: +SKIP
        True
        """
        return self._delete(f"/deployments/{segment(name)}")

    def predict(self, name: str, inputs: builtins.list[Any]) -> dict[str, Any]:
        """Raw feature rows or pixel arrays -> ``{"predictions", "probabilities",
        "class_names", "version", "prediction_id", ...}`` (preprocessing is applied by the hub).

        >>> c.deployments.predict("bc-risk", [[17.99, 10.38, ...]])["predictions"]  # doctest: +SKIP
        ['malignant']
        """
        return self._post(f"/deployments/{segment(name)}/predict", {"inputs": inputs})

    def usage(self, name: str, minutes: int = 60) -> dict[str, Any]:
        """Calls, errors and quota rejections over the last ``minutes``: ``{"deployment",
        "minutes", "totals": {org: {"count", "errors", "rejected"}}, "per_minute": [...]}``.

        >>> c.deployments.usage("digits", minutes=15)["totals"]          # doctest: +SKIP
        """
        return self._get(f"/deployments/{segment(name)}/usage", minutes=minutes)

    def share(self, name: str, org: str, *, per_minute: int | None = None,
              per_day: int | None = None) -> dict[str, Any]:
        """Grant ``invoke`` to another organization, with an optional quota. Returns the grant.

        >>> c.deployments.share("digits", "riverside-clinic", per_minute=60)  # doctest: +SKIP
        """
        limits = {k: v for k, v in {"per_minute": per_minute, "per_day": per_day}.items() if v is not None}
        return Grants(self.c).create("deployment", name, "invoke", grantee_org=org, limits=limits or None)
