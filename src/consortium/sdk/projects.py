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
        """Create a project (the caller's organization leads it) with its ``terms`` (the
        permissions members extend to it) and an optional default invoke ``quota``. Returns the project.

        >>> c.projects.create("bc-study", "Breast-cancer screening", ["metadata", "compute"])  # doctest: +SKIP
        """
        return self._post("/projects", {"name": name, "purpose": purpose, "terms": terms,
                                        "default_quota": default_quota})

    def list(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Projects your organization is in or invited to: ``[{"name", "purpose", "terms",
        "your_role", "your_state"}]``.

        >>> [p["name"] for p in c.projects.list()]                       # doctest: +SKIP
        """
        return self._list("/projects", limit=limit)

    def get(self, name: str) -> dict[str, Any]:
        """A project (name or ``org~name``) with its terms and members.

        >>> [m["org"] for m in c.projects.get("bc-study")["members"]]    # doctest: +SKIP
        """
        return self._get(f"/projects/{segment(name)}")

    def update(self, name: str, purpose: str | None = None,
               default_quota: dict[str, int] | None = None) -> dict[str, Any]:
        """Change a project's purpose or default quota (lead organization's admins).

        >>> c.projects.update("bc-study", purpose="Screening, phase 2")  # doctest: +SKIP
        """
        body = {k: v for k, v in {"purpose": purpose, "default_quota": default_quota}.items() if v is not None}
        return self._patch(f"/projects/{segment(name)}", body)

    def invite(self, name: str, org: str) -> dict[str, Any]:
        """Invite an organization to the project (lead organization).

        >>> c.projects.invite("bc-study", "riverside-clinic")           # doctest: +SKIP
        """
        return self._post(f"/projects/{segment(name)}/invitations", {"org": org})

    def accept(self, name: str) -> dict[str, Any]:
        """Accept your organization's invitation to the project (admins or owners).

        >>> other.projects.accept("bc-study")                           # doctest: +SKIP
        """
        return self._post(f"/projects/{segment(name)}/accept")

    def decline(self, name: str) -> dict[str, Any]:
        """Decline your organization's invitation to the project.

        >>> other.projects.decline("bc-study")                          # doctest: +SKIP
        """
        return self._post(f"/projects/{segment(name)}/decline")

    def leave(self, name: str) -> dict[str, Any]:
        """Leave a project; grants to it stop applying to your organization at once.

        >>> other.projects.leave("bc-study")                            # doctest: +SKIP
        """
        return self._post(f"/projects/{segment(name)}/leave")

    def set_member(self, name: str, org: str, role: str | None = None,
                   quota: dict[str, int] | None = None) -> dict[str, Any]:
        """Change a member organization's role or quota in the project (lead organization).

        >>> c.projects.set_member("bc-study", "riverside-clinic", quota={"per_day": 1000})  # doctest: +SKIP
        """
        body = {k: v for k, v in {"role": role, "quota": quota}.items() if v is not None}
        return self._patch(f"/projects/{segment(name)}/members/{org}", body)

    def remove(self, name: str, org: str) -> dict[str, Any]:
        """Remove a member organization from the project (lead organization).

        >>> c.projects.remove("bc-study", "riverside-clinic")           # doctest: +SKIP
        """
        return self._delete(f"/projects/{segment(name)}/members/{org}")

    def audit(self, name: str, limit: int = 100) -> builtins.list[dict[str, Any]]:
        """The project's audit events (members see them), newest first.

        >>> [e["action"] for e in c.projects.audit("bc-study", limit=10)]  # doctest: +SKIP
        """
        return self._list(f"/projects/{segment(name)}/audit", limit=limit)

    def report(self, name: str) -> dict[str, Any]:
        """Who contributed which datasets, which jobs ran, which models exist and who called
        which deployment: ``{"project", "purpose", "members", "contributions", "jobs", "models",
        "deployment_usage"}``.

        >>> c.projects.report("bc-study")["contributions"]               # doctest: +SKIP
        """
        return self._get(f"/projects/{segment(name)}/report")

    def grant(self, name: str, resource_type: str, resource: str, permission: str) -> dict[str, Any]:
        """Grant one of your resources to every member of the project (within its terms).

        >>> c.projects.grant("bc-study", "dataset", "st-marys/bc", "compute")  # doctest: +SKIP
        """
        return self._post("/grants", {"resource_type": resource_type, "resource": resource,
                                      "permission": permission, "grantee_project": name})
