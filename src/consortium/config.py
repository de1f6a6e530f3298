"""Settings, read once from the environment (prefix ``CONSORTIUM_``) in the entry point and passed down.

>>> s = Settings(home="/tmp/c-doc")
>>> s.database_url
'sqlite:////tmp/c-doc/consortium.db'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-insecure-secret-change-me"  # noqa: S105 - the known placeholder the settings refuse outside dev


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONSORTIUM_", extra="ignore")

    mode: Literal["development", "production"] = "development"
    home: Path = Field(default_factory=lambda: Path(os.path.expanduser("~/.consortium")),
                       description="Data directory: database, blobs, keys")
    database_url: str = ""  # default: SQLite file under home
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""  # how clients reach the hub; default http://host:port
    secret_key: str = DEV_SECRET  # signs CSRF tokens of the web UI and prediction ids (same on every replica)
    # after rotating secret_key: the old ones, so prediction ids already handed out still get feedback
    # (drop them after the deployments' retention_days); CSRF tokens follow the new key (pages reload)
    previous_secret_keys: list[str] = Field(default_factory=list)
    master_key: str | None = None  # base64 of 32 bytes; default: a key file under home

    # where blobs live: empty = the local disk (HOME/blobs); s3://bucket/prefix = an S3-compatible
    # object store (every replica the same), at s3_endpoint_url (empty: AWS) with the credentials of
    # boto3's usual chain (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, an instance role)
    blob_url: str = Field("", pattern=r"^(s3://[^/\s]+(/\S*)?)?$")
    s3_endpoint_url: str = ""
    s3_region: str = ""
    # HTTP server processes on the one port (`consortium serve --http-workers`); not the job workers
    http_workers: int = Field(1, ge=1, le=64)
    # seconds a stopping hub (SIGTERM) lets in-flight requests finish before it closes them
    shutdown_grace_s: float = Field(30.0, ge=0)

    max_body_bytes: int = 10 * 1024 * 1024  # JSON and form bodies
    max_upload_bytes: int = 2 * 1024 * 1024 * 1024  # dataset and model uploads
    # image zip and NPZ uploads, against zip and decompression bombs (consortium.data.archive)
    zip_max_members: int = 100_000  # entries in one archive
    zip_max_bytes: int = 4 * 1024 * 1024 * 1024  # total uncompressed size of one archive
    zip_max_ratio: int = 200  # uncompressed/compressed size of any entry of 64 KiB or more
    image_max_pixels: int = 4096 * 4096  # width x height of one image
    session_hours: int = 12
    token_days_default: int = 90

    max_model_params: int = Field(
        50_000_000, ge=1, description="largest model (trainable parameters, counted from the recipe and the "
        "data's shape) a job may train; a recipe over it is refused at submission with a 422")
    workers: int = 1  # JOB worker processes spawned by the hub (0: none, run `consortium worker`); HTTP: http_workers
    job_lease_s: int = 30  # a running job whose worker is silent this long is re-queued or failed
    # a job worker whose resident memory is above this after a job replaces itself with a fresh process
    # (exec, same pid: what a job imported, torch and scikit-learn ~460 MB, is returned); 0: never
    worker_max_rss_mb: int = Field(600, ge=0)
    # where hub-side jobs run: "local" (the worker processes above) or "ray" (a dispatcher hands each
    # claimed job to the Ray cluster at ray_address; consortium.jobs.ray_executor). The database
    # queue stays the source of truth for states, events, cancellation and leases either way.
    executor: Literal["local", "ray"] = "local"
    ray_address: str = "auto"  # "auto" (a cluster started on this machine), a GCS host:port, or ray://host:10001
    ray_job_cpus: int = Field(1, ge=1, description="CPUs each single-process job declares on the Ray cluster "
                              "(its torch threads)")
    ray_storage: str = Field("", description="where Ray Train and Tune keep a run's checkpoints: a directory "
                             "every cluster node shares, or s3://bucket/prefix (default: a temporary directory "
                             "on the job's node, enough on one machine); read by training.distributed")
    federation_insecure: bool = False  # Flower without TLS and SuperNode authentication (explicit opt-in)
    # Where federated jobs' SuperLinks listen (loopback: only nodes on this machine join; 0.0.0.0
    # for sites elsewhere), the name or address sites dial (goes into the TLS certificate) and a
    # port range "9100-9199" for firewalls (Flower 1.42 serves its Control API on the same port:
    # admit only the sites' addresses).
    federation_host: str = "127.0.0.1"
    federation_public_host: str | None = None
    federation_ports: str | None = Field(None, pattern=r"^\d{1,5}-\d{1,5}$")
    demo_nodes: bool = True  # `consortium up` runs one `consortium node` agent per demo organization
    # the demo sites' node data directories (<demo_sites>/<org>): outside home, the hub never reads
    # them; default <home>-sites beside home (~/.consortium-sites)
    demo_sites: Path | None = None
    metrics_allow: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    monitoring: Literal["on", "off"] = Field(
        "on", description="off: this process does no monitoring work on predictions: no sampling into the "
        "prediction log, no latency histograms or request counts (API figures and /metrics), no background "
        "thread (retraining triggers are then checked only when feedback arrives or on request); usage "
        "accounting and quotas stay. Prediction ids are still returned and still signed (a few "
        "microseconds), so feedback keeps working, except for answers too long for an id, which need the "
        "log: their ids cannot get feedback while monitoring is off.")

    # adaptive batching of concurrent predictions to one model version (consortium.serving.batching)
    batching: Literal["on", "off"] = Field("on", description="off: every prediction calls its model alone")
    batch_max_size: int = Field(32, ge=1, description="rows in one batched model call")
    batch_max_wait_ms: float = Field(
        2.0, ge=0, description="longest a prediction waits for others while a batch of its model is already "
        "running on another thread (with one inference thread a new batch starts as soon as the last ends)")

    @model_validator(mode="after")
    def _derive(self) -> Settings:
        self.home = Path(self.home).expanduser()
        self.demo_sites = Path(self.demo_sites).expanduser() if self.demo_sites else \
            self.home.with_name(self.home.name + "-sites")
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'consortium.db'}"
        if not self.public_url:
            self.public_url = f"http://{self.host}:{self.port}"
        return self

    def check_production(self) -> None:
        """Refuse to run a production hub on defaults that are only fit for a laptop."""
        if self.mode != "production":
            return
        problems = []
        if self.secret_key == DEV_SECRET or len(self.secret_key) < 32:
            problems.append("CONSORTIUM_SECRET_KEY is the default or shorter than 32 characters")
        if not self.master_key and not (self.home / "master.key").exists():
            problems.append("no master key: set CONSORTIUM_MASTER_KEY or provision HOME/master.key")
        if problems:
            raise SystemExit("refusing to start in production mode: " + "; ".join(problems))

    @property
    def blob_dir(self) -> Path:
        return self.home / "blobs"
