"""Who sees what of a deployment's monitoring: the owner organization sees everything; an
organization holding an ``invoke`` grant sees its own calls and feedback figures; drift, the
prediction log and the settings are the owner's only."""

from __future__ import annotations

from consortium.errors import PermissionDenied
from consortium.governance.principal import Principal
from consortium.governance.roles import Role
from consortium.store.tables.registry import Deployment

__all__ = ["Deployment", "caller_scope", "require_owner"]


def caller_scope(d: Deployment, p: Principal) -> str | None:
    """None for the owner organization (sees all), else the caller's organization id."""
    return None if d.org_id == p.org_id else p.org_id


def require_owner(d: Deployment, p: Principal, what: str, role: Role = Role.viewer) -> None:
    """The owner organization's callers at ``role`` pass; a grantee gets 403 naming ``what``."""
    if d.org_id != p.org_id:
        raise PermissionDenied(f"only the organization that owns deployment {d.name!r} sees its {what}")
    p.require(role, f"changing the monitoring of {d.name!r}")
