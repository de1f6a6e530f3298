"""A node's local dataset store: the files a ``ClientApp`` reads at an organization's site.

Each dataset lives in ``<data-dir>/<name>/``: tabular data as ``data.parquet`` plus a
``meta.json`` (kind, target column, class names); image data as ``data.npz`` (``images``,
``labels``) plus the same ``meta.json``. Nothing here leaves the node: the ClientApp loads the
dataset named in its ``node_config`` and only model updates go back to the SuperLink.

>>> import tempfile
>>> from consortium.data.samples import load_sample
>>> root = tempfile.mkdtemp()
>>> path = save_dataset(root, "bc", load_sample("breast_cancer"))
>>> load_dataset(root, "bc").n_rows
569
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from consortium.data.frame import DataFrameSet
from consortium.errors import InvalidInput, NotFound

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
META = "meta.json"


def _dataset_dir(root: str | os.PathLike[str], name: str) -> Path:
    if not _NAME.match(name) or ".." in name:
        raise InvalidInput(f"dataset name {name!r} is not a plain name",
                           hint="use letters, digits, '-', '_' or '.', no slashes")
    return Path(root) / name


def save_dataset(root: str | os.PathLike[str], name: str, data: DataFrameSet) -> Path:
    """Write ``data`` under ``root/name`` atomically (a half-written dataset is never visible)."""
    final = _dataset_dir(root, name)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=final.parent))
    meta = {"kind": data.kind, "target": data.target, "class_names": list(data.class_names)}
    if data.kind == "image":
        images, labels = data.image_arrays()
        np.savez(tmp / "data.npz", images=images, labels=labels)
    else:
        data.table().to_parquet(tmp / "data.parquet", index=False)
    (tmp / META).write_text(json.dumps(meta))
    if final.exists():
        old = final.with_name(f".{name}.old.{os.getpid()}")
        final.rename(old)
        tmp.rename(final)
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    else:
        tmp.rename(final)
    return final


def load_dataset(root: str | os.PathLike[str], name: str) -> DataFrameSet:
    """Read the dataset ``name`` under ``root``; raises ``NotFound`` naming what is there."""
    path = _dataset_dir(root, name)
    meta_path = path / META
    if not meta_path.exists():
        present = sorted(p.name for p in Path(root).glob("*") if (p / META).exists()) \
            if Path(root).exists() else []
        raise NotFound(f"no dataset {name!r} in node data directory {str(root)!r}",
                       hint=f"datasets there: {', '.join(present) or 'none'}; "
                            "save one with consortium.federation.app.datasets.save_dataset")
    meta = json.loads(meta_path.read_text())
    if meta["kind"] == "image":
        with np.load(path / "data.npz") as z:
            d = DataFrameSet.from_images(z["images"], z["labels"], meta.get("class_names"))
        return d
    frame = pd.read_parquet(path / "data.parquet")
    d = DataFrameSet.from_frame(frame, target=meta.get("target"))
    d.class_names = list(meta.get("class_names") or [])
    return d


def list_datasets(root: str | os.PathLike[str]) -> list[str]:
    """Names of the datasets stored under ``root``."""
    base = Path(root)
    return sorted(p.name for p in base.iterdir()  # a dot-name is a write or a deletion under way
                  if not p.name.startswith(".") and (p / META).exists()) if base.exists() else []
