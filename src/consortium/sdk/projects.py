"""SDK group ``client.projects``: cross-organization collaboration spaces.

>>> c.projects.create("bc-study", "Breast-cancer screening study",  # doctest: +SKIP
...                   terms=["metadata", "compute", "invoke"])
>>> c.projects.invite("bc-study", "riverside-clinic")  # doctest: +SKIP
>>> other.projects.accept("bc-study")  # doctest: +SKIP
"""

from __future__ import annotations

import builtins
from typing import Any

from consortium.sdk.resources import Group, segment


class Projects(Group):
    def create(self, name: str, purpose: str, terms: list[str],
               default_quota: dict[str, int] | None = None) -> dict[str, Any]:
        return self._post("/projects", {"name": name, "purpose": purpose, "terms": terms,
                                        "default_quota": default_quota})

    def list(self, limit: int | None = None) -> list[dict[str, Any]]:
        return self._list("/projects", limit=limit)

    def get(self, name: str) -> dict[str, Any]:
        return self._get(f"/projects/{segment(name)}")

    def update(self, name: str, purpose: str | None = None,
               default_quota: dict[str, int] | None = None) -> dict[str, Any]:
        body = {k: v for k, v in {"purpose": purpose, "default_quota": default_quota}.items() if v is not None}
        return self._patch(f"/projects/{segment(name)}", body)

    def invite(self, name: str, org: str) -> dict[str, Any]:
        return self._post(f"/projects/{segment(name)}/invitations", {"org": org})

    def accept(self, name: str) -> dict[str, Any]:
        return self._post(f"/projects/{segment(name)}/accept")

    def decline(self, name: str) -> dict[str, Any]:
        return self._post(f"/projects/{segment(name)}/decline")

    def leave(self, name: str) -> dict[str, Any]:
        return self._post(f"/projects/{segment(name)}/leave")

    def set_member(self, name: str, org: str, role: str | None = None,
                   quota: dict[str, int] | None = None) -> dict[str, Any]:
        body = {k: v for k, v in {"role": role, "quota": quota}.items() if v is not None}
        return self._patch(f"/projects/{segment(name)}/members/{org}", body)

    def remove(self, name: str, org: str) -> dict[str, Any]:
        return self._delete(f"/projects/{segment(name)}/members/{org}")

    def audit(self, name: str, limit: int = 100) -> builtins.list[dict[str, Any]]:
        return self._list(f"/projects/{segment(name)}/audit", limit=limit)

    def report(self, name: str) -> dict[str, Any]:
        return self._get(f"/projects/{segment(name)}/report")

    def grant(self, name: str, resource_type: str, resource: str, permission: str) -> dict[str, Any]:
        """Grant one of your resources to every member of the project (within its terms)."""
        return self._post("/grants", {"resource_type": resource_type, "resource": resource,
                                      "permission": permission, "grantee_project": name})
