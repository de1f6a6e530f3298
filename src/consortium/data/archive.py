"""Zip archives (image zips and NPZ files) opened under limits, against zip and decompression bombs.

An upload's archive is checked twice: its central directory when it is opened (member count,
total uncompressed size, each member's compression ratio), and the bytes actually inflated while
members are read, since a crafted directory can understate them. Images get a pixel limit,
checked from the image header before any pixel is decoded. Every refusal is a 413 that names the
limit and the setting that raises it.

Home-made glue over ``zipfile``: the standard library trusts the directory and has no limits.

>>> import io, zipfile
>>> buf = io.BytesIO()
>>> with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
...     z.writestr("a/zeros.png", b"\\0" * (4 << 20))
>>> try:
...     LimitedZip(buf, "zip archive", ZipLimits(max_ratio=100))
... except PayloadTooLarge as e:
...     print(e.message.split(" (")[0])
zip entry 'a/zeros.png' expands 1028x or more
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from consortium.errors import InvalidInput, PayloadTooLarge

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

RATIO_FLOOR = 64 << 10  # entries smaller than this are not ratio-checked: tiny files compress oddly
SETTINGS = {"max_members": "CONSORTIUM_ZIP_MAX_MEMBERS", "max_bytes": "CONSORTIUM_ZIP_MAX_BYTES",
            "max_ratio": "CONSORTIUM_ZIP_MAX_RATIO", "max_pixels": "CONSORTIUM_IMAGE_MAX_PIXELS"}


@dataclass(frozen=True)
class ZipLimits:
    """Limits for one uploaded archive (defaults as in ``Settings``)."""

    max_members: int = 100_000
    max_bytes: int = 4 << 30  # total uncompressed
    max_ratio: int = 200  # uncompressed / compressed, per entry of at least RATIO_FLOOR bytes
    max_pixels: int = 4096 * 4096  # width x height of one image

    @classmethod
    def from_settings(cls, settings: Any) -> ZipLimits:
        return cls(settings.zip_max_members, settings.zip_max_bytes, settings.zip_max_ratio,
                   settings.image_max_pixels)

    def refuse(self, what: str, limit: str) -> PayloadTooLarge:
        return PayloadTooLarge(f"{what}, over the limit of {getattr(self, limit):,}",
                               hint=f"if the archive is genuine, raise {SETTINGS[limit]} on the hub")

    def check_pixels(self, name: str, width: int, height: int) -> None:
        if width * height > self.max_pixels:
            raise self.refuse(f"image {name!r} is {width}x{height} = {width * height:,} pixels", "max_pixels")


class LimitedZip:
    """A read-only zip archive whose directory and reads are checked against ``limits``
    (``None``: no limits, for archives that were checked when they were uploaded)."""

    def __init__(self, file: Path | IO[bytes], what: str, limits: ZipLimits | None) -> None:
        try:
            self.zip = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, OSError) as e:
            raise InvalidInput(f"the file is not a readable {what}: {e}") from None
        self.what, self.limits, self.inflated = what, limits, 0
        try:
            self._check_directory()
        except BaseException:
            self.zip.close()
            raise

    def _check_directory(self) -> None:
        if self.limits is None:
            return
        infos = self.zip.infolist()
        if len(infos) > self.limits.max_members:
            raise self.limits.refuse(f"the {self.what} holds {len(infos):,} entries", "max_members")
        for i in infos:
            self._check_ratio(i, i.file_size)
        total = sum(i.file_size for i in infos)
        if total > self.limits.max_bytes:
            raise self.limits.refuse(f"the {self.what} expands to {total:,} bytes", "max_bytes")

    def _check_ratio(self, info: zipfile.ZipInfo, size: int) -> None:
        limits = self.limits
        if limits is None:  # an archive checked when it was uploaded
            return
        if size >= RATIO_FLOOR and size > limits.max_ratio * max(info.compress_size, 1):
            ratio = size // max(info.compress_size, 1)
            raise limits.refuse(f"zip entry {info.filename!r} expands {ratio}x or more ({size} bytes "
                                     f"from {info.compress_size})", "max_ratio")

    def infolist(self) -> list[zipfile.ZipInfo]:
        return self.zip.infolist()

    def namelist(self) -> list[str]:
        return self.zip.namelist()

    def open(self, member: str | zipfile.ZipInfo) -> IO[bytes]:
        info = member if isinstance(member, zipfile.ZipInfo) else self.zip.getinfo(member)
        return io.BufferedReader(_Member(self, info, self.zip.open(info)), buffer_size=1 << 16)

    def read(self, member: str | zipfile.ZipInfo) -> bytes:
        with self.open(member) as f:
            return f.read()

    def _count(self, info: zipfile.ZipInfo, member_bytes: int, n: int) -> None:
        """Called for every read: the limits hold for the bytes inflated, whatever the directory says."""
        self.inflated += n
        if self.limits is None:
            return
        if member_bytes > info.file_size:
            raise InvalidInput(f"zip entry {info.filename!r} holds more than the {info.file_size} bytes "
                               f"the archive's directory declares", hint="the archive is damaged or crafted")
        if self.inflated > self.limits.max_bytes:
            raise self.limits.refuse(f"the {self.what} expands to more than {self.inflated:,} bytes",
                                     "max_bytes")
        self._check_ratio(info, member_bytes)

    def close(self) -> None:
        self.zip.close()

    def __enter__(self) -> LimitedZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Member(io.RawIOBase):
    """One member being inflated, counted as it is read."""

    def __init__(self, owner: LimitedZip, info: zipfile.ZipInfo, raw: IO[bytes]) -> None:
        self.owner, self.info, self.raw, self.got = owner, info, raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: WriteableBuffer) -> int:
        # ZipFile.open gives a ZipExtFile (it has readinto); typeshed types it as IO[bytes], which has not
        n: int = self.raw.readinto(b)  # type: ignore[attr-defined]
        self.got += n
        self.owner._count(self.info, self.got, n)
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()
