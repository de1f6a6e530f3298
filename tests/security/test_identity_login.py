"""Identity and login (security issue 15, findings 3, 4, 6, 7, 14b, 14e, 14f), through the real HTTP API.

3: operator power follows the credential's role; 4: removing a member ends its tokens and sessions
for good; 6: login and invitation acceptance are throttled; 7: ``next`` never leaves the site;
14b: "an admin token"; 14e: who may create organizations, and how many; 14f: the login form posts,
works without JavaScript, and no route takes credentials in its query string.
"""

from __future__ import annotations

import secrets
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


# -- 4: removing a member ends its credentials in that organization, for good
def login(http: Any, email: str, password: str = PASSWORD, **kw: Any) -> Any:
    r = http.post(f"{API}/auth/login", json={"email": email, "password": password}, **kw)
    http.cookies.clear()
    return r


def test_removed_member_tokens_and_sessions_end_for_good(http: Any, world: Any) -> None:
    admin = world.actor(world.org(), "admin")
    x = world.actor(admin.org, "member")
    minted = mint(http, x, "viewer", "dash")
    session = login(http, x.email).json()["session_token"]
    cookie = {"cookie": f"consortium_session={session}"}
    assert http.get(f"{API}/me", headers=cookie).json()["org"] == admin.org

    assert http.delete(f"{API}/members/{x.user_id}", headers=admin.headers).status_code == 204
    for h in (x.headers, bearer(minted), bearer(session), cookie):
        r = http.get(f"{API}/me", headers=h)
        assert r.status_code == 401, (h, r.status_code, r.text)
    listed = {t["name"]: t for t in http.get(f"{API}/tokens", headers=admin.headers).json()["items"]
              if t["user_id"] == x.user_id}
    assert listed and all(t["revoked_at"] for t in listed.values()), listed  # recorded, with the time
    ev = http.get(f"{API}/audit", params={"action": "remove_member"}, headers=admin.headers).json()["items"][-1]
    assert ev["details"] == {"tokens_revoked": 2, "sessions_ended": 1}, ev

    # invited again and accepted: the old token and session stay dead; a new login works
    inv = http.post(f"{API}/invitations", json={"email": x.email, "role": "admin"}, headers=admin.headers).json()
    ok = http.post(f"{API}/invitations/accept", json={"token": inv["token"], "password": PASSWORD})
    assert ok.status_code == 200, ok.text
    for h in (x.headers, bearer(minted), bearer(session), cookie):
        assert http.get(f"{API}/me", headers=h).status_code == 401, h
    fresh = login(http, x.email).json()["session_token"]
    assert http.get(f"{API}/me", headers=bearer(fresh)).json()["role"] == "admin"


def test_session_acting_elsewhere_survives_but_cannot_reach_the_left_org(http: Any, world: Any,
                                                                        services: Any) -> None:
    from consortium.governance import identity
    from consortium.governance.roles import Role
    from consortium.store.db import transaction

    admin = world.actor(world.org(f"aaa-{secrets.token_hex(3)}"), "admin")  # first by name: login's org
    x = world.actor(admin.org, "member")
    home = world.org(f"zzz-{secrets.token_hex(3)}")
    with transaction(services.session_factory) as s:
        identity.add_member(s, identity.org_by_name(s, home).id, x.user_id, Role.member)
    session = login(http, x.email).json()["session_token"]
    h = bearer(session)
    assert http.post(f"{API}/auth/switch-org", json={"org": home}, headers=h).status_code == 200
    assert http.delete(f"{API}/members/{x.user_id}", headers=admin.headers).status_code == 204
    assert http.get(f"{API}/me", headers=h).json()["org"] == home  # still a member there
    r = http.get(f"{API}/me", headers={**h, "x-consortium-org": admin.org})
    assert r.status_code == 404 and "not found among yours" in err(r)["message"]
    assert http.post(f"{API}/auth/switch-org", json={"org": admin.org}, headers=h).status_code == 404


def test_session_whose_org_membership_is_gone_is_401(http: Any, world: Any, services: Any) -> None:
    """Whatever removed the membership (here: the database itself), a session bound to it is 401."""
    from sqlalchemy import delete

    from consortium.store.db import transaction
    from consortium.store.tables.identity import Membership

    x = world.actor(world.org(), "member")
    session = login(http, x.email).json()["session_token"]
    with transaction(services.session_factory) as s:
        s.execute(delete(Membership).where(Membership.user_id == x.user_id))
    r = http.get(f"{API}/me", headers=bearer(session))
    assert r.status_code == 401 and "no organization you are a member of" in err(r)["message"], r.text


def test_demoted_member_old_token_acts_at_the_new_role(http: Any, world: Any) -> None:
    owner = world.actor(world.org(), "owner")
    x = world.actor(owner.org, "admin")
    r = http.patch(f"{API}/members/{x.user_id}", json={"role": "viewer"}, headers=owner.headers)
    assert r.status_code == 200 and r.json()["role"] == "viewer"
    assert http.get(f"{API}/me", headers=x.headers).json()["role"] == "viewer"
    r = http.post(f"{API}/invitations", json={"email": "n@example.org"}, headers=x.headers)
    assert r.status_code == 403


# -- 6: logins and invitation acceptance are throttled per account and per client address
def client_at(app: Any, address: str) -> Any:
    """A test client whose requests come from ``address`` (each throttle test its own)."""
    from fastapi.testclient import TestClient

    return TestClient(app, client=(address, 50000))


def end_waits(services: Any) -> None:
    """As if every current wait had run out (instead of sleeping through it)."""
    from datetime import timedelta

    from sqlalchemy import update

    from consortium.store.db import transaction
    from consortium.store.tables.base import utcnow
    from consortium.store.tables.throttle import Throttle

    with transaction(services.session_factory) as s:
        s.execute(update(Throttle).where(Throttle.blocked_until.is_not(None))
                  .values(blocked_until=utcnow() - timedelta(seconds=1)))


def audited(services: Any, action: str, outcome: str) -> list[str]:
    from sqlalchemy import select

    from consortium.store.tables.audit import AuditEvent

    with services.session_factory() as s:
        return list(s.scalars(select(AuditEvent.details).where(AuditEvent.action == action,
                                                                AuditEvent.outcome == outcome)))


def test_forty_wrong_passwords_then_the_right_one_is_429(app: Any, world: Any, services: Any) -> None:
    a = world.actor(world.org())
    c = client_at(app, "198.51.100.1")
    codes = [login(c, a.email, "wrong password").status_code for _ in range(40)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}, codes
    r = login(c, a.email)
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 30, r.headers
    assert "wait" in err(r)["message"] and err(r)["code"] == "quota_exceeded"
    r = login(client_at(app, "198.51.100.2"), a.email)  # per account: from anywhere
    assert r.status_code == 429
    assert any(a.email in d for d in audited(services, "login", "quota_exceeded"))

    end_waits(services)  # never locked out for good: once the wait is over, the owner gets in
    assert login(c, a.email).status_code == 200
    assert login(c, a.email, "wrong password").status_code == 401  # the success reset the count


def test_backoff_doubles_up_to_a_cap(app: Any, world: Any, services: Any) -> None:
    a = world.actor(world.org())
    c = client_at(app, "198.51.100.3")
    assert [login(c, a.email, "wrong password").status_code for _ in range(5)] == [401] * 5
    waits = []
    for _ in range(6):  # each further failure, once the wait is over, doubles the next wait
        r = login(c, a.email, "wrong password")
        assert r.status_code == 429
        waits.append(int(r.headers["retry-after"]))
        end_waits(services)
        assert login(c, a.email, "wrong password").status_code == 401
    assert [round(w, -1) for w in waits] == [30, 60, 120, 240, 300, 300], waits


def test_per_address_limit_across_accounts(app: Any, world: Any) -> None:
    org = world.org()
    people = [world.actor(org, "member") for _ in range(6)]
    c = client_at(app, "198.51.100.4")
    for p in people[:5]:  # 4 failures each: no account reaches its limit, the address does (20)
        assert {login(c, p.email, "wrong password").status_code for _ in range(4)} == {401}
    r = login(c, people[5].email)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert login(client_at(app, "198.51.100.5"), people[5].email).status_code == 200


def test_invitation_acceptance_is_throttled(app: Any, http: Any, world: Any, services: Any) -> None:
    admin = world.actor(world.org(), "admin")
    inv = http.post(f"{API}/invitations", json={"email": "guess.me@example.org"}, headers=admin.headers).json()
    c = client_at(app, "198.51.100.6")
    body = {"password": "a long password", "name": "G"}
    codes = [c.post(f"{API}/invitations/accept", json={**body, "token": f"csm_inv_guess{i}"}).status_code
             for i in range(12)]
    assert codes[:10] == [401] * 10 and set(codes[10:]) == {429}, codes
    r = c.post(f"{API}/invitations/accept", json={**body, "token": inv["token"]})
    assert r.status_code == 429 and "retry-after" in r.headers
    assert audited(services, "accept_invitation", "quota_exceeded")
    end_waits(services)
    assert c.post(f"{API}/invitations/accept", json={**body, "token": inv["token"]}).status_code == 200


def test_accepting_for_an_existing_account_throttles_its_password(app: Any, http: Any, world: Any) -> None:
    x = world.actor(world.org(), "member")
    admin = world.actor(world.org(), "admin")
    inv = http.post(f"{API}/invitations", json={"email": x.email}, headers=admin.headers).json()
    c = client_at(app, "198.51.100.7")
    codes = [c.post(f"{API}/invitations/accept", json={"token": inv["token"], "password": f"guess {i}!"})
             .status_code for i in range(6)]
    assert codes == [401] * 5 + [429], codes
    assert login(client_at(app, "198.51.100.8"), x.email).status_code == 429  # the same account


# -- 14e: who may create organizations, and how many
def test_org_creation_needs_an_admin_credential_and_is_rate_limited(http: Any, world: Any) -> None:
    admin = world.actor(world.org(), "admin")
    for role in ("viewer", "member"):
        tok = mint(http, admin, role, f"orgs-{role}")
        r = http.post(f"{API}/orgs", json={"name": f"by-{role}-{secrets.token_hex(3)}"}, headers=bearer(tok))
        assert r.status_code == 403 and "creating an organization" in err(r)["message"], r.text
    made = []
    for _ in range(3):
        r = http.post(f"{API}/orgs", json={"name": f"new-{secrets.token_hex(3)}"}, headers=admin.headers)
        assert r.status_code == 201, r.text
        made.append(r.json()["name"])
    r = http.post(f"{API}/orgs", json={"name": f"new-{secrets.token_hex(3)}"}, headers=admin.headers)
    assert r.status_code == 429 and 0 < int(r.headers["retry-after"]) <= 86400, r.text
    assert "at most 3 per day" in err(r)["message"]
    # a refused or failed creation gives its unit back; the creator owns what it created
    me = http.get(f"{API}/me", headers=admin.headers).json()
    assert set(made) <= {o["name"] for o in me["organizations"] if o["role"] == "owner"}


def test_hub_operator_may_create_more_organizations(http: Any, world: Any) -> None:
    op = world.actor(world.org(), "owner", operator=True)
    for _ in range(4):
        r = http.post(f"{API}/orgs", json={"name": f"op-{secrets.token_hex(3)}"}, headers=op.headers)
        assert r.status_code == 201, r.text


# -- 7 and 14f: the login form posts (no JavaScript needed), `next` stays on the site
EVIL_NEXT = ["/%09/127.0.0.1:8101/pwned", "/%0a/127.0.0.1:8101/pwned", "/%0d%0a/evil.example", "//evil.example",
             "/%5Cevil.example", "/%5C/evil.example", "https://evil.example", "javascript:alert(1)",
             "%20/evil.example", "/%E2%80%8B/evil.example"]


def form_page(c: Any, next_path: str = "/") -> tuple[Any, str]:
    """GET the login page (``next`` as given, already URL-encoded); returns it and its CSRF token."""
    import re

    r = c.get(f"/login?next={next_path}", follow_redirects=False)
    assert r.status_code == 200 and 'id="login-form"' in r.text, r.text
    m = re.search(r'name="csrf" value="([0-9a-f]{64})"', r.text)
    assert m, r.text
    return r, m.group(1)


def test_login_form_posts_without_javascript_and_sets_the_session(app: Any, world: Any) -> None:
    a = world.actor(world.org())
    c = client_at(app, "198.51.100.20")
    page, csrf = form_page(c, "/jobs%3Fstate%3Dfailed")
    assert '<form id="login-form" method="post" action="/login"' in page.text
    assert 'name="next" value="/jobs?state=failed"' in page.text
    nonce = page.headers["set-cookie"].lower()
    assert "consortium_login=" in nonce and "samesite=strict" in nonce and "httponly" in nonce
    r = c.post("/login", data={"email": a.email, "password": PASSWORD, "csrf": csrf, "next": "/jobs?state=failed"},
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/jobs?state=failed", r.text
    assert "httponly" in r.headers["set-cookie"].lower()
    me = c.get(f"{API}/me")  # the cookie the form set is a working session
    assert me.status_code == 200 and me.json()["email"] == a.email and me.json()["via"] == "session"


def test_login_form_errors_are_shown_on_the_form(app: Any, world: Any, services: Any) -> None:
    a = world.actor(world.org())
    c = client_at(app, "198.51.100.21")
    _, csrf = form_page(c)
    r = c.post("/login", data={"email": a.email, "password": "wrong password", "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 401 and "wrong email or password" in r.text and 'id="login-form"' in r.text
    assert f'value="{a.email}"' in r.text  # the email is kept, the password never
    assert any(a.email in d for d in audited(services, "ui.login", "unauthenticated"))
    for _ in range(5):
        _, csrf = form_page(c)
        r = c.post("/login", data={"email": a.email, "password": "wrong password", "csrf": csrf})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "wait" in r.text


def test_login_form_refuses_cross_site_posts(app: Any, world: Any) -> None:
    a = world.actor(world.org())
    c = client_at(app, "198.51.100.22")
    data = {"email": a.email, "password": PASSWORD}
    assert c.post("/login", data={**data, "csrf": "0" * 64}, follow_redirects=False).status_code == 403
    _, csrf = form_page(c)
    r = c.post("/login", data={**data, "csrf": csrf}, headers={"origin": "https://evil.example"},
               follow_redirects=False)
    assert r.status_code == 403 and "security token" in r.text
    c.cookies.clear()  # a token without the nonce cookie it belongs to (a cross-site post has none)
    assert c.post("/login", data={**data, "csrf": csrf}, follow_redirects=False).status_code == 403
    _, csrf = form_page(c)
    assert c.post("/login", data={**data, "csrf": csrf}, follow_redirects=False).status_code == 303


def test_next_never_leaves_the_site(app: Any, world: Any) -> None:
    a = world.actor(world.org())
    c = client_at(app, "198.51.100.23")
    for evil in EVIL_NEXT:
        page, csrf = form_page(c, evil)  # the form carries "/" instead
        assert 'data-next="/"' in page.text and 'name="next" value="/"' in page.text, evil
    from urllib.parse import unquote

    for evil in EVIL_NEXT:  # a POST naming the target itself gets "/" too
        c.cookies.delete("consortium_session")
        _, csrf = form_page(c)
        r = c.post("/login", data={"email": a.email, "password": PASSWORD, "csrf": csrf, "next": unquote(evil)},
                   follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/", (evil, r.headers.get("location"))
    for evil in EVIL_NEXT:  # logged in already: the login page sends the browser on, to "/"
        r = c.get(f"/login?next={evil}", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/", (evil, r.headers.get("location"))
    r = c.get("/login?next=/datasets", follow_redirects=False)
    assert r.headers["location"] == "/datasets"


def test_login_script_checks_next_too() -> None:
    """login.js navigates to ``next`` itself after a JSON login: its check, run by node."""
    import json
    import shutil
    import subprocess
    from pathlib import Path
    from urllib.parse import unquote

    import pytest

    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    src = (Path(__file__).resolve().parents[2] / "src/consortium/ui/static/js/login.js").read_text()
    fn = src[src.index("function safeNext"):src.index("document.addEventListener")]
    targets = [unquote(t) for t in EVIL_NEXT] + ["/jobs?state=failed", "/%09x"]
    script = (f"globalThis.location = {{origin: 'http://hub.example:8101'}};\n{fn}\n"
              f"console.log(JSON.stringify({json.dumps(targets)}.map(safeNext)));")
    out = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(out.stdout) == ["/"] * len(EVIL_NEXT) + ["/jobs?state=failed", "/%09x"]


def test_credentials_in_a_query_string_are_refused_on_every_route(http: Any, world: Any) -> None:
    a = world.actor(world.org())
    for method, url in (("GET", f"/login?email={a.email}&password=hunter2hunter2"),
                        ("POST", f"{API}/auth/login?email={a.email}&password={PASSWORD}"),
                        ("GET", f"{API}/me?token={a.token}"), ("GET", f"{API}/me?x={a.token}"),
                        ("GET", "/healthz?password=x"), ("GET", "/static/app.css?session=x"),
                        ("POST", f"{API}/invitations/accept?token=csm_inv_x&password=y"),
                        ("POST", f"{API}/deployments/any/predict?api_key=x"),
                        ("GET", f"{API}/datasets?Access-Token=x")):
        r = http.request(method, url, headers=a.headers if "/me" in url else {})
        assert r.status_code == 400, (url, r.status_code, r.text)
        e = err(r)
        assert e["code"] == "bad_request" and "request body" in e["hint"], e
        assert a.token not in r.text and "hunter2" not in r.text
    r = http.post("/v2/models/any/infer?token=x", json={})  # the inference protocol's own error shape
    assert r.status_code == 400 and "must not be sent in the URL" in r.json()["error"]
    assert http.get(f"{API}/datasets?scope=own", headers=a.headers).status_code == 200
