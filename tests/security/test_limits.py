"""Limits on what callers control (security issue 15): integers past 64 bits are a 4xx, never a
500 from the database; model and recipe sizes are bounded at submission; stray upload temp files
are swept; the data directory is private; every response carries the browser security headers;
an image uploaded on its own is refused as an unsupported format."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
from registry_models import tiny_classifier

BIG = 2**63  # one past SQLite's INTEGER and PostgreSQL's BIGINT
BIG32 = 2**31  # one past PostgreSQL's INTEGER (version numbers, job event ids)
API = "/api/v1"


@pytest.fixture(scope="module")
def owner(world: Any) -> Any:
    return world.actor(world.org(), "admin")


@pytest.fixture(scope="module")
def made(http: Any, owner: Any) -> dict[str, str]:
    """A dataset, a model with a version, a queued job and a project, all owned by ``owner``."""
    r = http.post(f"{API}/datasets/import-sample", json={"sample": "iris", "name": "iris"}, headers=owner.headers)
    assert r.status_code == 201, r.text
    r = http.post(f"{API}/models/upload", params={"name": "tiny", "filename": "m.onnx"}, content=tiny_classifier(),
                  headers={**owner.headers, "content-type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    recipe = {"name": "iris-mlp", "data": {"dataset": f"{owner.org}/iris", "target": "target"},
              "model": {"type": "mlp", "hidden": [8]}, "train": {"epochs": 1}}
    r = http.post(f"{API}/jobs", json={"recipe": recipe}, headers=owner.headers)
    assert r.status_code == 201, r.text
    job = r.json()["id"]
    r = http.post(f"{API}/projects", json={"name": "limits-prj", "purpose": "tests", "terms": ["metadata"]},
                  headers=owner.headers)
    assert r.status_code == 201, r.text
    return {"job": job, "project": r.json()["name"], "dataset": f"{owner.org}/iris", "model": f"{owner.org}/tiny"}


def _big_gets(made: dict[str, str]) -> list[str]:
    ds, m = made["dataset"], made["model"]
    return [
        f"{API}/audit?since_seq={BIG}",
        f"{API}/projects/{made['project']}/audit?since_seq={BIG}",
        f"{API}/jobs/{made['job']}/events?after={BIG}",
        f"{API}/datasets/{ds}/versions/{BIG}",
        f"{API}/datasets/{ds}/versions/{BIG}/preview",
        f"{API}/datasets/{ds}/versions/{BIG}/download",
        f"{API}/models/{m}/versions/{BIG}",
        f"{API}/models/{m}/versions/{BIG}/onnx",
        f"{API}/models/{m}/versions/{BIG}/plots/roc",
    ]


def test_integers_of_64_bits_or_more_are_refused_not_a_500(http: Any, owner: Any, made: dict[str, str]) -> None:
    for url in _big_gets(made):
        r = http.get(url, headers=owner.headers)
        assert 400 <= r.status_code < 500, f"GET {url}: {r.status_code} {r.text[:300]}"
        assert r.json()["error"]["code"] in ("invalid_input", "bad_request"), url
    r = http.delete(f"{API}/datasets/{made['dataset']}/versions/{BIG}", headers=owner.headers)
    assert 400 <= r.status_code < 500, r.text
    r = http.post(f"{API}/models/{made['model']}/versions/{BIG}/explain", json={"inputs": [1, 2, 3, 4]},
                  headers=owner.headers)
    assert 400 <= r.status_code < 500, r.text
    for version in (BIG, str(BIG)):
        r = http.put(f"{API}/models/{made['model']}/aliases/prod", json={"version": version}, headers=owner.headers)
        assert 400 <= r.status_code < 500, f"alias to {version!r}: {r.status_code} {r.text[:300]}"
    recipe = {"name": "big", "data": {"dataset": made["dataset"], "version": BIG, "target": "target"}}
    r = http.post(f"{API}/jobs", json={"recipe": recipe}, headers=owner.headers)
    assert r.status_code == 422 and "data.version" in r.json()["error"]["message"], r.text
    r = http.get(f"/models/{made['model']}/versions/{BIG}", headers={**owner.headers, "accept": "text/html"})
    assert 400 <= r.status_code < 500, r.text[:300]
    # 32-bit columns (version numbers, job event ids) are bounded by their own width
    for url in (f"{API}/datasets/{made['dataset']}/versions/{BIG32}", f"{API}/models/{made['model']}/versions/{BIG32}",
                f"{API}/jobs/{made['job']}/events?after={BIG32}"):
        r = http.get(url, headers=owner.headers)
        assert r.status_code == 422, f"GET {url}: {r.status_code} {r.text[:300]}"
    # numbers just below the bound are ordinary: not found, or nothing after them
    r = http.get(f"{API}/datasets/{made['dataset']}/versions/{BIG32 - 1}", headers=owner.headers)
    assert r.status_code == 404, r.text
    r = http.get(f"{API}/audit?since_seq={BIG - 1}", headers=owner.headers)
    assert r.status_code == 200 and r.json()["items"] == [], r.text
    r = http.get(f"{API}/jobs/{made['job']}/events?after={BIG32 - 1}", headers=owner.headers)
    assert r.status_code == 200 and r.json()["items"] == [], r.text


def test_job_stream_refuses_a_huge_position_before_sending_headers(http: Any, owner: Any,
                                                                  made: dict[str, str]) -> None:
    url = f"{API}/jobs/{made['job']}/stream"
    with http.stream("GET", url, params={"after": BIG}, headers=owner.headers) as r:
        assert r.status_code == 422
        assert "after" in r.read().decode()
    with http.stream("GET", url, params={"after": BIG32}, headers=owner.headers) as r:
        assert r.status_code == 422
    with http.stream("GET", url, headers={**owner.headers, "last-event-id": str(BIG)}) as r:
        assert r.status_code == 422


def test_openapi_shows_the_64_bit_bound(http: Any, owner: Any) -> None:
    spec = http.get("/openapi.json", headers=owner.headers).json()
    params = {p["name"]: p for p in spec["paths"][f"{API}/audit"]["get"]["parameters"]}
    assert params["since_seq"]["schema"]["maximum"] == BIG - 1
    params = {p["name"]: p for p in spec["paths"][f"{API}/jobs/{{job_id}}/stream"]["get"]["parameters"]}
    assert params["after"]["schema"]["maximum"] == BIG32 - 1


def test_body_numbers_that_reach_the_database_or_a_date_are_bounded(http: Any, owner: Any,
                                                                    made: dict[str, str]) -> None:
    h = owner.headers
    r = http.post(f"{API}/deployments", json={"name": "dep-big", "model": f"{made['model']}:{BIG}"}, headers=h)
    assert r.status_code == 422, r.text
    r = http.post(f"{API}/deployments", json={"name": "dep-limits", "model": made["model"]}, headers=h)
    assert r.status_code == 201, r.text
    for patch in ({"retrain": {"window_minutes": BIG}}, {"retrain": {"cooldown_minutes": 10**15}},
                  {"drift": {"min_rows": BIG}}):
        r = http.patch(f"{API}/deployments/dep-limits/monitoring", json=patch, headers=h)
        assert r.status_code == 422, f"{patch}: {r.status_code} {r.text[:200]}"
    r = http.post(f"{API}/deployments/dep-limits/monitoring/check", headers=h)
    assert r.status_code == 200, r.text
    r = http.post(f"{API}/projects", json={"name": "prj-quota", "purpose": "x", "terms": ["metadata"],
                                           "default_quota": {"per_minute": BIG}}, headers=h)
    assert r.status_code == 422 and "per_minute" in r.json()["error"]["message"]
    for extra in ({"seed": BIG}, {"part": BIG}):
        r = http.post(f"{API}/datasets/import-sample", json={"sample": "iris", "name": "iris-big", "partitions": 2,
                                                             **extra}, headers=h)
        assert r.status_code == 422, r.text
    recipe = {"name": "seed", "data": {"dataset": made["dataset"], "target": "target"}, "train": {"seed": BIG}}
    r = http.post(f"{API}/jobs", json={"recipe": recipe}, headers=h)
    assert r.status_code == 422 and "train.seed" in r.json()["error"]["message"], r.text


def test_an_overflow_that_still_reaches_the_database_is_a_400(services: Any, owner: Any) -> None:
    """The safety net: a query with a number past 64 bits answers 400, audited, not a 500."""
    from fastapi import Depends
    from fastapi.testclient import TestClient
    from sqlalchemy import BigInteger, cast, literal, select

    from consortium.api.access import rule
    from consortium.api.deps import caller, unit_of_work
    from consortium.web import create_app
    app = create_app(services.settings, services=services)

    @app.get("/api/v1/overflow-probe")
    @rule("self")
    def probe(p: Any = Depends(caller), session: Any = Depends(unit_of_work)) -> int:
        return int(session.scalar(select(cast(literal(BIG), BigInteger))))

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/api/v1/overflow-probe", headers=owner.headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request", r.text


# --------------------------------------------------------------------------- finding 9: model and recipe sizes
def _submit(http: Any, actor: Any, recipe: dict[str, Any]) -> Any:
    return http.post(f"{API}/jobs", json={"recipe": recipe}, headers=actor.headers)


def test_a_huge_model_is_refused_at_submission_with_its_count_and_the_limit(http: Any, owner: Any,
                                                                           made: dict[str, str]) -> None:
    from consortium.recipe import MLPSpec
    from consortium.training.model_size import parameter_count

    base = {"name": "huge", "data": {"dataset": made["dataset"], "target": "target"}}
    r = _submit(http, owner, {**base, "model": {"type": "mlp", "hidden": [65536, 65536]}})
    assert r.status_code == 422, r.text
    count = parameter_count(MLPSpec(hidden=[65536, 65536]), (4,), 3)  # iris: 4 features, 3 classes
    msg = r.json()["error"]["message"]
    assert f"{count:,} parameters" in msg and "50,000,000" in msg, msg
    assert r.json()["error"]["details"] == {"parameters": count, "limit": 50_000_000}
    # a tuned width is counted at the top of its range
    tuned = {**base, "model": {"type": "mlp", "hidden": [8, 8]}, "train": {"epochs": 1},
             "tune": {"trials": 2, "space": {"model.hidden.0": {"low": 8, "high": 65536},
                                             "model.hidden.1": {"choices": [8, 65536]}}}}
    r = _submit(http, owner, tuned)
    assert r.status_code == 422 and "parameters" in r.json()["error"]["message"], r.text
    # under the limit, the same recipe queues
    r = _submit(http, owner, {**base, "model": {"type": "mlp", "hidden": [256, 256]}, "train": {"epochs": 1}})
    assert r.status_code == 201, r.text


def test_a_huge_cnn_on_images_is_refused(http: Any, owner: Any) -> None:
    r = http.post(f"{API}/datasets/import-sample", json={"sample": "digits", "name": "digits"}, headers=owner.headers)
    assert r.status_code == 201, r.text
    recipe = {"name": "cnn", "data": {"dataset": f"{owner.org}/digits"},
              "model": {"type": "cnn", "channels": [4096, 4096], "pool": 1, "dense": [1024]}}
    r = _submit(http, owner, recipe)
    assert r.status_code == 422 and "parameters (input (1, 8, 8), 10 outputs)" in r.json()["error"]["message"], r.text


@pytest.mark.parametrize(("section", "value", "field"), [
    ("train", {"batch_size": 10**7}, "train.batch_size"),
    ("train", {"epochs": 10**7}, "train.epochs"),
    ("model", {"type": "mlp", "hidden": [8] * 100}, "model.hidden"),
    ("model", {"type": "mlp", "hidden": [10**9]}, "model.hidden.0"),
    ("model", {"type": "cnn", "kernel_size": 10**4}, "model.kernel_size"),
    ("model", {"type": "cnn", "channels": [10**6]}, "model.channels.0"),
    ("tune", {"trials": 10**6, "space": {"train.lr": {"low": 0.001, "high": 0.1}}}, "tune.trials"),
    ("tune", {"space": {"model.hidden.0": {"low": 8, "high": 10**9}}}, "model.hidden.0"),
    ("augment", [{"affine": {"translate": [50, 50]}}], "augment.0.affine.translate.0"),
    ("augment", [{"gaussian_noise": {"std": 1e9}}], "augment.0.gaussian_noise.std"),
    ("process", [{"one_hot": {"max_categories": 10**9}}], "process.0.one_hot.max_categories"),
    ("federated", {"datasets": ["a/b"], "local_epochs": 10**7}, "federated.local_epochs"),
])
def test_recipe_sizes_are_bounded_with_a_422_naming_the_field(http: Any, owner: Any, made: dict[str, str],
                                                              section: str, value: Any, field: str) -> None:
    recipe = {"name": "big", "data": {"dataset": made["dataset"], "target": "target"},
              "model": {"type": "mlp", "hidden": [8]}, section: value}
    r = _submit(http, owner, recipe)
    assert r.status_code == 422, r.text
    assert field in r.json()["error"]["message"], r.json()["error"]["message"]


def test_parameter_count_is_what_the_built_model_has() -> None:
    from consortium.errors import InvalidInput
    from consortium.recipe import CNNSpec, LogisticSpec, MLPSpec
    from consortium.training.model_size import parameter_count
    from consortium.training.models import build_model, count_parameters

    cases = [(MLPSpec(hidden=[16, 8], batch_norm=True), (30,), 2), (MLPSpec(hidden=[]), (1, 8, 8), 10),
             (LogisticSpec(), (3, 4, 4), 1),
             (CNNSpec(channels=[4, 8], kernel_size=3, pool=2, batch_norm=True, dense=[16]), (3, 16, 16), 5),
             (CNNSpec(channels=[4, 4], kernel_size=5, padding="valid", pool=3, dense=[]), (1, 28, 20), 3),
             (CNNSpec(channels=[2], pool=4, dense=[7, 5]), (2, 3, 3), 4)]
    for spec, shape, n_out in cases:
        assert parameter_count(spec, shape, n_out) == count_parameters(build_model(spec, shape, n_out)), spec
    with pytest.raises(InvalidInput, match=r"3,005,002 parameters.* limit of 1,000,000"):
        build_model(MLPSpec(hidden=[1000, 1000, 1000]), (1000,), 2, max_params=1_000_000)


# --------------------------------------------------------------------------- finding 10: unfinished uploads
WRITER = """
import sys, time
from consortium.store.blobs import LocalBlobStore
store = LocalBlobStore(sys.argv[1])
def chunks():
    yield b"x" * 4096
    print("writing", flush=True)
    time.sleep(600)
store.put(chunks())
"""


def test_a_part_file_of_a_killed_writer_is_swept_when_a_store_opens(tmp_path: Path) -> None:
    """A writer killed with SIGKILL mid-blob leaves ``tmp/*.part``: the next store on the directory
    removes it, unless another writer is alive there (then only once untouched for the grace period)."""
    import os
    import signal
    import subprocess
    import time

    from consortium.store.blobs import LocalBlobStore

    root = tmp_path / "blobs"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(root)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
        [part] = list((root / "tmp").glob("*.part"))
        old = root / "tmp" / "b-stale.part"  # an older crash's, untouched for two hours
        old.write_bytes(b"y")
        os.utime(old, (time.time() - 7200, time.time() - 7200))
        beside = LocalBlobStore(root)  # a second process's store while the writer is alive
        assert part.exists() and not old.exists() and beside.parts_swept == 1
        beside.close()
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
        assert part.exists()  # the killed upload's file stays behind ...
        store = LocalBlobStore(root)  # ... until the next store opens alone
        assert not part.exists() and store.parts_swept == 1
        ref = store.put([b"still works"])
        assert b"".join(store.get(ref.key)) == b"still works" and not list((root / "tmp").glob("*.part"))
        store.close()
    finally:
        writer.kill()
        writer.wait(10)


# --------------------------------------------------------------------------- finding 13: a private data directory
CLI = Path(sys.executable).parent / "consortium"


@pytest.mark.skipif(not CLI.exists(), reason="the consortium command is not installed next to this Python")
def test_the_hub_keeps_its_data_directory_private(tmp_path: Path) -> None:
    """``consortium serve`` on a new home creates every file 0600 and directory 0700 (the SQLite
    database and its -wal/-shm too), and closes what an earlier version left readable."""
    import os
    import signal
    import stat
    import subprocess

    import httpx
    from support import wait_for

    from consortium.federation.engine.network import free_port

    home = tmp_path / "home"
    (home / "logs").mkdir(parents=True, mode=0o755)
    home.chmod(0o755)
    (home / "logs").chmod(0o755)
    (home / "logs" / "old.log").write_text("left by an earlier version")
    (home / "logs" / "old.log").chmod(0o644)
    port = free_port()
    env = {**os.environ, "CONSORTIUM_HOME": str(home), "CONSORTIUM_PORT": str(port), "CONSORTIUM_WORKERS": "0"}
    env.pop("CONSORTIUM_DATABASE_URL", None)
    hub = subprocess.Popen([str(CLI), "serve"], env=env, stdout=subprocess.DEVNULL,
                           stderr=open(tmp_path / "hub.log", "wb"))  # the child keeps it

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(lambda: hub.poll() is not None or healthy(), 90, what="the hub to answer")
        assert hub.poll() is None, (tmp_path / "hub.log").read_text()[-3000:]
        names = {p.relative_to(home).as_posix() for p in home.rglob("*")}
        assert {"consortium.db", "consortium.db-wal", "consortium.db-shm", "blobs", "blobs/tmp",
                "blobs/.writers.lock", "logs/old.log"} <= names, names
        modes = {name: stat.S_IMODE((home / name).lstat().st_mode) for name in names}
        readable = {name: oct(m) for name, m in modes.items() if m & 0o077}
        assert not readable, f"readable by others: {readable}"
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        assert modes["consortium.db"] == modes["consortium.db-wal"] == 0o600 and modes["blobs"] == 0o700
    finally:
        hub.send_signal(signal.SIGTERM)
        hub.wait(30)


# --------------------------------------------------------------------------- finding 14c: browser security headers
def _common(r: Any) -> None:
    assert r.headers["x-content-type-options"] == "nosniff", r.url
    assert r.headers["x-frame-options"] == "DENY" and r.headers["referrer-policy"] == "same-origin", r.url


def test_pages_get_a_content_security_policy_and_every_answer_nosniff(http: Any, owner: Any,
                                                                      made: dict[str, str]) -> None:
    import re

    page = http.get("/login")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    _common(page)
    csp = dict(d.strip().split(" ", 1) for d in page.headers["content-security-policy"].split(";"))
    assert csp["script-src"] == "'self'" and csp["style-src"].startswith("'self' 'sha256-"), csp
    assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'" and csp["base-uri"] == "'none'"
    assert "<script>" not in page.text and "style=" not in page.text  # nothing inline for the policy to refuse
    signed_in = http.get("/", headers={**owner.headers, "accept": "text/html"})
    assert signed_in.status_code == 200 and "'unsafe-inline'" not in signed_in.headers["content-security-policy"]
    api = http.get(f"{API}/me", headers=owner.headers)
    assert api.status_code == 200 and api.headers["content-type"] == "application/json"
    _common(api)
    assert api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    for r in (http.get(f"{API}/nope", headers=owner.headers), http.get("/healthz"),
              http.get("/static/js/core.js"),
              http.post(f"{API}/deployments/no-such-deployment/predict", json={"inputs": [[1, 2, 3, 4]]},
                        headers=owner.headers)):  # the serving front's answer
        _common(r)
    docs = http.get("/docs", headers=owner.headers)
    assert docs.status_code == 200
    _common(docs)
    nonce = re.search(r"<script nonce=\"([^\"]+)\">", docs.text)
    assert nonce and f"'nonce-{nonce.group(1)}'" in docs.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in docs.headers["content-security-policy"]


# --------------------------------------------------------------------------- finding 14d: a lone image as a dataset
def test_an_image_uploaded_alone_is_an_unsupported_format(http: Any, owner: Any, services: Any) -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (8, 8), 0).save(buf, format="PNG")
    before = {p.name for p in Path(services.blobs.store.root).glob("*/*")}
    for params in ({"filename": "scan.png"}, {}):  # by its name, and by its bytes alone
        r = http.post(f"{API}/datasets/{owner.org}/scan/versions/upload", params=params, content=buf.getvalue(),
                      headers=owner.headers)
        assert r.status_code == 415, r.text
        err = r.json()["error"]
        assert err["code"] == "unsupported_format" and "PNG image" in err["message"], err
        assert all(f in err["message"] for f in ("CSV", "Parquet", "NPZ", "ZIP of PNG/JPEG images")), err
        assert "UTF-8" not in err["message"] and "zip" in err["hint"].lower()
    assert {p.name for p in Path(services.blobs.store.root).glob("*/*")} == before  # nothing was stored
    assert http.get(f"{API}/datasets/{owner.org}/scan", headers=owner.headers).status_code == 404
