"""Who is calling: a user acting in one organization with one role, and the access checks on it.

The rule everywhere: a resource of another organization that the caller holds no grant on is
``NotFound`` (its existence is not revealed); a role too low for the action is ``PermissionDenied``.

Hub-operator power belongs to the *credential*, not only to the account: an operator account
acts as operator only through a credential whose effective role (the token's role capped at the
current membership role) is at least ``OPERATOR_ROLE``. A viewer token minted by an operator is
a viewer token and nothing more, and ``/me`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from consortium.errors import NotFound, PermissionDenied
from consortium.governance.roles import Role

OPERATOR_ROLE = Role.admin  # the lowest role through which an operator account acts as operator


@dataclass(frozen=True)
class Principal:
    """``is_operator`` is the effective power: pass the account's flag, the role caps it.

    >>> Principal("u", "a@b.c", "o", "org", Role.viewer, "token:t", is_operator=True).is_operator
    False
    >>> Principal("u", "a@b.c", "o", "org", Role.admin, "token:t", is_operator=True).is_operator
    True
    """

    user_id: str
    user_email: str
    org_id: str
    org_name: str
    role: Role
    via: str  # "token:<id>" or "session:<id>"
    is_operator: bool = False

    def __post_init__(self) -> None:
        # every construction site (requests, jobs, monitors) gets the same rule, not only credentials
        object.__setattr__(self, "is_operator", bool(self.is_operator) and self.role.at_least(OPERATOR_ROLE))

    def require(self, role: Role, action: str = "this action") -> None:
        if not self.role.at_least(role):
            raise PermissionDenied(f"{action} needs the {role.value} role in {self.org_name}; "
                                   f"you act as {self.role.value}",
                                   hint="ask an admin of your organization")

    def require_operator(self, action: str = "this action") -> None:
        """Hub operators only, through an operator-level credential (see the module docstring)."""
        if not self.is_operator:
            raise PermissionDenied(f"{action} is for hub operators, acting with a credential of the "
                                   f"{OPERATOR_ROLE.value} or owner role",
                                   hint="an operator uses a token or session of admin or owner role; "
                                        "a viewer or member token never carries operator power")

    def require_own(self, owner_org_id: str, what: str, role: Role = Role.viewer) -> None:
        """The resource must belong to the caller's organization (else 404), with at least ``role``."""
        if owner_org_id != self.org_id:
            raise NotFound(f"{what} not found")
        self.require(role)
