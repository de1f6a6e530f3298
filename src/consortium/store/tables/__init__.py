"""SQLAlchemy tables, one module per domain. Importing this package registers all of them."""

from consortium.store.tables.base import Base
from consortium.store.tables import identity, grants, audit, keys  # noqa: F401  (register tables)
from consortium.store.tables import jobs  # noqa: F401
from consortium.store.tables import projects  # noqa: F401
from consortium.store.tables import registry  # noqa: F401
from consortium.store.tables import data  # noqa: F401

__all__ = ["Base"]
from consortium.store.tables import federation  # noqa: F401
from consortium.store.tables import monitoring  # noqa: F401
from consortium.store.tables import throttle  # noqa: F401
