"""Identity and login (security issue 15, findings 3, 4, 6, 7, 14b, 14e, 14f), through the real HTTP API.

3: operator power follows the credential's role; 4: removing a member ends its tokens and sessions
for good; 6: login and invitation acceptance are throttled; 7: ``next`` never leaves the site;
14b: "an admin token"; 14e: who may create organizations, and how many; 14f: the login form posts,
works without JavaScript, and no route takes credentials in its query string.
"""

from __future__ import annotations

from typing import Any

PASSWORD = "correct horse battery"  # what ``World.actor`` gives every user
API = "/api/v1"


def err(r: Any) -> dict[str, Any]:
    body = r.json()
    assert set(body) == {"error"}, body
    return body["error"]  # type: ignore[no-any-return]


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def mint(http: Any, actor: Any, role: str, name: str) -> str:
    r = http.post(f"{API}/tokens", json={"name": name, "role": role}, headers=actor.headers)
    assert r.status_code == 201, r.text
    return r.json()["token"]  # type: ignore[no-any-return]


# -- 3: operator power needs an operator-level role on the credential used
def test_operator_power_follows_the_credential_role(http: Any, world: Any) -> None:
    op = world.actor(world.org(), "owner", operator=True)
    viewer, member, admin = (mint(http, op, role, f"op-{role}") for role in ("viewer", "member", "admin"))
    for tok in (viewer, member):
        me = http.get(f"{API}/me", headers=bearer(tok)).json()
        assert me["is_operator"] is False and me["role"] in ("viewer", "member"), me
        for method, path in (("POST", f"{API}/keys/rotate"), ("GET", f"{API}/keys")):
            r = http.request(method, path, headers=bearer(tok))
            assert r.status_code == 403 and "hub operators" in err(r)["message"], r.text
    for tok in (admin, op.token):  # admin is the lowest operator-level role
        assert http.get(f"{API}/me", headers=bearer(tok)).json()["is_operator"] is True
        assert http.get(f"{API}/keys", headers=bearer(tok)).status_code == 200


def test_operator_session_in_an_org_where_it_is_a_viewer_is_no_operator(http: Any, world: Any,
                                                                         services: Any) -> None:
    from consortium.governance import identity
    from consortium.governance.roles import Role
    from consortium.store.db import transaction

    op = world.actor(world.org(), "owner", operator=True)
    other = world.org()
    with transaction(services.session_factory) as s:
        identity.add_member(s, identity.org_by_name(s, other).id, op.user_id, Role.viewer)
    tok = http.post(f"{API}/auth/login", json={"email": op.email, "password": PASSWORD}).json()["session_token"]
    http.cookies.clear()
    h = {**bearer(tok), "x-consortium-org": other}
    me = http.get(f"{API}/me", headers=h).json()
    assert me["org"] == other and me["role"] == "viewer" and me["is_operator"] is False, me
    assert http.get(f"{API}/keys", headers=h).status_code == 403
    assert http.get(f"{API}/keys", headers={**bearer(tok), "x-consortium-org": op.org}).status_code == 200


# -- 14b: the article follows the word
def test_token_role_refusal_reads_an_admin_token(http: Any, world: Any) -> None:
    member = world.actor(world.org(), "member")
    r = http.post(f"{API}/tokens", json={"name": "up", "role": "admin"}, headers=member.headers)
    assert r.status_code == 403 and "cannot create an admin token" in err(r)["message"], r.text
    r = http.post(f"{API}/tokens", json={"name": "up", "role": "owner"}, headers=member.headers)
    assert r.status_code == 403 and "cannot create an owner token" in err(r)["message"], r.text
