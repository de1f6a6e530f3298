"""SQLAlchemy tables, one module per domain. Importing this package registers all of them."""

# Each domain module registers its tables on Base.metadata when imported.
from consortium.store.tables import (  # noqa: F401
    audit,
    control,
    data,
    federation,
    grants,
    identity,
    jobs,
    keys,
    monitoring,
    policies,
    projects,
    protection,
    registry,
    throttle,
)
from consortium.store.tables.base import Base

__all__ = ["Base"]
