"""The caller and its web sessions: ``MePublic`` (who a credential acts as) is the base of
``WebSessionCreated``, the answer to a login, which adds the session's secret (answered by the
login alone; ``/me`` and switching organization never show it)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from consortium.api.schemas import In, Out
from consortium.governance.roles import Role


class WebSessionCreate(In):
    email: str = Field(max_length=254)
    password: str = Field(max_length=200)


class OrgSwitch(In):
    org: str = Field(max_length=40, description="the name of one of your organizations")


class MembershipPublic(Out):
    name: str = Field(description="the organization's name")
    display_name: str
    role: Role


class MePublic(Out):
    user_id: str
    email: str
    name: str
    org: str = Field(description="the organization the credential acts in")
    role: Role = Field(description="the credential's role there: a token's role capped at the membership's")
    via: str = Field(description="token or session")
    is_operator: bool = Field(description="this credential may do hub-operator actions: an operator "
                                          "account acting with the admin or owner role")
    organizations: list[MembershipPublic]


class WebSessionCreated(MePublic):
    session_token: str = Field(description="shown once: a bearer credential for this session "
                                           "(browsers use the HttpOnly cookie instead)")
    expires_at: datetime
