"""Who is calling: a user acting in one organization with one role, and the access checks on it.

The rule everywhere: a resource of another organization that the caller holds no grant on is
``NotFound`` (its existence is not revealed); a role too low for the action is ``PermissionDenied``.
"""

from __future__ import annotations

from dataclasses import dataclass

from consortium.errors import NotFound, PermissionDenied
from consortium.governance.roles import Role


@dataclass(frozen=True)
class Principal:
    user_id: str
    user_email: str
    org_id: str
    org_name: str
    role: Role
    via: str  # "token:<id>" or "session:<id>"
    is_operator: bool = False

    def require(self, role: Role, action: str = "this action") -> None:
        if not self.role.at_least(role):
            raise PermissionDenied(f"{action} needs the {role.value} role in {self.org_name}; "
                                   f"you act as {self.role.value}",
                                   hint="ask an admin of your organization")

    def require_operator(self) -> None:
        if not self.is_operator:
            raise PermissionDenied("only a hub operator may do this")

    def require_own(self, owner_org_id: str, what: str, role: Role = Role.viewer) -> None:
        """The resource must belong to the caller's organization (else 404), with at least ``role``."""
        if owner_org_id != self.org_id:
            raise NotFound(f"{what} not found")
        self.require(role)
