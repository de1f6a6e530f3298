"""The services one hub process holds: settings, database, keys, audit. Built once by the entry point.

Nothing here is created at import time; ``Services.start`` wires it from ``Settings``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from consortium.config import Settings
from consortium.governance import audit, keys
from consortium.governance.audit import EventDraft
from consortium.governance.audit_keys import AuditKeys
from consortium.governance.grants import ResourceTypes
from consortium.governance.sealed import SealedBlobs
from consortium.jobs.submit import SubmitCheck, checks_for
from consortium.store.blobs import BlobStore, LocalBlobStore
from consortium.store.db import make_engine, make_session_factory, migrate, transaction

if TYPE_CHECKING:
    from consortium.monitoring.prometheus import HubMetrics
    from consortium.monitoring.recorder import Monitor
    from consortium.serving.runtime import ServingRuntime
    from consortium.serving.service import BatchingConfig


def _blob_store(settings: Settings) -> BlobStore:
    """The store the settings name: the local disk under the data directory (an object store is the
    scale-out's)."""
    return LocalBlobStore(settings.blob_dir)


@dataclass
class Services:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    keys: keys.KeyService
    blobs: SealedBlobs  # the store (local disk) behind the hub's keys
    audit_chain: audit.AuditChain  # keyed with the keyring's audit root, never with a database value
    submit_checks: tuple[SubmitCheck, ...]  # what every job submission must pass, in order
    resource_types: ResourceTypes  # what grants can name: datasets, deployments
    metrics: HubMetrics = field(init=False, repr=False)  # this process's Prometheus registry
    monitor: Monitor = field(init=False, repr=False)  # sampling and the prediction log; get_monitor starts it
    serving: ServingRuntime = field(init=False, repr=False)  # the prediction path; see serving_runtime

    def __post_init__(self) -> None:
        from consortium.monitoring.prometheus import HubMetrics
        from consortium.monitoring.recorder import new_monitor

        self.metrics = HubMetrics(self)
        self.monitor = new_monitor(self)
        self.serving = self.serving_runtime()

    @classmethod
    def start(cls, settings: Settings) -> Services:
        settings.check_production()
        settings.home.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.database_url)
        migrate(engine)
        factory = make_session_factory(engine)
        ring = keys.Keyring.load(settings.home, settings.master_key)
        key_service = keys.KeyService(ring)
        chain = audit.AuditChain(AuditKeys.from_root(ring.audit_root), settings.home / "audit-seal.json")
        with transaction(factory) as s:
            chain.ensure_head(s)
        blobs = SealedBlobs(_blob_store(settings), key_service)
        from consortium.data.resources import DATASET
        from consortium.serving.deployments import DEPLOYMENT

        return cls(settings, engine, factory, key_service, blobs, chain,
                   submit_checks=checks_for(settings.max_model_params),
                   resource_types=ResourceTypes((DATASET, DEPLOYMENT)))

    def serving_runtime(self, batching: BatchingConfig | None = None) -> ServingRuntime:
        """A serving runtime on this hub's database, model blobs, audit chain and monitor, batching as
        the settings say unless ``batching`` is given. ``serving`` is the hub's; nothing in it runs
        before the first prediction, and the app's shutdown stops it (``ServingRuntime.aclose``)."""
        from consortium.registry.models import onnx_by_id
        from consortium.serving.runtime import ServingRuntime
        from consortium.serving.service import BatchingConfig

        cfg = self.settings
        if batching is None:
            batching = BatchingConfig(enabled=cfg.batching == "on", max_batch_size=cfg.batch_max_size,
                                      max_wait_ms=cfg.batch_max_wait_ms)
        load_model = functools.partial(onnx_by_id, self.session_factory, self.blobs)
        return ServingRuntime(self.session_factory, load_model, audit=self.audit_in,
                              monitor=lambda: self.monitor if self.monitor.running else None, batching=batching)

    def audit_in(self, session: Session, drafts: list[EventDraft]) -> None:
        self.audit_chain.append(session, drafts)

    def audit_now(self, drafts: list[EventDraft]) -> None:
        """Append events in a transaction of their own (failed requests, background work)."""
        with transaction(self.session_factory) as s:
            self.audit_chain.append(s, drafts)

    def sweep_blobs(self, older_than_s: float = 24 * 3600) -> int:
        """Remove blob files no row refers to, older than ``older_than_s``: what a crash between a
        blob and its row left behind, and files of deleted datasets a crash kept. Every column that
        holds a blob key is listed here (dataset versions; model versions: ONNX, plots, weights)."""
        from sqlalchemy import select

        from consortium.store.tables.data import DatasetVersion
        from consortium.store.tables.registry import ModelVersion

        with self.session_factory() as s:
            known = set(s.scalars(select(DatasetVersion.blob_key)))
            for key, plots, explain in s.execute(select(ModelVersion.blob_key, ModelVersion.plots,
                                                        ModelVersion.explain)):
                known.add(key)
                known.update((plots or {}).values())
                if explain and explain.get("torch_state"):
                    known.add(explain["torch_state"])
        return self.blobs.store.sweep_orphans(known, older_than_s)

    def close(self) -> None:
        self.engine.dispose()
        self.blobs.store.close()
