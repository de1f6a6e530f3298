"""Organizations, users, memberships and invitations; an ended membership ends its tokens and sessions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from consortium.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unauthenticated
from consortium.governance import throttle
from consortium.governance.keys import KeyService
from consortium.governance.names import ORG_NAME
from consortium.governance.principal import Principal
from consortium.governance.roles import Role
from consortium.governance.secrets import MIN_PASSWORD, hash_password, hash_token, new_token, verify_password
from consortium.store.paging import Listing
from consortium.store.tables.base import new_id, utcnow
from consortium.store.tables.identity import ApiToken, Invitation, Membership, Organization, User, WebSession

NAME_RE = ORG_NAME.regex
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Member:
    """A user as a member of one organization: the account and its membership row."""

    user: User
    membership: Membership

    @property
    def user_id(self) -> str:
        return self.user.id

    @property
    def email(self) -> str:
        return self.user.email

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def role(self) -> Role:
        return Role(self.membership.role)

    @property
    def joined_at(self) -> datetime:
        return self.membership.created_at


def check_name(name: str, what: str = "name") -> str:
    """An organization's or a project's name (``names.ORG_NAME``)."""
    return ORG_NAME.check(name, what)


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password is too short: it needs at least {MIN_PASSWORD} characters")


def org_by_name(session: Session, name: str) -> Organization:
    org = session.scalar(select(Organization).where(Organization.name == name))
    if org is None:
        raise NotFound(f"organization {name!r} not found", hint="list them with `consortium orgs list`")
    return org


def list_orgs(session: Session) -> list[Organization]:
    """The hub's directory of organizations, by name."""
    return orgs_listing().all(session)


def orgs_listing() -> Listing:
    return Listing(select(Organization), (Organization.name,))  # names are unique: the key itself


def org_by_id(session: Session, org_id: str) -> Organization:
    org = session.get(Organization, org_id)
    if org is None:
        raise NotFound(f"organization {org_id!r} not found")
    return org


def create_org(session: Session, keys: KeyService, name: str, display_name: str,
               description: str = "") -> Organization:
    """A new organization with its own data key (wrapped by the hub's master key, ``keys``)."""
    check_name(name, "organization name")
    if session.scalar(select(Organization).where(Organization.name == name)):
        raise Conflict(f"an organization named {name!r} already exists", hint="pick another name")
    org = Organization(id=new_id("org"), name=name, display_name=display_name or name,
                       description=description)
    session.add(org)
    session.flush()
    keys.create_org_key(session, org.id)
    return org


ORG_CREATE = throttle.Quota("org-create", limit=3, window=86400)  # per user and day
ORG_CREATE_OPERATOR = throttle.Quota("org-create", limit=20, window=86400)


def found_org(session: Session, keys: KeyService, p: Principal, name: str, display_name: str = "",
              description: str = "") -> Organization:
    """A new organization with the caller as its owner. Who may: a caller acting with the admin or
    owner role in its current organization (a viewer or member token never may), at most
    ``ORG_CREATE.limit`` a day per user, or ``ORG_CREATE_OPERATOR.limit`` for a hub operator."""
    p.require(Role.admin, "creating an organization")
    throttle.take(session, ORG_CREATE_OPERATOR if p.is_operator else ORG_CREATE, p.user_id,
                  "creating organizations")
    org = create_org(session, keys, name, display_name, description)
    add_member(session, org.id, p.user_id, Role.owner)
    return org


def create_user(session: Session, email: str, name: str, password: str,
                is_operator: bool = False, *, password_hash: str | None = None) -> User:
    """A new user. ``password_hash``: the argon2 hash of ``password`` when the caller already has it
    (the test fixtures create hundreds of users with one password; hashing costs ~0.1-0.2 s)."""
    email = email.strip().lower()
    if not EMAIL_RE.match(email):
        raise InvalidInput(f"{email!r} is not an email address")
    check_password(password)
    if session.scalar(select(User).where(User.email == email)):
        raise Conflict(f"a user with email {email!r} already exists")
    user = User(id=new_id("usr"), email=email, name=name or email, is_operator=is_operator,
                password_hash=password_hash or hash_password(password))
    session.add(user)
    session.flush()
    return user


def user_name(session: Session, user_id: str) -> str:
    """A user's display name ("" for a user that is gone)."""
    user = session.get(User, user_id)
    return user.name if user is not None else ""


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def authenticate_password(session: Session, email: str, password: str) -> User:
    user = user_by_email(session, email)
    # verify against a dummy hash when the user is unknown, so timing does not tell which
    stored = user.password_hash if user else hash_password("not-a-real-password")
    if not verify_password(stored, password) or user is None or user.disabled:
        raise Unauthenticated("wrong email or password")
    return user


def add_member(session: Session, org_id: str, user_id: str, role: Role) -> Membership:
    if session.get(Membership, (user_id, org_id)):
        raise Conflict("this user is already a member of the organization")
    m = Membership(user_id=user_id, org_id=org_id, role=role.value)
    session.add(m)
    session.flush()
    return m


def memberships(session: Session, user_id: str) -> list[tuple[Organization, Membership]]:
    rows = session.execute(select(Organization, Membership).join(
        Membership, Membership.org_id == Organization.id).where(Membership.user_id == user_id)
        .order_by(Organization.name))
    return [(o, m) for o, m in rows]


def membership(session: Session, p: Principal, user_id: str) -> Member:
    """A member of the caller's organization; ``NotFound`` for anyone else."""
    m = session.get(Membership, (user_id, p.org_id))
    user = session.get(User, user_id) if m is not None else None
    if m is None or user is None:
        raise NotFound(f"user {user_id!r} is not a member of {p.org_name}")
    return Member(user, m)


def list_members(session: Session, p: Principal) -> list[Member]:
    """The members of the caller's organization, by email."""
    return [Member(u, m) for u, m in members_listing(p).all(session)]


def members_listing(p: Principal) -> Listing:
    """Items are ``(User, Membership)`` pairs; ``Member(*item)`` wraps one."""
    return Listing(select(User, Membership).join(Membership, Membership.user_id == User.id)
                   .where(Membership.org_id == p.org_id), (User.email, User.id), entities=2)


def _owners(session: Session, org_id: str) -> int:
    return session.scalar(select(func.count()).select_from(Membership).where(
        Membership.org_id == org_id, Membership.role == Role.owner.value)) or 0


def change_role(session: Session, p: Principal, user_id: str, role: Role) -> Member:
    """A member's new role (admins; only an owner grants or takes away the owner role, and an
    organization keeps at least one owner)."""
    p.require(Role.admin, "changing roles")
    member = membership(session, p, user_id)
    m = member.membership
    if (Role(m.role) == Role.owner or role == Role.owner) and p.role != Role.owner:
        raise PermissionDenied("only an owner can grant or take away the owner role")
    if Role(m.role) == Role.owner and role != Role.owner and _owners(session, p.org_id) <= 1:
        raise Conflict("this is the last owner of the organization", hint="make someone else owner first")
    m.role = role.value
    return member


def remove_member(session: Session, p: Principal, user_id: str) -> tuple[int, int]:
    """Remove a member (admins), or leave yourself; ends the member's tokens and sessions in the
    organization for good. Returns ``(tokens, sessions)`` revoked."""
    if user_id != p.user_id:
        p.require(Role.admin, "removing members")
    m = session.get(Membership, (user_id, p.org_id))
    if m is None:
        raise NotFound(f"user {user_id!r} is not a member of {p.org_name}")
    if Role(m.role) == Role.owner:
        if p.role != Role.owner:
            raise PermissionDenied("only an owner can remove an owner")
        if _owners(session, p.org_id) <= 1:
            raise Conflict("this is the last owner of the organization",
                           hint="make someone else owner first")
    session.delete(m)
    return end_membership_credentials(session, user_id, p.org_id)


def end_membership_credentials(session: Session, user_id: str, org_id: str) -> tuple[int, int]:
    """Revoke, for good and with the time, every token a user holds in an organization and every
    web session of theirs currently acting in it (sessions acting in the user's other
    organizations go on, and can never act in this one again without a new membership).
    Returns ``(tokens, sessions)`` revoked."""
    now = utcnow()
    tokens = session.execute(update(ApiToken).where(
        ApiToken.user_id == user_id, ApiToken.org_id == org_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now).execution_options(synchronize_session="fetch"))
    sessions = session.execute(update(WebSession).where(
        WebSession.user_id == user_id, WebSession.current_org_id == org_id, WebSession.revoked_at.is_(None))
        .values(revoked_at=now).execution_options(synchronize_session="fetch"))
    # an UPDATE answers a CursorResult (it has rowcount); Session.execute is typed as the plain Result
    return tokens.rowcount or 0, sessions.rowcount or 0  # type: ignore[attr-defined]


def invite(session: Session, p: Principal, email: str, role: Role, days: int = 7) -> tuple[Invitation, str]:
    """Returns the invitation and its secret token (shown once)."""
    p.require(Role.admin, "inviting members")
    if role == Role.owner and p.role != Role.owner:
        raise PermissionDenied("only an owner can invite another owner")
    email = email.strip().lower()
    if not EMAIL_RE.match(email):
        raise InvalidInput(f"{email!r} is not an email address")
    token = new_token("inv")
    inv = Invitation(id=new_id("inv"), org_id=p.org_id, email=email, role=role.value,
                     token_hash=hash_token(token), created_by=p.user_id,
                     expires_at=utcnow() + timedelta(days=days))
    session.add(inv)
    session.flush()
    return inv, token


def accept_invitation(session: Session, token: str, name: str, password: str,
                      attempt: throttle.Attempt | None = None) -> tuple[User, Organization, Membership]:
    """Join with an invitation token (creating the account when the email has none yet). Under an
    ``attempt`` (the route throttles per address), an existing account's password is also
    throttled as a login of that account is."""
    inv = session.scalar(select(Invitation).where(Invitation.token_hash == hash_token(token)))
    if inv is None or inv.revoked_at is not None:
        raise Unauthenticated("this invitation token is not valid", hint="ask for a new invitation")
    if inv.accepted_at is not None:
        raise Conflict("this invitation was already accepted")
    if inv.expires_at < utcnow():
        raise Unauthenticated("this invitation has expired", hint="ask for a new invitation")
    user = user_by_email(session, inv.email)
    if user is None:
        user = create_user(session, inv.email, name, password)
    else:
        if attempt is not None:
            attempt.watch(throttle.LOGIN_ACCOUNT, throttle.account(inv.email))
        if not verify_password(user.password_hash, password):
            raise Unauthenticated(f"{inv.email} already has an account: give its password to accept")
    m = add_member(session, inv.org_id, user.id, Role(inv.role))
    inv.accepted_at = utcnow()
    return user, org_by_id(session, inv.org_id), m


def list_invitations(session: Session, p: Principal) -> list[Invitation]:
    """The invitations of the caller's organization, oldest first (admins)."""
    return invitations_listing(p).all(session)


def invitations_listing(p: Principal) -> Listing:
    p.require(Role.admin, "listing invitations")
    return Listing(select(Invitation).where(Invitation.org_id == p.org_id), (Invitation.created_at, Invitation.id))


def invitation_org(session: Session, invitation_id: str) -> str | None:
    """The id of the organization that holds an invitation (None: there is no such invitation),
    so that a refused attempt on it is recorded in its owner's audit trail."""
    inv = session.get(Invitation, invitation_id)
    return inv.org_id if inv is not None else None


def revoke_invitation(session: Session, p: Principal, invitation_id: str) -> Invitation:
    """Revoke a pending invitation of the caller's organization (admins)."""
    inv = session.get(Invitation, invitation_id)
    if inv is None or inv.org_id != p.org_id:
        raise NotFound(f"invitation {invitation_id!r} not found")
    p.require(Role.admin, "revoking invitations")
    if inv.accepted_at is not None:
        raise Conflict("this invitation was already accepted; remove the member instead")
    inv.revoked_at = utcnow()
    return inv
