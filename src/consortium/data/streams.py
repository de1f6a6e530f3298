"""Byte-stream helpers for ingestion: a file object over an iterator, a UTF-8 checker that names the
line at fault, and a private temporary file for formats that need random access (zip, Parquet).

Home-made glue (small adapters around ``io`` and ``codecs``), so that a 1 GB upload is read in
bounded memory.

>>> r = IterReader(iter([b"ab", b"cd"]))
>>> r.read(3), r.readall()  # one read returns at most one chunk
(b'ab', b'cd')
>>> list(Utf8Check(iter([b"x,y\\n", b"1,2\\n"])))
[b'x,y\\n', b'1,2\\n']
"""

from __future__ import annotations

import codecs
import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from consortium.errors import InvalidInput

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


class IterReader(io.RawIOBase):
    """A read-only, non-seekable file object over an iterator of byte chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        """At most ``size`` bytes, from one chunk: a whole chunk is handed over without a copy."""
        if size is None or size < 0:
            return self.readall()
        if not self._fill():
            return b""
        buf = self._buf
        if len(buf) <= size and isinstance(buf.obj, bytes) and len(buf) == len(buf.obj):
            self._buf = memoryview(b"")
            return buf.obj
        self._buf = buf[size:]
        return buf[:size].tobytes()

    def _fill(self) -> bool:
        while not len(self._buf):
            try:
                self._buf = memoryview(next(self._it))
            except StopIteration:
                return False
        return True

    def readinto(self, b: WriteableBuffer) -> int:
        if not self._fill():
            return 0
        with memoryview(b) as out:  # released on return: the caller may resize its bytearray
            n = min(len(out), len(self._buf))
            out[:n] = self._buf[:n]
        self._buf = self._buf[n:]  # a view: no copy of the rest
        return n


class Utf8Check:
    """Passes chunks through while checking they decode as UTF-8; on failure raises ``InvalidInput``
    naming the line (1-based) of the first bad byte. The first error is kept in ``error`` too,
    since a parser calling ``read()`` may wrap the exception."""

    def __init__(self, chunks: Iterable[bytes], what: str = "the file") -> None:
        self._it = iter(chunks)
        self._dec = codecs.getincrementaldecoder("utf-8")()
        self.lines_before = 0
        self.what = what
        self.error: InvalidInput | None = None

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._it:
            try:
                if self._dec.getstate()[0] or not chunk.isascii():  # ASCII needs no decoding
                    self._dec.decode(chunk)
            except UnicodeDecodeError as e:
                line = self.lines_before + chunk.count(b"\n", 0, e.start) + 1
                self.error = InvalidInput(
                    f"{self.what} is not valid UTF-8: undecodable byte 0x{chunk[e.start]:02x} on line {line}",
                    hint="save the file as UTF-8 (e.g. in a spreadsheet: 'CSV UTF-8') and upload it again")
                raise self.error from None
            self.lines_before += chunk.count(b"\n")
            yield chunk
        try:
            self._dec.decode(b"", final=True)
        except UnicodeDecodeError:
            self.error = InvalidInput(f"{self.what} is not valid UTF-8: it ends inside a multi-byte "
                                      f"character on line {self.lines_before + 1}",
                                      hint="save the file as UTF-8 and upload it again")
            raise self.error from None


@contextmanager
def private_copy(chunks: Iterable[bytes], directory: Path) -> Iterator[Path]:
    """Write a stream to a 0600 temporary file in ``directory`` and delete it afterwards, whatever
    happens. Named ``*.part`` so the blob store's orphan sweep removes it after a crash."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="ingest-", suffix=".part", dir=directory)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            for c in chunks:
                f.write(c)
        yield path
    finally:
        path.unlink(missing_ok=True)
