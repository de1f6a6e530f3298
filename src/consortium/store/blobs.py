"""Blobs: the ``BlobStore`` protocol every store implements, and ``LocalBlobStore``, the one on the
local disk. Only ``Hub.start`` (which picks the store from the settings) names a store
(``store.blobs_s3.S3BlobStore`` for ``CONSORTIUM_BLOB_URL=s3://...``);
the stages reach the store through ``governance.sealed.SealedBlobs``, typed against the protocol,
so an object store can take the local disk's place.

The local store writes content to a temporary file, checksums, fsyncs and renames it into place,
so a blob is either complete or absent; never half-written and visible.

Callers hand in an iterator of bytes (already sealed: ``SealedBlobs``) and get a
``BlobRef`` back only once the blob is durable; only then do they insert the database row that
points at it. A crash before the row commits leaves an orphan file, which ``sweep_orphans``
removes; never a row without its blob.

A writer killed mid-blob (``kill -9``, power loss) leaves ``tmp/*.part``. Every process with a store
holds a shared lock on ``.writers.lock`` (beside the blob folders) while the store lives; a new
store that can take that lock exclusively is the only writer on this directory, so it removes every
``.part`` at once. Beside another writer (a second hub or a worker on the same home) it removes
only those untouched for ``part_grace_s``: a live upload writes to its file all the time.

>>> import tempfile
>>> store = LocalBlobStore(tempfile.mkdtemp())
>>> ref = store.put([b"hello ", b"world"])
>>> b"".join(store.get(ref.key)), ref.size
(b'hello world', 11)
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from consortium.errors import NotFound, PayloadTooLarge

READ_CHUNK = 1 << 20
PART_GRACE_S = 3600.0  # a .part file untouched this long belongs to no live upload
log = logging.getLogger("consortium.store")

try:
    import fcntl
except ImportError:  # not POSIX: no lock, only the grace period
    fcntl = None  # type: ignore[assignment]  # typeshed has the module on every platform mypy checks


@dataclass(frozen=True)
class BlobRef:
    key: str
    size: int
    sha256: str  # of the stored bytes


class BlobStore(Protocol):
    """Where encrypted blobs live. ``put`` returns only once the blob is durable; ``get`` of a key
    no blob has raises ``NotFound``."""

    parts_swept: int  # unfinished writes of a dead writer removed when the store opened

    @property
    def scratch_dir(self) -> Path:
        """A private local folder for temporary copies (a file a reader needs whole, e.g. Parquet)."""

    def put(self, chunks: Iterable[bytes], *, max_bytes: int | None = None, prefix: str = "b") -> BlobRef:
        """Store ``chunks`` under a new key (``prefix`` + random); ``PayloadTooLarge`` past ``max_bytes``."""

    def get(self, key: str) -> Iterator[bytes]:
        """The blob's bytes, in chunks."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the blob (no error when it is already gone)."""

    def sweep_orphans(self, known: set[str], older_than_s: float = 3600) -> int:
        """Remove blobs whose key is not in ``known`` and older than ``older_than_s``; how many."""

    def problem(self) -> str | None:
        """None when the store can be used; else a short reason for the readiness probe (no
        paths, addresses or the store's own error text: the probe is public)."""

    def close(self) -> None: ...


class LocalBlobStore:
    """``BlobStore`` on the local disk, under ``root`` (``CONSORTIUM_HOME/blobs``)."""

    def __init__(self, root: str | Path, *, part_grace_s: float = PART_GRACE_S) -> None:
        self.root = Path(root)
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        self._lock_fd: int | None = None
        self.parts_swept = self._join_writers(part_grace_s)

    def _join_writers(self, grace_s: float) -> int:
        """Take the shared writers' lock; sweep ``.part`` files first (all of them when alone)."""
        if fcntl is None:
            return self._sweep_parts(grace_s)
        fd = os.open(self.root / ".writers.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            alone = True
        except BlockingIOError:
            alone = False
        if alone:  # no other process writes here: every .part is a dead upload's
            removed = self._sweep_parts(0.0)
            fcntl.flock(fd, fcntl.LOCK_SH)  # no part of ours exists yet, so the moment unlocked is harmless
        else:
            fcntl.flock(fd, fcntl.LOCK_SH)
            removed = self._sweep_parts(grace_s)
        self._lock_fd = fd
        if removed:
            log.info("removed %d unfinished blob file(s) left by an interrupted writer", removed)
        return removed

    def _sweep_parts(self, older_than_s: float) -> int:
        now, removed = time.time(), 0
        for p in (self.root / "tmp").glob("*.part"):
            try:
                if now - p.stat().st_mtime >= older_than_s:
                    p.unlink()
                    removed += 1
            except FileNotFoundError:  # finished or swept meanwhile
                continue
        return removed

    @property
    def scratch_dir(self) -> Path:
        return self.root / "tmp"

    def problem(self) -> str | None:
        return None if os.access(self.root / "tmp", os.W_OK | os.X_OK) else "the blob directory is not writable"

    def close(self) -> None:
        """Leave the writers' lock (the process's exit does it too)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _path(self, key: str) -> Path:
        if not key or "/" in key or ".." in key:
            raise NotFound(f"no blob {key!r}")
        return self.root / key[:2] / key

    def put(self, chunks: Iterable[bytes], *, max_bytes: int | None = None, prefix: str = "b") -> BlobRef:
        key = f"{prefix}{secrets.token_hex(16)}"
        tmp = self.root / "tmp" / f"{key}.part"
        h = hashlib.sha256()
        size = 0
        try:
            with open(tmp, "wb") as f:
                for c in chunks:
                    size += len(c)
                    if max_bytes is not None and size > max_bytes:
                        raise PayloadTooLarge(f"blob exceeds the limit of {max_bytes} bytes")
                    h.update(c)
                    f.write(c)
                f.flush()
                os.fsync(f.fileno())
            dest = self._path(key)
            dest.parent.mkdir(exist_ok=True)
            os.replace(tmp, dest)
            _fsync_dir(dest.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return BlobRef(key, size, h.hexdigest())

    def get(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        if not path.exists():
            raise NotFound(f"blob {key} is missing from the store")
        with open(path, "rb") as f:
            while chunk := f.read(READ_CHUNK):
                yield chunk

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def sweep_orphans(self, known: set[str], older_than_s: float = 3600) -> int:
        """Remove blobs no row refers to (left by a crash between blob and row), and stale temp files."""
        now, removed = time.time(), 0
        for p in self.root.glob("*/*"):
            if p.parent.name == "tmp" or p.name in known:
                continue
            if now - p.stat().st_mtime > older_than_s:
                p.unlink(missing_ok=True)
                removed += 1
        return removed + self._sweep_parts(older_than_s)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
