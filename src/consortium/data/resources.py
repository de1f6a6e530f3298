"""Registers the ``dataset`` resource type with the grants mechanism (at import).

Permissions: ``metadata`` (schema and statistics), ``compute`` (train on the rows without
receiving them: ``consortium.data.access.load_for_compute``), ``download`` (read the rows).

>>> from consortium.governance.grants import RESOURCE_TYPES
>>> sorted(p.value for p in RESOURCE_TYPES["dataset"].permissions)
['compute', 'download', 'metadata']
"""

from __future__ import annotations

from consortium.data import catalog
from consortium.governance.grants import ResourceType, register_resource_type
from consortium.governance.roles import Permission

register_resource_type(ResourceType(
    catalog.RTYPE, resolve=catalog.resolve,
    permissions={Permission.metadata, Permission.compute, Permission.download},
    describe=catalog.describe, hint=catalog.NOT_FOUND_HINT))
