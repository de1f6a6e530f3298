"""The ``dataset`` resource type of the grants mechanism (gathered by ``Services.start``).

Permissions: ``metadata`` (schema and statistics), ``compute`` (train on the rows without
receiving them: ``consortium.data.access.load_for_compute``), ``download`` (read the rows).

>>> sorted(p.value for p in DATASET.permissions)
['compute', 'download', 'metadata']
"""

from __future__ import annotations

from consortium.data import catalog
from consortium.governance.grants import ResourceType
from consortium.governance.roles import Permission

DATASET = ResourceType(catalog.RTYPE, resolve=catalog.resolve,
                       permissions=frozenset({Permission.metadata, Permission.compute, Permission.download}),
                       describe=catalog.describe, hint=catalog.NOT_FOUND_HINT, table=catalog.Dataset)
