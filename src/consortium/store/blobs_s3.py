"""``S3BlobStore``: the ``BlobStore`` on an S3-compatible object store, for several hub replicas.

``CONSORTIUM_BLOB_URL=s3://bucket/prefix`` selects it (``Hub.start``); the endpoint is
``CONSORTIUM_S3_ENDPOINT_URL`` (empty: AWS itself), the region ``CONSORTIUM_S3_REGION``, and the
credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, an instance role). The store sees only what ``SealedBlobs`` hands it: ciphertext.

Crash safety, the object store's way: a body smaller than one part goes up in one ``PutObject``,
a larger one as a multipart upload, and S3 makes an object visible only when its upload completes
(``CompleteMultipartUpload`` is atomic). An error mid-body aborts the upload; a writer killed
mid-body leaves an unfinished multipart upload, invisible to readers but holding storage: the
S3 counterpart of the local store's ``.part`` files. A new store therefore lists the unfinished
uploads under its prefix and aborts those started more than ``part_grace_s`` ago (other replicas
upload beside it, so it cannot take them all the way a lone local writer does), and
``sweep_orphans`` aborts them too. Reads stream the object's body in chunks.

An object store that does not answer raises ``Unavailable`` (a 503 naming the blob store), and
``problem()`` says so to the readiness probe.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from consortium.errors import InvalidInput, NotFound, PayloadTooLarge, Unavailable
from consortium.store.blobs import PART_GRACE_S, READ_CHUNK, BlobRef

PART_SIZE = 8 << 20  # bytes per multipart part (S3's minimum is 5 MiB, except the last)
log = logging.getLogger("consortium.store")


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")``.

    >>> parse_s3_url("s3://blobs/hub-1/"), parse_s3_url("s3://blobs")
    (('blobs', 'hub-1'), ('blobs', ''))
    """
    u = urlparse(url)
    if u.scheme != "s3" or not u.netloc:
        raise InvalidInput(f"blob URL {url!r} is not s3://bucket/prefix",
                           hint="set CONSORTIUM_BLOB_URL to s3://bucket/prefix, or leave it empty for the local disk")
    return u.netloc, u.path.strip("/")


class S3BlobStore:
    """``BlobStore`` in ``bucket`` under ``prefix``, through boto3 (``client`` for tests that bring one)."""

    def __init__(self, url: str, *, endpoint_url: str | None = None, region: str | None = None,
                 scratch: str | Path | None = None, part_size: int = PART_SIZE,
                 part_grace_s: float = PART_GRACE_S, client: Any = None) -> None:
        self.bucket, prefix = parse_s3_url(url)
        self.prefix = f"{prefix}/" if prefix else ""
        self.part_size = max(part_size, 1)
        self._scratch = Path(scratch) if scratch is not None else Path(tempfile.mkdtemp(prefix="consortium-s3-"))
        self._scratch.mkdir(parents=True, exist_ok=True)
        self._client = client if client is not None else _client(endpoint_url, region)
        try:
            self.parts_swept = self._abort_unfinished(part_grace_s)
        except Unavailable:  # the hub starts anyway: readiness says 503, uploads a clear error
            log.warning("the blob store at %s does not answer; unfinished uploads are swept later",
                        endpoint_url or "AWS S3")
            self.parts_swept = 0

    # -------------------------------------------------------------------- protocol
    @property
    def scratch_dir(self) -> Path:
        return self._scratch

    def put(self, chunks: Iterable[bytes], *, max_bytes: int | None = None, prefix: str = "b") -> BlobRef:
        key = f"{prefix}{secrets.token_hex(16)}"
        name = self._name(key)
        h = hashlib.sha256()
        size = 0
        buf = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            for c in chunks:
                size += len(c)
                if max_bytes is not None and size > max_bytes:
                    raise PayloadTooLarge(f"blob exceeds the limit of {max_bytes} bytes")
                h.update(c)
                buf += c
                while len(buf) >= self.part_size:
                    if upload_id is None:
                        upload_id = self._call("create_multipart_upload", Bucket=self.bucket, Key=name)["UploadId"]
                    part, buf = bytes(buf[:self.part_size]), buf[self.part_size:]
                    parts.append(self._part(name, upload_id, len(parts) + 1, part))
            if upload_id is None:  # small: one request, atomic by itself
                self._call("put_object", Bucket=self.bucket, Key=name, Body=bytes(buf))
            else:
                if buf:
                    parts.append(self._part(name, upload_id, len(parts) + 1, bytes(buf)))
                self._call("complete_multipart_upload", Bucket=self.bucket, Key=name, UploadId=upload_id,
                           MultipartUpload={"Parts": parts})
                upload_id = None
        except BaseException:
            if upload_id is not None:
                self._abort(name, upload_id)
            raise
        return BlobRef(key, size, h.hexdigest())

    def get(self, key: str) -> Iterator[bytes]:
        """The object's body, streamed in chunks (opened before the first chunk: a missing blob
        raises ``NotFound`` here, not mid-download)."""
        try:
            body = self._call("get_object", Bucket=self.bucket, Key=self._name(key))["Body"]
        except NotFound:
            raise NotFound(f"blob {key} is missing from the store") from None
        return _stream(body)

    def exists(self, key: str) -> bool:
        try:
            self._call("head_object", Bucket=self.bucket, Key=self._name(key))
        except NotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        self._call("delete_object", Bucket=self.bucket, Key=self._name(key))  # S3: no error when absent

    def sweep_orphans(self, known: set[str], older_than_s: float = 3600) -> int:
        """Delete objects under the prefix that no row names, older than ``older_than_s``, and
        abort unfinished uploads as old."""
        cutoff, removed = time.time() - older_than_s, 0
        for page in self._pages("list_objects_v2"):
            for obj in page.get("Contents", []):
                key = obj["Key"][len(self.prefix):]
                if key in known or "/" in key or obj["LastModified"].timestamp() > cutoff:
                    continue
                self._call("delete_object", Bucket=self.bucket, Key=obj["Key"])
                removed += 1
        return removed + self._abort_unfinished(older_than_s)

    def problem(self) -> str | None:
        """None when the bucket answers; else what went wrong, without the store's own words."""
        try:
            self._call("head_bucket", Bucket=self.bucket)
        except Unavailable:
            return "the blob store does not answer"
        except NotFound:
            return "the blob store's bucket does not exist"
        except Exception:  # noqa: BLE001 - the probe reports, it does not raise
            return "the blob store refused the request"
        return None

    def close(self) -> None:
        self._client.close()

    # -------------------------------------------------------------------- helpers
    def _name(self, key: str) -> str:
        if not key or "/" in key or ".." in key:
            raise NotFound(f"no blob {key!r}")
        return self.prefix + key

    def _part(self, name: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        r = self._call("upload_part", Bucket=self.bucket, Key=name, UploadId=upload_id, PartNumber=number, Body=data)
        return {"ETag": r["ETag"], "PartNumber": number}

    def _abort(self, name: str, upload_id: str) -> None:
        try:
            self._call("abort_multipart_upload", Bucket=self.bucket, Key=name, UploadId=upload_id)
        except Exception:  # noqa: BLE001 - the sweep at the next start aborts it
            log.warning("could not abort the unfinished upload of %s; the next start's sweep will", name)

    def _abort_unfinished(self, older_than_s: float) -> int:
        """Abort multipart uploads under the prefix started more than ``older_than_s`` ago."""
        now, aborted = datetime.now(UTC), 0
        for page in self._pages("list_multipart_uploads"):
            for u in page.get("Uploads", []):
                if (now - u["Initiated"]).total_seconds() >= older_than_s:
                    self._abort(u["Key"], u["UploadId"])
                    aborted += 1
        if aborted:
            log.info("aborted %d unfinished blob upload(s) left by an interrupted writer", aborted)
        return aborted

    def _call(self, op: str, **kw: Any) -> Any:
        """One client call, with the store's failures in the hub's error families."""
        with _translated(kw.get("Key") or kw.get("Bucket")):
            return getattr(self._client, op)(**kw)

    def _pages(self, op: str) -> Iterator[dict[str, Any]]:
        """The pages of a listing under the prefix."""
        from botocore.exceptions import ClientError

        with _translated(self.bucket):
            try:
                yield from self._client.get_paginator(op).paginate(Bucket=self.bucket, Prefix=self.prefix)
            except ClientError as e:  # gofakes3 (rclone serve s3) answers a bucket that never had an upload so
                if e.response.get("Error", {}).get("Code") != "NoSuchUpload":
                    raise


@contextmanager
def _translated(what: str | None) -> Iterator[None]:
    """botocore's errors as the hub's: a missing object ``NotFound``, a store that does not answer
    (no connection, a timeout, a 5xx) ``Unavailable``; anything else as it came."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code")
        if code in ("NoSuchKey", "404", "NotFound", "NoSuchBucket"):
            raise NotFound(f"not in the blob store: {what}") from None
        if e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500:
            raise _unavailable() from e
        raise
    except BotoCoreError as e:  # could not connect, timed out, ...
        raise _unavailable() from e


def _unavailable() -> Unavailable:
    return Unavailable("the blob store does not answer; nothing was stored",
                       hint="try again shortly; an operator should check the object store "
                            "(CONSORTIUM_BLOB_URL, CONSORTIUM_S3_ENDPOINT_URL)")


def _stream(body: Any) -> Iterator[bytes]:
    try:
        with _translated("a blob being read"):
            yield from body.iter_chunks(READ_CHUNK)
    finally:
        body.close()


def _client(endpoint_url: str | None, region: str | None) -> Any:
    import boto3
    from botocore.config import Config

    cfg = Config(connect_timeout=3, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"},
                 s3={"addressing_style": "path"} if endpoint_url else {})
    return boto3.client("s3", endpoint_url=endpoint_url or None, region_name=region or None, config=cfg)
