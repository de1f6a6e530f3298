"""Roles inside an organization and permissions that grants carry across organizations."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    viewer = "viewer"
    member = "member"
    admin = "admin"
    owner = "owner"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


_RANK = {Role.viewer: 0, Role.member: 1, Role.admin: 2, Role.owner: 3}


class Permission(StrEnum):
    metadata = "metadata"  # see schema and statistics
    compute = "compute"  # train on rows without receiving them
    download = "download"  # read the rows
    invoke = "invoke"  # call a deployment


# A stronger permission implies the weaker ones on the same resource.
IMPLIES: dict[Permission, set[Permission]] = {
    Permission.metadata: {Permission.metadata},
    Permission.compute: {Permission.compute, Permission.metadata},
    Permission.download: {Permission.download, Permission.compute, Permission.metadata},
    Permission.invoke: {Permission.invoke},
}
