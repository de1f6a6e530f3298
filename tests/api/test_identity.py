"""Identity through the HTTP API: login, tokens, invitations, roles, and bad input with clear 4xx."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update

from consortium.store.db import transaction
from consortium.store.tables.base import utcnow
from consortium.store.tables.identity import ApiToken, Organization


def err(r: Any) -> dict[str, Any]:
    body = r.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return body["error"]  # type: ignore[no-any-return]


def test_login_session_cookie_and_wrong_password(http: Any, world: Any) -> None:
    a = world.actor(world.org())
    bad = http.post("/api/v1/auth/login", json={"email": a.email, "password": "wrong password"})
    assert bad.status_code == 401 and "wrong email or password" in err(bad)["message"]
    ok = http.post("/api/v1/auth/login", json={"email": a.email, "password": "correct horse battery"})
    assert ok.status_code == 200, ok.text
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    token = ok.json()["session_token"]
    me = http.get("/api/v1/me", headers={"authorization": f"Bearer {token}"}).json()
    assert me["org"] == a.org and me["via"] == "session"
    http.cookies.clear()
    assert http.post("/api/v1/auth/logout", headers={"authorization": f"Bearer {token}"}).status_code == 204
    assert http.get("/api/v1/me", headers={"authorization": f"Bearer {token}"}).status_code == 401


def test_user_in_two_orgs_switches(http: Any, world: Any, services: Any) -> None:
    a = world.actor(world.org())
    other = world.org()
    from consortium.governance import identity
    from consortium.governance.roles import Role

    with transaction(services.session_factory) as s:
        identity.add_member(s, identity.org_by_name(s, other).id, a.user_id, Role.viewer)
    tok = http.post("/api/v1/auth/login", json={"email": a.email, "password": "correct horse battery"}).json()
    http.cookies.clear()
    h = {"authorization": f"Bearer {tok['session_token']}"}
    assert {o["name"] for o in tok["organizations"]} == {a.org, other}
    r = http.post("/api/v1/auth/switch-org", json={"org": other}, headers=h)
    assert r.status_code == 200 and r.json()["org"] == other and r.json()["role"] == "viewer"
    assert http.get("/api/v1/me", headers=h).json()["org"] == other
    assert http.get("/api/v1/me", headers={**h, "x-consortium-org": a.org}).json()["org"] == a.org


def test_tokens_shown_once_hashed_expire_and_revoke(http: Any, world: Any, services: Any) -> None:
    a = world.actor(world.org())
    r = http.post("/api/v1/tokens", json={"name": "ci", "role": "viewer", "days": 1}, headers=a.headers)
    assert r.status_code == 201
    t = r.json()
    h = {"authorization": f"Bearer {t['token']}"}
    assert http.get("/api/v1/me", headers=h).json()["role"] == "viewer"
    assert all("token" not in x for x in http.get("/api/v1/tokens", headers=a.headers).json()["items"])
    with transaction(services.session_factory) as s:
        row = s.get(ApiToken, t["id"])
        assert t["token"] not in (row.token_hash, row.prefix)
        s.execute(update(ApiToken).where(ApiToken.id == t["id"]).values(expires_at=utcnow() - timedelta(seconds=1)))
    r = http.get("/api/v1/me", headers=h)
    assert r.status_code == 401 and "expired" in err(r)["message"]
    t2 = http.post("/api/v1/tokens", json={"name": "ci2"}, headers=a.headers).json()
    h2 = {"authorization": f"Bearer {t2['token']}"}
    assert http.delete(f"/api/v1/tokens/{t2['id']}", headers=a.headers).status_code == 200
    r = http.get("/api/v1/me", headers=h2)
    assert r.status_code == 401 and "revoked" in err(r)["message"]
    # a viewer cannot mint a stronger token
    r = http.post("/api/v1/tokens", json={"name": "up", "role": "owner"}, headers=h2)
    assert r.status_code == 401
    v = world.actor(a.org, "viewer")
    r = http.post("/api/v1/tokens", json={"name": "up", "role": "owner"}, headers=v.headers)
    assert r.status_code == 403


def test_invitation_flow(http: Any, world: Any) -> None:
    admin = world.actor(world.org(), "admin")
    r = http.post("/api/v1/invitations", json={"email": "new.person@example.org", "role": "member"},
                  headers=admin.headers)
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    bad = http.post("/api/v1/invitations/accept", json={"token": token, "password": "short"})
    assert bad.status_code == 422 and "too short" in err(bad)["message"]
    ok = http.post("/api/v1/invitations/accept", json={"token": token, "password": "a long password", "name": "N"})
    assert ok.status_code == 200 and ok.json()["org"] == admin.org and ok.json()["role"] == "member"
    again = http.post("/api/v1/invitations/accept", json={"token": token, "password": "a long password"})
    assert again.status_code == 409 and "already accepted" in err(again)["message"]
    members = http.get("/api/v1/members", headers=admin.headers).json()["items"]
    assert "new.person@example.org" in {m["email"] for m in members}


def test_bad_input_gets_clear_4xx_and_nothing_half_written(http: Any, world: Any, services: Any) -> None:
    a = world.actor(world.org())
    h = {**a.headers, "content-type": "application/json"}
    r = http.post("/api/v1/orgs", content=b'{"name": "x', headers=h)
    assert r.status_code == 422 and "not valid JSON" in err(r)["message"]
    r = http.post("/api/v1/orgs", json={"name": "fine-name", "colour": "red"}, headers=a.headers)
    assert r.status_code == 422 and "colour: unknown field" in err(r)["message"]
    r = http.post("/api/v1/orgs", json={"name": "n" * 41}, headers=a.headers)
    assert r.status_code == 422 and "name" in err(r)["message"]
    r = http.post("/api/v1/orgs", json={"name": "Bad Name!"}, headers=a.headers)
    assert r.status_code == 422 and "lowercase" in err(r)["hint"]
    r = http.post("/api/v1/orgs", json={"name": a.org}, headers=a.headers)
    assert r.status_code == 409 and "already exists" in err(r)["message"]
    r = http.post("/api/v1/orgs", content=b"{" + b" " * (70 * 1024) + b"}", headers=h)
    assert r.status_code == 413 and err(r)["code"] == "payload_too_large"
    r = http.get("/api/v1/me", headers={"authorization": "Bearer csm_tok_nonsense"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = http.get("/api/v1/nowhere", headers=a.headers)
    assert r.status_code == 404 and err(r)["code"] == "not_found"
    with transaction(services.session_factory) as s:
        from sqlalchemy import func, select

        n = s.scalar(select(func.count()).select_from(Organization).where(Organization.name.in_(["fine-name", "x"])))
    assert n == 0


def test_last_owner_cannot_leave(http: Any, world: Any) -> None:
    a = world.actor(world.org())
    r = http.delete(f"/api/v1/members/{a.user_id}", headers=a.headers)
    assert r.status_code == 409 and "last owner" in err(r)["message"]


def test_openapi_is_complete_and_protected(http: Any, world: Any) -> None:
    assert http.get("/openapi.json").status_code == 401
    a = world.actor(world.org())
    spec = http.get("/openapi.json", headers=a.headers).json()
    assert "/api/v1/grants" in spec["paths"] and "GrantPublic" in spec["components"]["schemas"]
