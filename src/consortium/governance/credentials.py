"""API tokens (scoped to one organization and a role, with expiry and revocation) and web sessions.

Both are random bearer secrets shown once and stored only as a hash; resolving one yields the
``Principal`` the request acts as.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from consortium.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unauthenticated
from consortium.governance import control_cache, identity, throttle
from consortium.governance.identity import authenticate_password, memberships, org_by_name
from consortium.governance.principal import Principal
from consortium.governance.roles import Role
from consortium.governance.secrets import hash_token, new_token
from consortium.store.paging import Listing
from consortium.store.tables.base import new_id, utcnow
from consortium.store.tables.identity import ApiToken, Membership, Organization, User, WebSession
from consortium.text import with_article

MAX_TOKEN_DAYS = 365


def create_token(session: Session, p: Principal, name: str, role: Role | None = None,
                 days: int = 90) -> tuple[ApiToken, str]:
    """A token for the caller in the caller's organization, with a role no higher than its own."""
    role = role or p.role
    if not p.role.at_least(role):
        raise PermissionDenied(f"you cannot create {with_article(role.value)} token: you act as {p.role.value}",
                               hint=f"create a token of the {p.role.value} role or lower")
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise InvalidInput(f"days must be between 1 and {MAX_TOKEN_DAYS}; got {days}")
    if not name or len(name) > 80:
        raise InvalidInput("token name must be 1-80 characters")
    exists = session.scalar(select(ApiToken).where(
        ApiToken.user_id == p.user_id, ApiToken.org_id == p.org_id, ApiToken.name == name,
        ApiToken.revoked_at.is_(None)))
    if exists:
        raise Conflict(f"you already have a token named {name!r} in {p.org_name}",
                       hint="revoke it first or pick another name")
    secret = new_token("tok")
    tok = ApiToken(id=new_id("tok"), user_id=p.user_id, org_id=p.org_id, name=name, role=role.value,
                   token_hash=hash_token(secret), prefix=secret[:12],
                   expires_at=utcnow() + timedelta(days=days))
    # a revoked token keeps its row (audit) but frees its name
    for old in session.scalars(select(ApiToken).where(
            ApiToken.user_id == p.user_id, ApiToken.org_id == p.org_id, ApiToken.name == name)):
        old.name = f"{old.name[:60]}~{old.id[-8:]}"
    session.add(tok)
    try:
        session.flush()
    except IntegrityError as e:  # the same name created by a concurrent request since the check above
        raise Conflict(f"you already have a token named {name!r} in {p.org_name}",
                       hint="revoke it first or pick another name") from e
    return tok, secret


def list_tokens(session: Session, p: Principal) -> list[ApiToken]:
    """The caller's tokens in its organization, oldest first; an admin sees every member's."""
    return tokens_listing(p).all(session)


def tokens_listing(p: Principal) -> Listing:
    q = select(ApiToken).where(ApiToken.org_id == p.org_id)
    if not p.role.at_least(Role.admin):
        q = q.where(ApiToken.user_id == p.user_id)
    return Listing(q, (ApiToken.created_at, ApiToken.id))


def public_columns(schema: Any) -> list[Any]:
    """The token table's columns that ``schema`` (a pydantic model) shows: a page read by them."""
    return [ApiToken.__table__.c[f] for f in schema.model_fields]


def token_org(session: Session, token_id: str) -> str | None:
    """The id of the organization a token acts in (None: there is no such token), so that a
    refused attempt on it is recorded in its owner's audit trail."""
    tok = session.get(ApiToken, token_id)
    return tok.org_id if tok is not None else None


def revoke_token(session: Session, p: Principal, token_id: str) -> ApiToken:
    """Revoke a token of the caller's organization: one's own, or (admins) any member's."""
    tok = session.get(ApiToken, token_id)
    if tok is None or tok.org_id != p.org_id:
        raise NotFound(f"token {token_id!r} not found")
    if tok.user_id != p.user_id:
        p.require(Role.admin, "revoking another member's token")
    if tok.revoked_at is None:
        tok.revoked_at = utcnow()
    return tok


def principal_for(user: User, org: Organization, role: Role, via: str) -> Principal:
    """The principal of a user acting in an organization (requests, jobs, seeding); ``role`` is the
    credential's effective role, which also decides whether an operator account acts as operator."""
    return Principal(user_id=user.id, user_email=user.email, org_id=org.id, org_name=org.name,
                     role=role, via=via, is_operator=user.is_operator)


def member_principal(session: Session, user_id: str, org_id: str, via: str) -> Principal | None:
    """The user acting in the organization with the role it holds there now (background work: a
    job, a retraining trigger); None when it is no longer a member, or its account is disabled."""
    m = session.get(Membership, (user_id, org_id))
    user, org = session.get(User, user_id), session.get(Organization, org_id)
    if m is None or user is None or org is None or user.disabled:
        return None
    return principal_for(user, org, Role(m.role), via)


@dataclass
class _Resolved:
    """What resolving a credential read (cached by ``control_cache``): the principal and the times
    every hit checks again."""

    principal: Principal
    credential_id: str
    expires_at: datetime
    last_used_at: datetime | None = None


def _load_token(session: Session, token_hash: str) -> _Resolved:
    """The token, its membership, user and organization in one query."""
    row = session.execute(
        select(ApiToken, Membership, User, Organization)
        .outerjoin(Membership, (Membership.user_id == ApiToken.user_id) & (Membership.org_id == ApiToken.org_id))
        .outerjoin(User, User.id == ApiToken.user_id)
        .outerjoin(Organization, Organization.id == ApiToken.org_id)
        .where(ApiToken.token_hash == token_hash)).first()
    if row is None:
        raise Unauthenticated("the API token is not valid", hint="create one with `consortium tokens create`")
    tok, member, user, org = row
    if tok.revoked_at is not None:
        raise Unauthenticated("the API token was revoked")
    # a token belongs to one membership: one minted before the member left (and was invited
    # again) never comes back, even if its revocation at removal was missed
    if member is None or user is None or user.disabled or tok.created_at < member.created_at:
        raise Unauthenticated("the token's user is no longer a member of its organization",
                              hint="a member who joins again creates new tokens")
    if org is None:
        raise Unauthenticated("the token's organization no longer exists")
    # the token never acts above the member's current role
    role = min(Role(tok.role), Role(member.role), key=lambda r: r.rank)
    return _Resolved(principal_for(user, org, role, f"token:{tok.id}"), tok.id, tok.expires_at, tok.last_used_at)


def resolve_token(session: Session, secret: str) -> Principal:
    """The principal a token acts as: one joined query, or none while the hub's cache holds it
    (``control_cache``: a revocation anywhere drops it within a second)."""
    token_hash = hash_token(secret)
    r = control_cache.cached(session, "token", token_hash, lambda: _load_token(session, token_hash))
    now = utcnow()
    if r.expires_at < now:
        raise Unauthenticated("the API token has expired", hint="create a new one")
    if r.last_used_at is None or (now - r.last_used_at) > timedelta(minutes=5):
        control_cache.record_use(session, r.credential_id, now)
        r.last_used_at = now
    return r.principal


def cached_principal(cache: control_cache.ControlCache, kind: str, secret: str,
                     org_name: str | None = None) -> Principal | None:
    """The principal of a token (``kind`` "token") or web session ("session") when the hub's cache
    answers for it now with nothing to read or write (``ControlCache.peek``: revision checked
    within its poll, entry fresh; the credential unexpired; a token's last use recorded within
    five minutes), else None: then ``resolve_token`` / ``resolve_session`` decide, in a thread."""
    key: Any = hash_token(secret) if kind == "token" else (hash_token(secret), org_name)
    r = cache.peek(kind, key)
    if not isinstance(r, _Resolved):
        return None
    now = utcnow()
    if r.expires_at < now:
        return None
    if kind == "token" and (r.last_used_at is None or (now - r.last_used_at) > timedelta(minutes=5)):
        return None
    return r.principal


@dataclass(frozen=True)
class Profile:
    """What ``/me`` shows of a user beyond its principal: its name and its memberships (organization
    name, display name, role), by organization name."""

    name: str
    memberships: tuple[tuple[str, str, Role], ...]


def profile(session: Session, user_id: str) -> Profile:
    """The user's ``Profile``: two lookups, or none while the hub's cache holds it (a change to
    the user, an organization or a membership drops it, ``control_cache``)."""
    def load() -> Profile:
        return Profile(identity.user_name(session, user_id),
                       tuple((o.name, o.display_name, Role(m.role)) for o, m in memberships(session, user_id)))

    return control_cache.cached(session, "profile", user_id, load)


def password_login(session: Session, factory: sessionmaker[Session], email: str, password: str,
                   address: str, hours: int) -> tuple[Principal, WebSession, str]:
    """Email and password for a new web session, throttled per account and per client address
    (``consortium.governance.throttle``); returns the principal, the session and its secret."""
    with throttle.attempt(session, factory, (throttle.LOGIN_ADDRESS, address),
                          (throttle.LOGIN_ACCOUNT, throttle.account(email))):
        user = authenticate_password(session, email, password)
    if not memberships(session, user.id):
        raise InvalidInput("you are not a member of any organization yet", hint="accept an invitation")
    ws, secret = create_session(session, user, hours)
    return resolve_session(session, secret), ws, secret


def create_session(session: Session, user: User, hours: int) -> tuple[WebSession, str]:
    secret = new_token("ses")
    orgs = memberships(session, user.id)
    ws = WebSession(id=new_id("ses"), user_id=user.id, token_hash=hash_token(secret),
                    current_org_id=orgs[0][0].id if orgs else None,
                    expires_at=utcnow() + timedelta(hours=hours))
    session.add(ws)
    session.flush()
    return ws, secret


def resolve_session(session: Session, secret: str, org_name: str | None = None) -> Principal:
    """The principal of a web session: in ``org_name`` when given (404 if it is not among the
    user's), else in the session's current organization (401 if the user is no longer in it)."""
    r = control_cache.cached(session, "session", (hash_token(secret), org_name),
                             lambda: _load_session(session, secret, org_name))
    if r.expires_at < utcnow():
        raise Unauthenticated("your session has expired or was ended", hint="log in again")
    return r.principal


def _load_session(session: Session, secret: str, org_name: str | None) -> _Resolved:
    ws = session.scalar(select(WebSession).where(WebSession.token_hash == hash_token(secret)))
    if ws is None or ws.revoked_at is not None or ws.expires_at < utcnow():
        raise Unauthenticated("your session has expired or was ended", hint="log in again")
    user = session.get(User, ws.user_id)
    if user is None or user.disabled:
        raise Unauthenticated("your account is disabled")
    if org_name:
        org = org_by_name(session, org_name)
        member = session.get(Membership, (user.id, org.id))
        if member is None:
            raise NotFound(f"organization {org.name!r} not found among yours")
    else:
        current = session.get(Organization, ws.current_org_id) if ws.current_org_id else None
        member = session.get(Membership, (user.id, current.id)) if current is not None else None
        if current is None or member is None:
            raise Unauthenticated("your session acts in no organization you are a member of",
                                  hint="log in again (or accept an invitation)")
        org = current
    return _Resolved(principal_for(user, org, Role(member.role), f"session:{ws.id}"), ws.id, ws.expires_at)


def switch_org(session: Session, secret: str, org_name: str) -> Principal:
    p = resolve_session(session, secret, org_name)
    ws = session.scalar(select(WebSession).where(WebSession.token_hash == hash_token(secret)))
    if ws is None:  # ended since resolve_session read it
        raise Unauthenticated("the web session has ended", hint="log in again")
    ws.current_org_id = p.org_id
    return p


def end_session(session: Session, secret: str) -> None:
    ws = session.scalar(select(WebSession).where(WebSession.token_hash == hash_token(secret)))
    if ws is not None and ws.revoked_at is None:
        ws.revoked_at = utcnow()
