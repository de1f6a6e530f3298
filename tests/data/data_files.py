"""Small file builders and store probes shared by the data tests."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

API = "/api/v1/datasets"


def csv_bytes(n: int = 30, marker: str = "plain") -> bytes:
    rows = ["age,city,note,label"]
    for i in range(n):
        rows.append(f"{20 + i % 50},{'north' if i % 3 else 'south'},{marker}-{i},{i % 2}")
    return ("\n".join(rows) + "\n").encode()


def png(size: tuple[int, int] = (8, 8), mode: str = "L", value: int = 0) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size, value).save(buf, format="PNG")
    return buf.getvalue()


def image_zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def npz_bytes(images: np.ndarray, labels: np.ndarray, **extra: Any) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, images=images, labels=labels, **extra)
    return buf.getvalue()


def stored_blobs(services: Any) -> set[str]:
    root = Path(services.blobs.store.root)
    return {p.name for p in root.glob("*/*") if p.parent.name != "tmp"}


def temp_files(services: Any) -> list[str]:
    return [p.name for p in (Path(services.blobs.store.root) / "tmp").iterdir()]


def upload(http: Any, actor: Any, name: str, data: Any, **params: Any) -> Any:
    return http.post(f"{API}/{actor.org}/{name}/versions/upload", params=params, content=data,
                     headers=actor.headers)
