"""SDK group ``client.datasets``: list, inspect, upload (streamed from disk), preview, download,
delete, import bundled samples.

Datasets are named ``org/name``; a bare ``name`` means your own organization's.

>>> import consortium
>>> c = consortium.Client("http://127.0.0.1:8000", token="csm_tok_...")        # doctest: +SKIP
>>> v = c.datasets.upload("bc.csv", name="bc", target="target")                 # doctest: +SKIP
>>> v["version"], v["rows"], v["schema"]["classes"]                              # doctest: +SKIP
(1, 569, {'0': 212, '1': 357})
>>> c.datasets.preview("st-marys-hospital/bc", rows=3)["rows_preview"]         # doctest: +SKIP
"""

from __future__ import annotations

import builtins
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from consortium.sdk.resources import Group

CHUNK = 1 << 20
Progress = Callable[[int, int], None]  # (bytes sent, total bytes)


def _file_chunks(path: Path, progress: Progress | None) -> Iterator[bytes]:
    total, sent = path.stat().st_size, 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sent += len(chunk)
            yield chunk
            if progress:
                progress(sent, total)


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


class Datasets(Group):
    _org: str | None = None

    def _ref(self, ref: str) -> str:
        if "/" in ref:
            return ref.strip("/")
        if self._org is None:
            self._org = self.c.me()["org"]
        return f"{self._org}/{ref}"

    def list(self, scope: str = "all", limit: int | None = None) -> list[dict[str, Any]]:
        """Your organization's datasets and those shared with it (``own``, ``shared`` or
        ``all``): ``[{"full_name", "latest_version", "versions", "access", "description", ...}]``.

        >>> [d["full_name"] for d in c.datasets.list("shared")]         # doctest: +SKIP
        """
        return self._list("/datasets", limit=limit, scope=scope)

    def pages(self, scope: str = "all", page_size: int = 100) -> Iterator[dict[str, Any]]:
        """The dataset list a page at a time (``{"items", "next_cursor"}``).

        >>> next(c.datasets.pages())["items"][0]["full_name"]            # doctest: +SKIP
        """
        return self._pages("/datasets", page_size=page_size, scope=scope)

    def get(self, ref: str) -> dict[str, Any]:
        """A dataset (``org/name``, or a bare name of your organization) and its versions
        (``version_list``: version, format, rows, target, size, checksum).

        >>> c.datasets.get("st-marys-hospital/breast-cancer")["latest_version"]  # doctest: +SKIP
        1
        """
        return self._get(f"/datasets/{self._ref(ref)}")

    def versions(self, ref: str) -> builtins.list[dict[str, Any]]:
        """A dataset's versions, oldest first.

        >>> [v["rows"] for v in c.datasets.versions("bc")]               # doctest: +SKIP
        """
        return self._list(f"/datasets/{self._ref(ref)}/versions")

    def version(self, ref: str, version: int | str = "latest") -> dict[str, Any]:
        """One version (number or ``latest``) with its schema and statistics.

        >>> c.datasets.version("bc", 1)["schema"]["columns"][0]["name"]  # doctest: +SKIP
        """
        return self._get(f"/datasets/{self._ref(ref)}/versions/{version}")

    def preview(self, ref: str, version: int | str = "latest", rows: int = 10) -> dict[str, Any]:
        """Schema and statistics; ``rows_preview`` holds rows only if you may read them.

        >>> c.datasets.preview("st-marys-hospital/breast-cancer", rows=3)["rows"]  # doctest: +SKIP
        190
        """
        out: dict[str, Any] = self._get(f"/datasets/{self._ref(ref)}/versions/{version}/preview", rows=rows)
        return out

    def upload(self, path: str | os.PathLike[str], name: str, *, target: str | None = None,
               format: str | None = None, description: str = "", verify: bool = True,
               progress: Progress | None = None) -> dict[str, Any]:
        """Stream a file (CSV, Parquet, NPZ or zip of class folders) as a new version of ``name`` in
        your organization; the dataset is created on first upload. With ``verify`` the file's SHA-256
        is computed first and checked by the hub against what it received.

        >>> v = c.datasets.upload("bc.csv", "bc", target="target")      # doctest: +SKIP
        >>> v["version"], v["rows"]                                      # doctest: +SKIP
        (1, 569)
        """
        p = Path(path)
        if not p.is_file():
            from consortium.errors import InvalidInput

            raise InvalidInput(f"no such file: {p}")
        org = self._ref(name).split("/")[0]
        headers = {"content-type": "application/octet-stream", "content-length": str(p.stat().st_size)}
        if verify:
            headers["x-content-sha256"] = sha256_file(p)
        params = {"target": target, "format": format, "filename": p.name, "description": description}
        url = f"/api/v1/datasets/{org}/{name}/versions/upload"
        out: dict[str, Any] = self.c.request("POST", url, params=params, content=_file_chunks(p, progress),
                                             headers=headers)
        return out

    def download(self, ref: str, dest: str | os.PathLike[str], version: int | str = "latest",
                 progress: Progress | None = None) -> Path:
        """Stream a version's file to ``dest`` (a file or a directory); needs a ``download`` grant
        or ownership. The file's checksum is verified; a mismatch deletes the partial file.

        >>> c.datasets.download("st-marys-hospital/bc", "data/")       # doctest: +SKIP
        PosixPath('data/bc-v1.csv')
        """
        out = Path(dest)
        path = f"/api/v1/datasets/{self._ref(ref)}/versions/{version}/download"
        if out.is_dir():
            out = out / f"{self._ref(ref).split('/')[1]}-v{version}.bin"
        tmp = out.with_name(out.name + ".part")
        h, got = hashlib.sha256(), 0
        try:
            with open(tmp, "wb") as f:
                for chunk in self.c.stream("GET", path):
                    h.update(chunk)
                    f.write(chunk)
                    got += len(chunk)
                    if progress:
                        progress(got, 0)
            meta = self.version(ref, version)
            if meta["checksum"] != "sha256:" + h.hexdigest():
                from consortium.errors import IntegrityError

                raise IntegrityError(f"downloaded file does not match checksum {meta['checksum']}")
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        return out

    def delete(self, ref: str, version: int | None = None) -> dict[str, Any]:
        """Delete a dataset of your organization (admins), or only ``version`` of it. Deleting the
        dataset revokes every grant on it. Raises ``Conflict`` while a queued or running job uses it.

        >>> c.datasets.delete("bc", version=2)["versions"]                  # doctest: +SKIP
        [2]

        """
        path = f"/datasets/{self._ref(ref)}" + (f"/versions/{int(version)}" if version is not None else "")
        return self._delete(path)

    def samples(self) -> builtins.list[dict[str, Any]]:
        """The bundled sample datasets: ``[{"name", "description"}]``.

        >>> [s["name"] for s in c.datasets.samples()]                    # doctest: +SKIP
        ['breast_cancer', 'diabetes', 'digits', 'iris', 'wine']
        """
        return self._list("/datasets/samples")

    def import_sample(self, sample: str, name: str | None = None, *, partitions: int = 1,
                      part: int | None = None, skew: str = "iid", seed: int = 0,
                      to_orgs: builtins.list[str] | None = None) -> builtins.list[dict[str, Any]]:
        """Import a bundled sample into your organization (``part`` of ``partitions``), or, as a
        hub operator, one partition into each of ``to_orgs``.

        >>> c.datasets.import_sample("breast_cancer", "bc", partitions=3, part=1)["rows"]  # doctest: +SKIP
        190
        """
        body = {"sample": sample, "name": name, "partitions": partitions, "part": part, "skew": skew,
                "seed": seed, "to_orgs": to_orgs}
        return self._post("/datasets/import-sample",
                          {k: v for k, v in body.items() if v is not None})
