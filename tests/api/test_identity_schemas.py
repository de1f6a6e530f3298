"""The identity routes' answers (auth, me, orgs, members, invitations, tokens, keys): every route
declares its response model, the JSON keys are the ones the SDK, CLI and web UI read, and a secret
(an API token, an invitation token, a session token) is answered once, by the route that creates
it, and never by a list, a revocation or ``/me``."""

from __future__ import annotations

import json
from typing import Any, get_args, get_origin

from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

from consortium.api.access import route_table

API = "/api/v1"
IDENTITY = tuple(f"{API}/{p}" for p in ("auth", "me", "orgs", "members", "invitations", "tokens", "keys"))
SECRETS = {"token", "session_token"}
# the one operation that answers each secret (method, path) -> property
SHOWN_ONCE = {("post", f"{API}/tokens"): "token", ("post", f"{API}/invitations"): "token",
              ("post", f"{API}/auth/login"): "session_token"}

TOKEN_KEYS = {"id", "name", "user_id", "role", "prefix", "created_at", "expires_at", "revoked_at", "last_used_at"}
INVITATION_KEYS = {"id", "email", "role", "created_at", "expires_at", "accepted_at", "revoked_at"}
MEMBER_KEYS = {"user_id", "email", "name", "role", "joined_at"}
ORG_KEYS = {"id", "name", "display_name", "description", "created_at"}
ME_KEYS = {"user_id", "email", "name", "org", "role", "via", "is_operator", "organizations"}


def _properties(spec: dict[str, Any], node: Any) -> set[str]:
    """Every property name reachable from a schema node, through references."""
    seen: set[str] = set()
    if isinstance(node, dict):
        if "$ref" in node:
            return _properties(spec, spec["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]])
        seen |= set(node.get("properties", {}))
        for v in node.values():
            seen |= _properties(spec, v)
    elif isinstance(node, list):
        for v in node:
            seen |= _properties(spec, v)
    return seen


def test_every_identity_route_declares_its_answer(http: Any) -> None:
    routes = [(ctx.path, ctx.original_route) for ctx in iter_route_contexts(http.app.routes)
              if ctx.path and ctx.path.startswith(IDENTITY) and isinstance(ctx.original_route, APIRoute)]
    assert len({(m, path) for path, r in routes for m in r.methods}) == 20  # incl. GET /orgs/{org}/processing-record
    for path, r in routes:
        if r.status_code == 204:  # logout and member removal answer no body
            assert r.response_model is None, path
        else:  # a pydantic model, or a list of one: not a dict FastAPI infers from the annotation
            model = get_args(r.response_model)[0] if get_origin(r.response_model) is list else r.response_model
            assert isinstance(model, type) and issubclass(model, BaseModel), \
                f"{sorted(r.methods)} {path} answers {r.response_model}, not a model"


def test_secrets_only_in_the_answer_that_creates_them(http: Any, world: Any) -> None:
    a = world.actor(world.org(), "owner", operator=True)
    spec = http.get("/openapi.json", headers=a.headers).json()
    ops = {(r.path, m.lower()) for r in route_table(http.app) for m in r.methods if r.path.startswith(API)}
    for path, method in sorted(ops):
        op = spec["paths"][path][method]
        answered = set()
        for status, response in op["responses"].items():
            if status.startswith("2"):
                answered |= _properties(spec, response.get("content", {}))
        expected = {SHOWN_ONCE[(method, path)]} if (method, path) in SHOWN_ONCE else set()
        assert answered & SECRETS == expected, f"{method.upper()} {path} answers {answered & SECRETS}"


def test_answers_keep_their_keys_and_show_secrets_once(http: Any, world: Any) -> None:
    admin = world.actor(world.org(), "owner", operator=True)
    h = admin.headers
    tok = http.post(f"{API}/tokens", json={"name": "ci", "role": "viewer"}, headers=h)
    assert tok.status_code == 201 and set(tok.json()) == TOKEN_KEYS | {"token"}, tok.text
    inv = http.post(f"{API}/invitations", json={"email": "keys@example.org"}, headers=h)
    assert inv.status_code == 201 and set(inv.json()) == INVITATION_KEYS | {"token"}, inv.text
    login = http.post(f"{API}/auth/login", json={"email": admin.email, "password": "correct horse battery"})
    http.cookies.clear()
    assert login.status_code == 200 and set(login.json()) == ME_KEYS | {"session_token", "expires_at"}
    secrets = [tok.json()["token"], inv.json()["token"], login.json()["session_token"]]

    answers = {
        "tokens": http.get(f"{API}/tokens", headers=h), "invitations": http.get(f"{API}/invitations", headers=h),
        "me": http.get(f"{API}/me", headers=h), "members": http.get(f"{API}/members", headers=h),
        "orgs": http.get(f"{API}/orgs", headers=h), "org": http.get(f"{API}/orgs/{admin.org}", headers=h),
        "revoked_token": http.delete(f"{API}/tokens/{tok.json()['id']}", headers=h),
        "revoked_invitation": http.delete(f"{API}/invitations/{inv.json()['id']}", headers=h),
        "keys": http.get(f"{API}/keys", headers=h),
    }
    for name, r in answers.items():
        assert r.status_code == 200, (name, r.text)
        assert not any(s in r.text for s in secrets), f"{name} shows a secret"
    body = {k: r.json() for k, r in answers.items()}
    for listed in ("tokens", "invitations", "members", "orgs"):  # a page: {"items": [...], "next_cursor": ...}
        assert set(body[listed]) == {"items", "next_cursor"}, body[listed]
        body[listed] = body[listed]["items"]
    assert all(set(t) == TOKEN_KEYS for t in body["tokens"]) and set(body["revoked_token"]) == TOKEN_KEYS
    assert all(set(i) == INVITATION_KEYS for i in body["invitations"])
    assert set(body["revoked_invitation"]) == INVITATION_KEYS and body["revoked_invitation"]["revoked_at"]
    assert set(body["me"]) == ME_KEYS and set(body["me"]["organizations"][0]) == {"name", "display_name", "role"}
    assert [set(m) for m in body["members"]] == [MEMBER_KEYS]
    assert all(set(o) == ORG_KEYS for o in body["orgs"]) and set(body["org"]) == ORG_KEYS
    assert set(body["keys"]) == {"active_master_key", "source", "data_keys", "wrapped_by", "audit_key"}
    assert body["keys"]["data_keys"] == sum(body["keys"]["wrapped_by"].values()) > 0
    changed = http.patch(f"{API}/members/{admin.user_id}", json={"role": "owner"}, headers=h)
    assert changed.status_code == 200 and set(changed.json()) == MEMBER_KEYS
    assert json.loads(changed.text)["role"] == "owner"
