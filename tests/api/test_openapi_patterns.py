"""Issue 21, point 19: the OpenAPI spec carries the hub's name patterns and enums, and they are the
rules the hub applies, so a generated client neither sends what the hub refuses nor refuses what
the hub takes. (securitySchemes, the real error bodies and schema names without module paths are
checked by tests/security/test_schemathesis.py::test_openapi_declares_bearer_and_the_real_error_body;
the schemathesis run checks at large that bodies the schema allows are accepted.)"""

from __future__ import annotations

import re
import secrets
from typing import Any

from consortium.governance.names import ORG_NAME
from consortium.governance.roles import Permission, Role

API = "/api/v1"


def _spec(http: Any, actor: Any) -> dict[str, Any]:
    r = http.get("/openapi.json", headers=actor.headers)
    assert r.status_code == 200
    return r.json()  # type: ignore[no-any-return]


def test_patterns_and_enums_are_the_hubs_rules(http: Any, world: Any, services: Any) -> None:
    a = world.actor(world.org(), "owner")
    spec = _spec(http, a)
    s = spec["components"]["schemas"]
    assert s["OrgCreate"]["properties"]["name"]["pattern"] == ORG_NAME.regex.pattern
    assert s["ProjectCreate"]["properties"]["name"]["pattern"]
    dep = s["DeploymentCreate"]["properties"]
    assert dep["name"]["pattern"] and dep["model"]["pattern"]
    assert s["InvitationCreate"]["properties"]["email"]["pattern"]
    grant = s["GrantCreate"]["properties"]
    assert grant["permission"]["enum"] == [p.value for p in Permission]
    assert sorted(grant["resource_type"]["enum"]) == sorted(services.resource_types.names())
    assert set(s["Role"]["enum"]) == {r.value for r in Role}
    params = {(p, prm["name"]): prm["schema"] for p, item in spec["paths"].items() for op in item.values()
              for prm in op.get("parameters", [])}
    assert re.fullmatch(params[(f"{API}/grants", "direction")]["pattern"], "received")
    metric = params[(f"{API}/deployments/{{deployment}}/timeseries", "metric")]
    assert metric["enum"] == ["latency", "accuracy", "drift"]


def test_names_at_the_patterns_edges_are_taken_and_just_outside_refused(http: Any, world: Any) -> None:
    """The spec's pattern, applied by hand, predicts the hub's answer: 201 inside, 422 outside
    (a hub operator, whom the organizations-per-day quota does not stop)."""
    a = world.actor(world.org(), "owner", operator=True)
    pattern = re.compile(_spec(http, a)["components"]["schemas"]["OrgCreate"]["properties"]["name"]["pattern"])
    tag = secrets.token_hex(2)
    inside = [f"o{tag}", f"{tag}-{'x' * (40 - len(tag) - 1)}", f"9{tag}-0"]
    outside = [f"-{tag}", f"{tag}-", f"O{tag}", "ab", "a" * 41, f"o_{tag}"]
    for name in inside:
        assert pattern.fullmatch(name), name
        r = http.post(f"{API}/orgs", json={"name": name}, headers=a.headers)
        assert r.status_code == 201, (name, r.text)
    for name in outside:
        assert not pattern.fullmatch(name), name
        r = http.post(f"{API}/orgs", json={"name": name}, headers=a.headers)
        assert r.status_code == 422 and "name" in r.text, (name, r.text)
