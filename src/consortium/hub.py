"""The hub's core: settings, database, keys, sealed blobs and the audit chain, what every stage works with.

``Hub.start`` opens them from ``Settings``; nothing is created at import time. The stages take a
``Hub`` (a job's context, the monitor, the retraining trigger) and never the full
``consortium.services.Services``: that one extends ``Hub`` with what is built from the stages
(submission checks, resource types, metrics, the monitor, the serving runtime), so it sits above
them and only the ways in (API, UI, CLI) and the demo name it. A job worker runs on a bare ``Hub``.

This module imports only ``config``, ``governance`` and ``store`` (the dependency direction is
checked by ``.importlinter``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Self

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from consortium.config import Settings
from consortium.governance import audit, keys
from consortium.governance.audit import EventDraft
from consortium.governance.audit_keys import AuditKeys
from consortium.governance.control_cache import ControlCache
from consortium.governance.sealed import SealedBlobs
from consortium.store.blobs import BlobStore, LocalBlobStore
from consortium.store.db import make_engine, make_session_factory, migrate, transaction


def _blob_store(settings: Settings) -> BlobStore:
    """The store the settings name: an S3-compatible object store for ``CONSORTIUM_BLOB_URL=s3://``
    (several replicas), else the local disk under the data directory."""
    if settings.blob_url:
        from consortium.store.blobs_s3 import S3BlobStore

        return S3BlobStore(settings.blob_url, endpoint_url=settings.s3_endpoint_url or None,
                           region=settings.s3_region or None, scratch=settings.home / "scratch")
    return LocalBlobStore(settings.blob_dir)


@dataclass
class Hub:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    keys: keys.KeyService
    blobs: SealedBlobs  # the store (local disk or S3) behind the hub's keys
    audit_chain: audit.AuditChain  # keyed with the keyring's audit root, never with a database value

    @classmethod
    def start(cls, settings: Settings) -> Self:
        """Check the settings, open (and migrate) the database, load the keyring, open the audit
        chain and the blob store."""
        settings.check_production()
        settings.home.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.database_url)
        migrate(engine)
        factory = make_session_factory(engine)
        factory.configure(info={"control": ControlCache()})  # resolved credentials and grants
        ring = keys.Keyring.load(settings.home, settings.master_key)
        key_service = keys.KeyService(ring)
        chain = audit.AuditChain(AuditKeys.from_root(ring.audit_root), settings.home / "audit-seal.json")
        with transaction(factory) as s:
            chain.ensure_head(s)
            chain.append_rows(s, [], drain=True)  # what a crash left staged
        return cls(settings, engine, factory, key_service, SealedBlobs(_blob_store(settings), key_service), chain)

    def audit_in(self, session: Session, drafts: list[EventDraft]) -> None:
        self.audit_chain.append(session, drafts)

    def audit_staged(self, session: Session, drafts: list[EventDraft]) -> None:
        """Stage a change's events in its transaction, for the group commit to chain
        (``audit_chained_async``): the change never waits for the chain's head."""
        self.audit_chain.stage(session, drafts)

    @functools.cached_property
    def audit_group(self) -> audit.GroupCommit:
        """The group commit of events recorded on their own (reads, failed requests) and of the
        staged events of changes; each batch also writes the tokens' last uses."""
        cache: ControlCache | None = self.session_factory.kw.get("info", {}).get("control")
        return audit.GroupCommit(self.session_factory, self.audit_chain,
                                 hooks=(cache.write_uses,) if cache is not None else ())

    def audit_now(self, drafts: list[EventDraft]) -> None:
        """Append events on their own: they share one transaction with those of concurrent
        callers (``audit.GroupCommit``) and are committed when this returns."""
        self.audit_group.submit(drafts)

    async def audit_now_async(self, drafts: list[EventDraft]) -> None:
        """``audit_now`` from an event loop: the same group commit, waited for without a thread."""
        await self.audit_group.submit_async(drafts)

    async def audit_chained_async(self) -> None:
        """Wait until the events staged before this call (``audit_staged``) are on the chain."""
        await self.audit_group.submit_async([], staged=True)

    def sweep_blobs(self, older_than_s: float = 24 * 3600) -> int:
        """Remove blob files no row refers to, older than ``older_than_s``: what a crash between a
        blob and its row left behind, and files of deleted datasets a crash kept. Every column that
        holds a blob key is listed here (dataset versions; model versions: ONNX, plots, weights)."""
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
