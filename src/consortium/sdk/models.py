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
        return self._list("/models", limit=limit)

    def get(self, model: str) -> dict[str, Any]:
        """The model card of ``org/model`` (or a bare name in your organization)."""
        return self._get(f"/models/{_ref(self, model)}")

    def versions(self, model: str) -> builtins.list[dict[str, Any]]:
        return self._list(f"/models/{_ref(self, model)}/versions")

    def version(self, model: str, version: int | str = "latest") -> dict[str, Any]:
        return self._get(f"/models/{_ref(self, model)}/versions/{version}")

    def explain(self, model: str, inputs: Any, version: int | str = "latest",
                target: int | str | None = None) -> dict[str, Any]:
        """Integrated Gradients for one input: per-feature scores, or a base64 heat map for images."""
        return self._post(f"/models/{_ref(self, model)}/versions/{version}/explain",
                          {"inputs": inputs, "target": target})

    def plot(self, model: str, name: str, version: int | str = "latest") -> bytes:
        """A PNG plot of the version: loss_curve, confusion_matrix, roc, ..."""
        return self.c.request("GET", f"/api/v1/models/{_ref(self, model)}/versions/{version}/plots/{name}")

    def upload(self, path: str | Path, *, name: str, description: str = "", task: str | None = None,
               class_names: builtins.list[str] | None = None, project: str | None = None) -> dict[str, Any]:
        """Upload an ONNX or Keras 3 ``.keras`` file (streamed) as a new version of ``name``
        (optionally placing the model in a project, whose members may then read and deploy-call it)."""
        p = Path(path)
        params = {"name": name, "filename": p.name, "description": description or None, "task": task,
                  "class_names": ",".join(class_names) if class_names else None, "project": project}
        return self.c.request("POST", API + "/models/upload", params=params, content=_chunks(p),
                              headers={"content-type": "application/octet-stream"})

    def update(self, model: str, *, description: str | None = None, intended_use: str | None = None) -> dict[str, Any]:
        body = {k: v for k, v in {"description": description, "intended_use": intended_use}.items() if v is not None}
        return self._patch(f"/models/{_ref(self, model)}", body)

    def set_alias(self, model: str, alias: str, version: int | str) -> dict[str, Any]:
        """Point ``alias`` at a version; deployments following it switch without dropping requests."""
        return self.c.request("PUT", f"{API}/models/{_ref(self, model)}/aliases/{alias}",
                              json={"version": version})

    def delete_alias(self, model: str, alias: str) -> dict[str, Any]:
        return self._delete(f"/models/{_ref(self, model)}/aliases/{alias}")

    def download(self, model: str, version: int | str, path: str | Path) -> Path:
        data = self.c.request("GET", f"{API}/models/{_ref(self, model)}/versions/{version}/onnx")
        out = Path(path)
        out.write_bytes(data)
        return out


class Deployments(Group):
    def create(self, name: str, model: str, description: str = "") -> dict[str, Any]:
        """Deploy ``[org/]model[:version|@alias]`` under ``name``."""
        return self._post("/deployments", {"name": name, "model": model,
                                           "description": description})

    def list(self, limit: int | None = None) -> list[dict[str, Any]]:
        return self._list("/deployments", limit=limit)

    def get(self, name: str) -> dict[str, Any]:
        return self._get(f"/deployments/{segment(name)}")

    def delete(self, name: str) -> dict[str, Any]:
        """Undeploy (its grants are revoked)."""
        return self._delete(f"/deployments/{segment(name)}")

    def predict(self, name: str, inputs: builtins.list[Any]) -> dict[str, Any]:
        """Raw feature rows or pixel arrays -> predictions, probabilities, class names."""
        return self._post(f"/deployments/{segment(name)}/predict", {"inputs": inputs})

    def usage(self, name: str, minutes: int = 60) -> dict[str, Any]:
        return self._get(f"/deployments/{segment(name)}/usage", minutes=minutes)

    def share(self, name: str, org: str, *, per_minute: int | None = None,
              per_day: int | None = None) -> dict[str, Any]:
        """Grant ``invoke`` to another organization, with an optional quota."""
        limits = {k: v for k, v in {"per_minute": per_minute, "per_day": per_day}.items() if v is not None}
        return Grants(self.c).create("deployment", name, "invoke", grantee_org=org, limits=limits or None)
