"""The SDK against a real hub over HTTP: every foundation group, and typed errors raised back."""

from __future__ import annotations

from typing import Any

import pytest

from consortium import Client
from consortium.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unauthenticated, Unavailable


def test_sdk_covers_foundation_and_raises_typed_errors(live_url: str, world: Any) -> None:
    a = world.actor(world.org())
    b = world.actor(world.org())
    ca, cb = Client(live_url, a.token), Client(live_url, b.token)
    assert ca.me()["org"] == a.org
    assert a.org in {o["name"] for o in ca.orgs.list()}
    inv = ca.invitations.create("sdk.person@example.org", "viewer")
    joined = Client(live_url).invitations.accept(inv["token"], "a long password", "SDK person")
    assert joined["role"] == "viewer"
    viewer = Client.login(live_url, "sdk.person@example.org", "a long password")
    assert viewer.me()["role"] == "viewer"
    with pytest.raises(PermissionDenied):
        viewer.invitations.create("x@example.org")
    tok = ca.tokens.create("sdk")
    assert tok["token"].startswith("csm_tok_")
    with pytest.raises(Conflict):
        ca.tokens.create("sdk")
    with pytest.raises(NotFound):
        cb.tokens.revoke(tok["id"])
    with pytest.raises(InvalidInput) as e:
        ca.grants.create("nonsense", "x", "compute", grantee_org=b.org)
    assert "unknown resource type" in str(e.value)
    with pytest.raises(NotFound):  # the deployments group shares through the grants call
        ca.deployments.share("no-such-deployment", b.org, per_minute=5)
    assert ca.audit.verify()["ok"]
    assert ca.audit.events(limit=5)
    with pytest.raises(Unauthenticated):
        Client(live_url, "csm_tok_bogus").me()
    with pytest.raises(Unavailable):
        Client("http://127.0.0.1:9", a.token, timeout=2).me()
