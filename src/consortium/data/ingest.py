"""Atomic ingestion of one upload as a new immutable dataset version.

Order of work, so that a failure at any point stores nothing:

1. the upload streams through a checksum/size tap, sealed with the organization's key, into the blob store,
   which writes a temporary file, fsyncs and renames it (``BlobRef`` only once durable);
2. the blob is decrypted as a stream (or into a private temporary file for zip/Parquet) and
   parsed: format, schema, statistics; bad input raises ``InvalidInput`` naming the line, file or
   column at fault;
3. only then are the dataset (if new) and version rows inserted, in the caller's transaction.

Any exception after step 1 deletes the blob. Uploading the same bytes as the latest version again
creates nothing and returns that version (``created`` is False), which makes seeding idempotent.

>>> from consortium.config import Settings; from consortium.services import Services   # doctest: +SKIP
>>> svc = Services.start(Settings(home="/tmp/c-ingest"))                                 # doctest: +SKIP
>>> with transaction(svc.session_factory) as s:                                          # doctest: +SKIP
...     v, created = ingest(s, svc.blobs, principal, "bc", [b"a,y\\n1,0\\n2,1\\n"],
...                         Upload(filename="bc.csv", target="y"))
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import sqlalchemy.exc
from sqlalchemy.orm import Session

from consortium.data import catalog, memory
from consortium.data.archive import ZipLimits
from consortium.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from consortium.governance.principal import Principal
from consortium.governance.roles import Role
from consortium.governance.sealed import SealedBlobs
from consortium.store.tables.base import new_id
from consortium.store.tables.data import Dataset, DatasetVersion


@dataclass(frozen=True)
class Upload:
    filename: str = ""
    format: str | None = None  # csv | parquet | npz | image_zip; None: from the name or content
    target: str | None = None  # tabular: the target column
    sha256: str | None = None  # the client's checksum of the file, verified when given
    description: str = ""
    max_bytes: int | None = None
    limits: ZipLimits = ZipLimits()  # image zip and NPZ uploads


HEAD_BYTES = 16  # what format detection looks at


def _peek(chunks: Iterable[bytes], n: int) -> tuple[bytes, Iterator[bytes]]:
    """The first ``n`` bytes of a stream, and the whole stream still to read."""
    it, seen = iter(chunks), []
    size = 0
    while size < n:
        c = next(it, None)
        if c is None:
            break
        seen.append(c)
        size += len(c)
    return b"".join(seen)[:n], itertools.chain(seen, it)


class _Tap:
    """Counts, hashes and remembers the first bytes of a plaintext stream as it passes."""

    def __init__(self, chunks: Iterable[bytes], max_bytes: int | None) -> None:
        self.chunks, self.max_bytes = chunks, max_bytes
        self.sha, self.size, self.head = hashlib.sha256(), 0, b""

    def __iter__(self) -> Iterator[bytes]:
        for c in self.chunks:
            if not c:
                continue
            self.size += len(c)
            if self.max_bytes is not None and self.size > self.max_bytes:
                raise PayloadTooLarge(f"the upload exceeds the limit of {self.max_bytes} bytes",
                                      hint="raise CONSORTIUM_MAX_UPLOAD_BYTES on the hub")
            if len(self.head) < HEAD_BYTES:
                self.head += c[:HEAD_BYTES]
            self.sha.update(c)
            yield c


def _dataset_for_upload(session: Session, p: Principal, name: str, description: str) -> tuple[Dataset, bool]:
    catalog.check_name(name)
    p.require(Role.member, "uploading datasets")
    ds = catalog.find(session, p.org_name, name)
    if ds is not None:
        return ds, False
    return Dataset(id=new_id("ds"), org_id=p.org_id, name=name, description=description,
                   created_by=p.user_id), True


def ingest(session: Session, blobs: SealedBlobs, p: Principal, name: str, chunks: Iterable[bytes],
           up: Upload) -> tuple[DatasetVersion, bool]:
    """Store ``chunks`` as the next version of dataset ``name`` of the caller's organization
    (created if new). Returns (version, created)."""
    ds, new = _dataset_for_upload(session, p, name, up.description)
    head, chunks = _peek(chunks, HEAD_BYTES)
    from consortium.data import formats  # pyarrow: imported on the first upload, not at start

    formats.detect(up.filename, head, up.format)  # an image or a PDF is refused before anything is stored
    tap = _Tap(chunks, up.max_bytes)
    ref = blobs.put(session, p.org_id, tap, prefix="d")
    try:
        if tap.size == 0:
            raise InvalidInput("the file is empty", hint="upload a file with a header and data rows")
        checksum = "sha256:" + tap.sha.hexdigest()
        if up.sha256 and up.sha256.removeprefix("sha256:").lower() != tap.sha.hexdigest():
            raise InvalidInput(f"checksum mismatch: the hub received {checksum}, the client sent "
                               f"{up.sha256}", hint="the file changed or was cut short in transit; retry")
        fmt = formats.detect(up.filename, tap.head, up.format)

        def source() -> Iterator[bytes]:
            return blobs.stream(session, p.org_id, ref.key)

        try:
            fmt, schema = formats.profile(fmt, source, up.target, blobs.scratch_dir, up.limits)
        finally:
            memory.release(formats.tabular.POOL)  # back near the hub's level before the upload
        if not new:
            latest = _latest(session, ds)
            if latest is not None and latest.checksum == checksum and latest.target == schema.get("target"):
                blobs.delete(ref.key)
                return latest, False
        else:
            session.add(ds)
        v = DatasetVersion(id=new_id("dsv"), dataset_id=ds.id, version=catalog.next_version(session, ds),
                           format=fmt, kind=schema["kind"], filename=up.filename[:255], size_bytes=tap.size,
                           checksum=checksum, blob_key=ref.key, blob_size=ref.size, row_count=schema["rows"],
                           target=schema.get("target"), schema=schema, created_by=p.user_id)
        session.add(v)
        try:
            session.flush()
        except sqlalchemy.exc.IntegrityError:
            raise Conflict(f"another upload to {p.org_name}/{name} committed at the same time",
                           hint="retry the upload") from None
        return v, True
    except BaseException:
        blobs.delete(ref.key)
        raise


def _latest(session: Session, ds: Dataset) -> DatasetVersion | None:
    try:
        return catalog.version(session, ds, None)
    except NotFound:  # every version was deleted
        return None
