"""Resource groups of the SDK client, one class per API resource."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol

API = "/api/v1"
PAGE_MAX = 1000  # the hub's largest page (its `limit` maximum)


class Transport(Protocol):
    """What a resource group needs of its client (``consortium.sdk.client.Client``, which attaches
    every group to itself): the HTTP calls, and who the client acts as."""

    def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                content: Any = None, headers: dict[str, str] | None = None, files: Any = None,
                data: Any = None, raw: bool = False) -> Any: ...

    def stream(self, method: str, path: str, **kw: Any) -> Iterator[bytes]: ...

    def me(self) -> dict[str, Any]: ...


class Group:
    def __init__(self, client: Transport) -> None:
        self.c = client

    def _get(self, path: str, **params: Any) -> Any:
        return self.c.request("GET", API + path, params=params or None)

    def _pages(self, path: str, *, page_size: int = PAGE_MAX, **params: Any) -> Iterator[dict[str, Any]]:
        """Each page of a list of the hub (``{"items": [...], "next_cursor": ...}``), following the
        cursors to the last page."""
        cursor = None
        while True:
            page: dict[str, Any] = self._get(path, **params, limit=page_size, cursor=cursor)
            yield page
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def _items(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a list, fetched a page at a time as the iteration reaches it."""
        for page in self._pages(path, **params):
            yield from page["items"]

    def _list(self, path: str, *, limit: int | None = None, **params: Any) -> list[dict[str, Any]]:
        """The whole list (or its first ``limit`` items), page by page."""
        if limit is not None and limit < 1:
            return []
        size = min(limit, PAGE_MAX) if limit is not None else PAGE_MAX
        out: list[dict[str, Any]] = []
        for page in self._pages(path, page_size=size, **params):
            out += page["items"]
            if limit is not None and len(out) >= limit:
                return out[:limit]
        return out

    def _post(self, path: str, body: Any = None, **params: Any) -> Any:
        return self.c.request("POST", API + path, json=body, params=params or None)

    def _patch(self, path: str, body: Any) -> Any:
        return self.c.request("PATCH", API + path, json=body)

    def _delete(self, path: str) -> Any:
        return self.c.request("DELETE", API + path)


def segment(ref: str) -> str:
    """A project or deployment reference as one URL path segment: ``org/name`` -> ``org~name``
    (the hub reads both forms in bodies; a path segment cannot hold a '/').

    >>> segment("st-marys-hospital/bc-risk"), segment("bc-risk")
    ('st-marys-hospital~bc-risk', 'bc-risk')
    """
    return ref.replace("/", "~", 1)


class Orgs(Group):
    def list(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Every organization on the hub (the directory grants and projects refer to), as
        ``[{"name", "display_name", "description", ...}]``, following the pages to the end (or the first
        ``limit``).

        >>> [o["name"] for o in c.orgs.list()]                          # doctest: +SKIP
        ['northgate-lab', 'riverside-clinic', 'st-marys-hospital']
        """
        return self._list("/orgs", limit=limit)

    def get(self, name: str) -> dict[str, Any]:
        """One organization by name: ``{"name", "display_name", "description", ...}``.

        >>> c.orgs.get("riverside-clinic")["display_name"]              # doctest: +SKIP
        'Riverside Clinic'
        """
        return self._get(f"/orgs/{name}")

    def create(self, name: str, display_name: str = "", description: str = "") -> dict[str, Any]:
        """Create an organization; the caller becomes its owner. Returns the new organization.

        >>> c.orgs.create("northgate-lab", "Northgate Medical Lab")     # doctest: +SKIP
        """
        return self._post("/orgs", {"name": name, "display_name": display_name,
                                    "description": description})


class Members(Group):
    def list(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Members of the caller's organization: ``[{"user_id", "email", "name", "role"}]``.

        >>> {m["email"]: m["role"] for m in c.members.list()}            # doctest: +SKIP
        {'ana@st-marys.example': 'owner'}
        """
        return self._list("/members", limit=limit)

    def set_role(self, user_id: str, role: str) -> dict[str, Any]:
        """Change a member's role (``owner``, ``admin``, ``member`` or ``viewer``; admins,
        the owner role only by owners). Returns the membership.

        >>> c.members.set_role("usr_1a2b", "admin")                     # doctest: +SKIP
        """
        return self._patch(f"/members/{user_id}", {"role": role})

    def remove(self, user_id: str) -> None:
        """Remove a member from the caller's organization (their tokens stop working there).

        >>> c.members.remove("usr_1a2b")                                # doctest: +SKIP
        """
        self._delete(f"/members/{user_id}")


class Invitations(Group):
    def create(self, email: str, role: str = "member", days: int = 7) -> dict[str, Any]:
        """Invite someone by email to the caller's organization with ``role``, valid
        ``days``. Returns the invitation with its one-time ``token`` (shown once: give it to them).

        >>> c.invitations.create("bo@clinic.example", "member")["token"]  # doctest: +SKIP
        'csm_inv_...'
        """
        return self._post("/invitations", {"email": email, "role": role, "days": days})

    def list(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The organization's invitations: ``[{"id", "email", "role", "expires_at",
        "accepted_at", "revoked_at"}]``.

        >>> [i["email"] for i in c.invitations.list() if not i["accepted_at"]]  # doctest: +SKIP
        """
        return self._list("/invitations", limit=limit)

    def revoke(self, invitation_id: str) -> dict[str, Any]:
        """Revoke an open invitation; its token stops working. Returns the invitation.

        >>> c.invitations.revoke("inv_1a2b")                            # doctest: +SKIP
        """
        return self._delete(f"/invitations/{invitation_id}")

    def accept(self, token: str, password: str, name: str = "") -> dict[str, Any]:
        """Accept an invitation (no credential needed): creates the account if the email has
        none (``password`` is then the new one, else the existing one). Returns ``{"org", "role", "email"}``.

        >>> consortium.Client(url).invitations.accept("csm_inv_...", "a long passphrase", "Bo")  # doctest: +SKIP
        """
        return self._post("/invitations/accept", {"token": token, "password": password,
                                                  "name": name})


class Tokens(Group):
    def create(self, name: str, role: str | None = None, days: int = 90) -> dict[str, Any]:
        """Create an API token for the caller in its current organization (``role`` at most
        the caller's; ``days`` up to 365). The ``token`` is in this answer only.

        >>> t = c.tokens.create("ci", role="member", days=30)           # doctest: +SKIP
        >>> t["token"][:8]                                              # doctest: +SKIP
        'csm_tok_'
        """
        return self._post("/tokens", {"name": name, "role": role, "days": days})

    def list(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The caller's tokens (an admin's: the organization's): ``[{"id", "name", "role",
        "prefix", "expires_at", "revoked_at", "last_used_at"}]``; never the secrets.

        >>> [t["name"] for t in c.tokens.list() if not t["revoked_at"]]  # doctest: +SKIP
        """
        return self._list("/tokens", limit=limit)

    def pages(self, page_size: int = PAGE_MAX) -> Iterator[dict[str, Any]]:
        """The token list a page at a time (``{"items", "next_cursor"}``), for large organizations.

        >>> sum(len(p["items"]) for p in c.tokens.pages(page_size=100))  # doctest: +SKIP
        """
        return self._pages("/tokens", page_size=page_size)

    def revoke(self, token_id: str) -> dict[str, Any]:
        """Revoke a token; it stops working at once. Returns the token with ``revoked_at``.

        >>> c.tokens.revoke("tok_1a2b")["revoked_at"]                   # doctest: +SKIP
        """
        return self._delete(f"/tokens/{token_id}")


class Grants(Group):
    def create(self, resource_type: str, resource: str, permission: str, *, grantee_org: str | None = None,
               grantee_project: str | None = None, expires_at: datetime | None = None,
               limits: dict[str, int] | None = None) -> dict[str, Any]:
        """Grant ``permission`` (``metadata``, ``compute``, ``download`` or ``invoke``) on one
        of your resources (``dataset``, ``model``, ``deployment``, ...; by id or ``org/name``) to an
        organization or a project, optionally expiring and (``invoke``) with ``limits``
        (``{"per_minute": n, "per_day": n}``). Returns the grant.

        >>> c.grants.create("dataset", "st-marys/bc", "compute", grantee_org="riverside")  # doctest: +SKIP
        """
        body = {"resource_type": resource_type, "resource": resource, "permission": permission,
                "grantee_org": grantee_org, "grantee_project": grantee_project,
                "expires_at": expires_at.isoformat() if expires_at else None, "limits": limits}
        return self._post("/grants", {k: v for k, v in body.items() if v is not None})

    def list(self, direction: str = "all", limit: int | None = None) -> list[dict[str, Any]]:
        """Grants the organization gave, received or both (``direction``): ``[{"id",
        "resource_type", "resource", "permission", "owner_org", "grantee_org", "state", ...}]``.

        >>> [g["resource"] for g in c.grants.list("received")]          # doctest: +SKIP
        """
        return self._list("/grants", limit=limit, direction=direction)

    def pages(self, direction: str = "all", page_size: int = PAGE_MAX) -> Iterator[dict[str, Any]]:
        """The grant list a page at a time (``{"items", "next_cursor"}``).

        >>> next(c.grants.pages("given"))["items"]                       # doctest: +SKIP
        """
        return self._pages("/grants", page_size=page_size, direction=direction)

    def get(self, grant_id: str) -> dict[str, Any]:
        """One grant by id (its owner or grantee).

        >>> c.grants.get("gr_1a2b")["state"]                            # doctest: +SKIP
        'active'
        """
        return self._get(f"/grants/{grant_id}")

    def revoke(self, grant_id: str) -> dict[str, Any]:
        """Revoke a grant; it stops working at once. Returns the grant (``state`` revoked).

        >>> c.grants.revoke("gr_1a2b")["state"]                         # doctest: +SKIP
        'revoked'
        """
        return self._delete(f"/grants/{grant_id}")


class Audit(Group):
    def events(self, action: str | None = None, outcome: str | None = None, since_seq: int = 0,
               limit: int | None = 100) -> list[dict[str, Any]]:
        """Audit events that concern the caller's organization, newest first (filtered by
        ``action`` prefix and ``outcome``): ``[{"seq", "time", "action", "outcome", "actor_org_id",
        "resource_type", "resource_id", "details"}]``.

        >>> [e["action"] for e in c.audit.events(action="grant.", limit=5)]  # doctest: +SKIP
        """
        return self._list("/audit", limit=limit, action=action, outcome=outcome, since_seq=since_seq)

    def iter_events(self, action: str | None = None, outcome: str | None = None, since_seq: int = 0,
                    page_size: int = PAGE_MAX) -> Iterator[dict[str, Any]]:
        """The same events as ``events``, every page, fetched as the iteration reaches them.

        >>> sum(1 for _ in c.audit.iter_events(outcome="permission_denied"))  # doctest: +SKIP
        """
        return self._items("/audit", page_size=page_size, action=action, outcome=outcome, since_seq=since_seq)

    def verify(self, checkpoints: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Have the hub walk the whole chain; with ``checkpoints`` (as ``checkpoint()`` gave them)
        it must still match each one, or ``ok`` is false and ``problem`` names what was cut or
        rewritten. Each checkpoint is first checked offline against its own public key (see
        ``check_checkpoint``); one that was not signed by the hub raises ``InvalidInput``.

        >>> r = c.audit.verify([json.load(open("checkpoint.json"))])   # doctest: +SKIP
        >>> r["ok"], r["checkpoints"][0]["ok"]                         # doctest: +SKIP
        (True, True)
        """
        if not checkpoints:
            return self._get("/audit/verify")
        for cp in checkpoints:
            self.check_checkpoint(cp)
        return self._post("/audit/verify", {"checkpoints": checkpoints})

    def checkpoint(self) -> dict[str, Any]:
        """The chain's head (seq, hash) and the time, signed by the hub: save it and verify later.

        >>> Path("checkpoint.json").write_text(json.dumps(c.audit.checkpoint()))  # doctest: +SKIP
        """
        cp: dict[str, Any] = self._get("/audit/checkpoint")
        self.check_checkpoint(cp)
        return cp

    def public_key(self) -> dict[str, Any]:
        """The hub's checkpoint signing key: ``{"algorithm": "Ed25519", "key_id", "public_key"}``.

        >>> c.audit.public_key()["algorithm"]                         # doctest: +SKIP
        'Ed25519'
        """
        return self._get("/audit/public-key")

    @staticmethod
    def check_checkpoint(cp: dict[str, Any], public_key: str | None = None) -> None:
        """Offline: raise ``InvalidInput`` unless ``cp`` is signed by ``public_key`` (base64 Ed25519;
        default: the key the checkpoint names, so pass the key you kept to pin the hub).

        >>> Audit.check_checkpoint(cp, public_key=kept_key)           # doctest: +SKIP
        """
        from consortium.governance.audit_keys import check_checkpoint

        key = public_key or cp.get("public_key")
        if not isinstance(key, str):
            from consortium.errors import InvalidInput

            raise InvalidInput("the checkpoint names no public key to check it with",
                               hint="pass the hub's key (`consortium audit public-key`)")
        check_checkpoint(cp, key)


class Keys(Group):
    def status(self) -> dict[str, Any]:
        """The active master key and the organization data keys it wraps (hub operators).

        >>> c.keys.status()["active_master_key"]                        # doctest: +SKIP
        """
        return self._get("/keys")

    def rotate(self) -> dict[str, Any]:
        """Re-wrap every organization's data key under a new master key (hub operators; the
        data itself is not re-encrypted). Returns ``{"rewrapped", "active_master_key", "previous_master_key"}``.

        >>> c.keys.rotate()["rewrapped"]                                # doctest: +SKIP
        """
        return self._post("/keys/rotate")
