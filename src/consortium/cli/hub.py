"""Commands that run the hub itself: ``up`` (with the demo), ``serve`` and ``worker``."""

from __future__ import annotations

import os
import signal
import threading
from typing import TYPE_CHECKING, Any

import typer

from consortium.cli.common import console
from consortium.procutil import settle_gc

if TYPE_CHECKING:  # the CLI imports the hub's modules only when a command runs
    from consortium.config import Settings
    from consortium.federation.engine.local_nodes import LocalNodes
    from consortium.services import Services


def _settings(home: str | None, port: int | None, host: str | None, tls: bool = False) -> Settings:
    from consortium.config import Settings

    kw: dict[str, Any] = {k: v for k, v in {"home": home, "port": port, "host": host}.items() if v is not None}
    settings = Settings(**kw)
    if tls and settings.public_url.startswith("http://"):
        settings.public_url = "https://" + settings.public_url.removeprefix("http://")
    return settings


def _sweep_blobs(svc: Services) -> None:
    if svc.blobs.store.parts_swept:
        console.print(f"removed {svc.blobs.store.parts_swept} unfinished upload file(s) left by an "
                      "interrupted hub")
    swept = svc.sweep_blobs()
    if swept:
        console.print(f"removed {swept} stray blob file(s) that no dataset or model refers to")


def _run(settings: Settings, demo: bool, tls: tuple[str, str] | None = None) -> None:
    """Serve the hub (``tls``: certificate and key PEM files for HTTPS)."""
    from consortium.services import Services
    from consortium.store.home import make_private, private_database
    from consortium.web import create_app

    make_private(settings.home)  # before anything is opened: files 0600, directories 0700, workers too
    private_database(settings.database_url)
    if settings.executor == "ray":  # fail now, saying how to start a cluster, not at the first job
        from consortium.jobs.executors import require_cluster

        cluster = require_cluster(settings)
    svc = Services.start(settings)
    nodes = None
    if demo:
        from consortium.demo import credentials_path, seed_demo

        creds = seed_demo(svc)
        console.rule("[bold]Consortium demo")
        console.print(f"hub:  [bold]{settings.public_url}[/bold]   (API docs: {settings.public_url}/docs)")
        for o in creds["organizations"]:
            console.print(f"  [bold]{o['display_name']}[/bold] ({o['name']}): {o['email']} / {o['password']}")
            console.print(f"    token: {o['token']}")
        console.print(f"credentials saved in {credentials_path(svc)}")
        console.print("try:  export CONSORTIUM_TOKEN=<a token above>; consortium whoami")
        console.rule()
    app = create_app(settings, services=svc)
    threading.Thread(target=_sweep_blobs, args=(svc,), daemon=True, name="blob-sweep").start()  # off start-up
    pool = None
    if settings.executor == "ray":  # one dispatcher hands the queue's jobs to the cluster
        from consortium.jobs.worker import WorkerPool

        pool = WorkerPool(settings, 1).start()
        console.print(f"started the Ray job dispatcher ({cluster})")
    elif settings.workers > 0:
        from consortium.jobs.worker import WorkerPool

        pool = WorkerPool(settings, settings.workers).start()
        console.print(f"started {settings.workers} job worker process(es)")
    if demo and settings.demo_nodes:
        nodes = _start_demo_nodes(settings, creds)
        console.print(f"started a node for each demo organization (its rows in {settings.demo_sites}/<org>, "
                      f"outside the hub's home; logs in {settings.home / 'logs'}); federated jobs train on them")
    # uvicorn stops gracefully on SIGTERM, then raises the signal again: with the default handler
    # the process would die there, before the finally below stops the workers and nodes.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        cert, key = tls or (None, None)
        _serve(app, settings, host=settings.host, port=settings.port, log_level="info", access_log=False,
               ssl_certfile=cert, ssl_keyfile=key)
    finally:
        if nodes is not None:
            nodes.stop()
        if pool is not None:
            pool.stop()
        svc.close()


def _serve(app: Any, settings: Settings, **kw: Any) -> None:
    """uvicorn until SIGTERM, which stops accepting and lets in-flight requests finish (for up to
    ``shutdown_grace_s``). With ``http_workers`` > 1, uvicorn's supervisor forks that many
    processes on the one port; each builds its own app from the settings its environment carries
    (the command's options are put there first), and this process keeps the job workers."""
    import uvicorn

    kw["timeout_graceful_shutdown"] = settings.shutdown_grace_s
    if settings.http_workers > 1:
        os.environ.update(_settings_env(settings))
        console.print(f"serving with {settings.http_workers} HTTP worker processes")
        uvicorn.run("consortium.web:server_app", factory=True, workers=settings.http_workers, **kw)
    else:
        settle_gc()  # the app is built: the collector's pauses stay out of the answers
        uvicorn.run(app, **kw)


def _settings_env(settings: Settings) -> dict[str, str]:
    """What the command's options set, as the environment an HTTP worker process reads."""
    return {"CONSORTIUM_HOME": str(settings.home), "CONSORTIUM_PORT": str(settings.port),
            "CONSORTIUM_HOST": settings.host, "CONSORTIUM_DATABASE_URL": settings.database_url,
            "CONSORTIUM_PUBLIC_URL": settings.public_url, "CONSORTIUM_HTTP_WORKERS": str(settings.http_workers)}


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _start_demo_nodes(settings: Settings, creds: dict[str, Any]) -> LocalNodes:
    """One standing ``consortium node`` agent per demo organization, against this hub on loopback,
    each reading its site's own directory (``Settings.demo_sites/<org>``) and publishing it."""
    from consortium.federation.engine.local_nodes import LocalNodes
    from consortium.federation.engine.network import ALL_INTERFACES

    host = settings.host if settings.host not in ALL_INTERFACES else "127.0.0.1"
    url = f"http://{'[' + host + ']' if ':' in host else host}:{settings.port}"
    return LocalNodes(url, settings.home, sites=settings.demo_sites, publish=True).start(
        {o["name"]: o["token"] for o in creds["organizations"]})


def up(home: str = typer.Option(None, envvar="CONSORTIUM_HOME", help="Data directory."),
       port: int = typer.Option(None, envvar="CONSORTIUM_PORT", help="Port (default 8000)."),
       host: str = typer.Option(None, envvar="CONSORTIUM_HOST", help="Interface (default 127.0.0.1).")) -> None:
    """Start the hub with the embedded default (SQLite, local blobs, local workers) and seed the demo
    consortium: a hospital, a clinic and a lab, each with an owner, an API token and a node (a
    `consortium node` process on this machine; CONSORTIUM_DEMO_NODES=false for none). Safe to re-run."""
    _run(_settings(home, port, host), demo=True)


def serve(home: str = typer.Option(None, envvar="CONSORTIUM_HOME", help="Data directory."),
          port: int = typer.Option(None, envvar="CONSORTIUM_PORT", help="Port (default 8000)."),
          host: str = typer.Option(None, envvar="CONSORTIUM_HOST", help="Interface (default 127.0.0.1)."),
          tls_cert: str = typer.Option(None, "--tls-cert", envvar="CONSORTIUM_TLS_CERT",
                                       help="Serve HTTPS with this certificate (PEM, with its chain)."),
          tls_key: str = typer.Option(None, "--tls-key", envvar="CONSORTIUM_TLS_KEY",
                                      help="The certificate's private key (PEM)."),
          http_workers: int = typer.Option(
              None, "--http-workers", envvar="CONSORTIUM_HTTP_WORKERS", min=1, max=64,
              help="HTTP server processes accepting on the one port (default 1); each is a whole hub "
                   "process on the same database: use PostgreSQL."),
          job_workers: int = typer.Option(
              None, "--job-workers", envvar="CONSORTIUM_WORKERS", min=0,
              help="Job worker processes (training, evaluation) this hub starts (default 1; 0: none, "
                   "run `consortium worker` elsewhere). CONSORTIUM_WORKERS keeps this meaning.")) -> None:
    """Start the hub only (no demo data). Settings come from CONSORTIUM_* environment variables.

    Two kinds of worker: --http-workers N serves requests in N processes on one port, and
    --job-workers N (CONSORTIUM_WORKERS) runs jobs.

    Replicas on several machines share PostgreSQL (CONSORTIUM_DATABASE_URL) and an object store
    (CONSORTIUM_BLOB_URL=s3://bucket/prefix), behind a load balancer that checks /readyz; see
    "Running in production" in the README."""
    from pathlib import Path

    if bool(tls_cert) != bool(tls_key):
        raise typer.BadParameter("give --tls-cert and --tls-key together")
    for f in (tls_cert, tls_key):
        if f and not Path(f).is_file():
            raise typer.BadParameter(f"no file {f!r}: give the PEM files of the hub's certificate and key")
    tls = (tls_cert, tls_key) if tls_cert else None
    settings = _settings(home, port, host, tls=tls is not None)
    if http_workers is not None:
        settings.http_workers = http_workers
    if job_workers is not None:
        settings.workers = job_workers
    _run(settings, demo=False, tls=tls)


def worker(once: bool = typer.Option(False, help="Run one job (if any) and exit.")) -> None:
    """Run a job worker against this machine's settings (CONSORTIUM_HOME, CONSORTIUM_DATABASE_URL)."""
    import logging

    from consortium.config import Settings
    from consortium.jobs.worker import recycle, run_worker
    from consortium.store.home import make_private

    logging.basicConfig(level=logging.INFO)
    settings = Settings()
    make_private(settings.home)  # files 0600, directories 0700
    if settings.executor == "ray":  # a dispatcher to the Ray cluster instead of a local worker
        from consortium.jobs.ray_executor import main as dispatch

        dispatch([])
        return
    if run_worker(settings, once=once):
        recycle()  # a fresh worker process (CONSORTIUM_WORKER_MAX_RSS_MB)
