"""Database engine, sessions and migrations.

SQLite is the embedded default (WAL, foreign keys on, a busy timeout so concurrent writers wait
instead of failing); PostgreSQL works the same. Migrations are Alembic's, applied at start.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger("consortium.store")
MIGRATIONS = Path(__file__).parent / "migrations"
# The largest numbers the columns hold on both backends: BigInteger columns (audit positions) and
# Integer ones (version numbers, job event ids: 32 bits on PostgreSQL, 64 on SQLite).
INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
# Connections kept open per engine: one per request thread (anyio runs sync routes in up to 40)
# plus the audit group writer; a connection past the pool is opened and closed per use, which
# on PostgreSQL costs a few milliseconds. Two replicas stay within PostgreSQL's default 100.
POOL_SIZE, POOL_OVERFLOW = 42, 8


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # as many pooled connections as the request threads (anyio's 40) plus the audit writer: a
        # connection opened past the pool is closed again at return, and a new one costs its pragmas
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, autoflush=True)


def alembic_config(engine_url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine_url.replace("%", "%%"))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision of every branch (each stage owns a branch)."""
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    # One head at a time: Alembic's "upgrade heads" trips over branches that both start at the
    # foundation revision and depend on each other (KeyError in its head bookkeeping). Each head is
    # what ``alembic.command.upgrade`` does, on one ScriptDirectory: the command would read every
    # revision file again for each head (0.7 s of a hub's start with 11 branches; now 0.2 s).
    script = ScriptDirectory.from_config(cfg)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        for head in sorted(script.get_heads()):
            with EnvironmentContext(cfg, script, fn=lambda rev, _ctx, head=head: script._upgrade_revs(head, rev),
                                    as_sql=False, destination_rev=head):
                script.run_env()


def database_problem(engine: Engine) -> str | None:
    """None if the database answers a trivial query, else what went wrong, in words safe to show
    an unauthenticated probe (the error class, never the URL, host or file path it may name)."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as e:
        log.warning("the database does not answer: %s", e)
        return f"the database does not answer ({type(e).__name__})"
    return None


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work outside a request (CLI, workers, seeding): commit or roll back as a whole."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
