"""The blob store as the stages use it: every blob sealed with its organization's data key before
it reaches the store, and opened with it on the way back.

``SealedBlobs`` pairs a ``BlobStore`` (the local disk, or the object store of a scaled-out hub)
with the hub's ``KeyService``; ``Services.start`` builds the one ``Services.blobs``, and every
stage that stores or reads a blob is handed it. Nothing here knows which store it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from sqlalchemy.orm import Session

from consortium.governance.keys import KeyService
from consortium.store.blobs import BlobRef, BlobStore


class SealedBlobs:
    """Put and get blobs of an organization, sealed with its data key (AES-256-GCM, chunked)."""

    def __init__(self, store: BlobStore, keys: KeyService) -> None:
        self.store = store
        self.keys = keys

    @property
    def scratch_dir(self) -> Path:
        """The store's private local folder for temporary copies."""
        return self.store.scratch_dir

    def put(self, session: Session, org_id: str, chunks: Iterable[bytes], *, prefix: str = "b",
            max_bytes: int | None = None) -> BlobRef:
        """Seal ``chunks`` with ``org_id``'s key and store them; the ref comes back once durable
        (``max_bytes`` bounds the sealed size)."""
        return self.store.put(self.keys.encrypt_stream(session, org_id, chunks), prefix=prefix,
                              max_bytes=max_bytes)

    def stream(self, session: Session, org_id: str, key: str) -> Iterator[bytes]:
        """The opened content of blob ``key`` of ``org_id``, in chunks (``IntegrityError`` if altered)."""
        return self.keys.decrypt_stream(session, org_id, self.store.get(key))

    def read(self, session: Session, org_id: str, key: str) -> bytes:
        return b"".join(self.stream(session, org_id, key))

    def delete(self, key: str) -> None:
        self.store.delete(key)
