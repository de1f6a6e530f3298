"""The four upload formats, how each is recognised, and one dispatch for profile / load / preview.

Formats: ``csv``, ``parquet``, ``npz`` (images + labels arrays) and ``image_zip`` (a zip of
PNG/JPEG images, one folder per class). CSV is read as a stream; the zip-based formats and Parquet
need random access, so their plaintext goes to a private temporary file for the duration of the
call, deleted afterwards.

>>> detect("scans.zip", b"PK\\x03\\x04"), detect("t.bin", b"PAR1"), detect(None, b"a,b\\n")
('zip', 'parquet', 'csv')
>>> try:
...     detect("cat.png", b"\\x89PNG\\r\\n\\x1a\\n")
... except UnsupportedFormat as e:
...     print(e.code, e.message.split(":")[0])
unsupported_format cat.png is a PNG image, not a dataset
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from consortium.data import images, tabular
from consortium.data.archive import ZipLimits
from consortium.data.streams import private_copy
from consortium.errors import InvalidInput, UnsupportedFormat

if TYPE_CHECKING:
    from consortium.data.frame import DataFrameSet

FORMATS = ("csv", "parquet", "npz", "image_zip")
EXTENSIONS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npz": "npz", ".zip": "zip"}
Source = Callable[[], Iterable[bytes]]
SUPPORTED = "CSV, Parquet, NPZ (images and labels arrays) or a ZIP of PNG/JPEG images (one folder per class)"
# files people upload by mistake: by their first bytes, and by name when the bytes say nothing
NOT_DATASETS = {
    b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
    b"II*\x00": "a TIFF image", b"MM\x00*": "a TIFF image", b"%PDF": "a PDF document",
    b"\x1f\x8b": "a gzip archive", b"7z\xbc\xaf": "a 7z archive", b"\xd0\xcf\x11\xe0": "an old Office file",
}
NOT_DATASET_NAMES = {
    ".png": "a PNG image", ".jpg": "a JPEG image", ".jpeg": "a JPEG image", ".gif": "a GIF image",
    ".bmp": "a BMP image", ".webp": "a WebP image", ".tif": "a TIFF image", ".tiff": "a TIFF image",
    ".pdf": "a PDF document", ".xlsx": "a spreadsheet", ".xls": "a spreadsheet", ".gz": "a gzip archive",
    ".tar": "a tar archive", ".7z": "a 7z archive", ".rar": "a RAR archive",
}


def detect(filename: str | None, head: bytes, declared: str | None = None) -> str:
    """``csv``, ``parquet``, ``npz``, ``image_zip`` or ``zip`` (npz or image_zip, decided by content)."""
    if declared:
        if declared not in FORMATS:
            raise InvalidInput(f"unknown format {declared!r}", hint=f"use one of: {', '.join(FORMATS)}")
        return declared
    if filename:
        for ext, fmt in EXTENSIONS.items():
            if filename.lower().endswith(ext):
                return fmt
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    _refuse_non_dataset(filename, head)
    return "csv"


def _refuse_non_dataset(filename: str | None, head: bytes) -> None:
    """``UnsupportedFormat`` (415) for an image, document, archive or other binary sent as a table."""
    what = next((kind for magic, kind in NOT_DATASETS.items() if head.startswith(magic)), None)
    what = what or NOT_DATASET_NAMES.get(Path(filename or "").suffix.lower())
    if what is None and b"\x00" in head:  # no CSV has NUL bytes
        what = "a binary file"
    if what is None:
        return
    if "image" in what:
        hint = "put the images in a ZIP, one folder per class (e.g. cats/1.png, dogs/2.png)"
    elif "archive" in what:
        hint = "unpack it and upload the CSV or Parquet file inside"
    else:
        hint = "export the table as CSV (UTF-8) or Parquet"
    raise UnsupportedFormat(f"{filename or 'the file'} is {what}, not a dataset: the hub takes {SUPPORTED}",
                            hint=hint, details={"supported": list(FORMATS)})


def profile(fmt: str, source: Source, target: str | None, tmp_dir: Path,
            limits: ZipLimits | None = None) -> tuple[str, dict[str, Any]]:
    """(final format, schema and statistics); raises ``InvalidInput`` naming what is wrong, and
    ``PayloadTooLarge`` for an archive over ``limits`` (default: ``ZipLimits()``)."""
    if fmt == "csv":
        return fmt, tabular.profile_csv(source, target)
    limits = limits or ZipLimits()
    with private_copy(source(), tmp_dir) as path:
        if fmt == "zip":
            fmt = "npz" if images.is_npz(path, limits) else "image_zip"
        if fmt == "parquet":
            return fmt, tabular.profile_parquet(path, target)
        if target not in (None, "label"):
            raise InvalidInput(f"image datasets have no column {target!r}: their target is 'label'",
                               hint="leave the target out for image uploads")
        if fmt == "npz":
            return fmt, images.profile_npz(path, limits)
        return fmt, images.profile_image_zip(path, limits)


def load(fmt: str, source: Source, schema: dict[str, Any], tmp_dir: Path) -> DataFrameSet:
    """The whole version in memory, for compute."""
    if fmt == "csv":
        return tabular.load_csv(source, schema)
    with private_copy(source(), tmp_dir) as path:
        if fmt == "parquet":
            return tabular.load_parquet(path, schema)
        if fmt == "npz":
            return images.load_npz(path)
        return images.load_image_zip(path, schema)


def head(fmt: str, source: Source, schema: dict[str, Any], n: int, tmp_dir: Path) -> list[dict[str, Any]]:
    """The first ``n`` rows (images: label and pixel values)."""
    if fmt == "csv":
        return tabular.head_csv(source, schema, n)
    if fmt == "parquet":
        with private_copy(source(), tmp_dir) as path:
            return tabular.head_parquet(path, n)
    return images.head_images(load(fmt, source, schema, tmp_dir), n)
