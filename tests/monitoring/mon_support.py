"""Helpers of the monitoring tests (import as ``from mon_support import deploy``)."""

from __future__ import annotations

import secrets
from typing import Any


def deploy(http: Any, owner: Any, sample_rate: float | None = 1.0, caller: Any = None, **settings: Any) -> str:
    name = f"bc-{secrets.token_hex(4)}"
    r = http.post("/api/v1/deployments", json={"name": name, "model": "bc-risk:1"}, headers=owner.headers)
    assert r.status_code == 201, r.text
    if sample_rate is not None or settings:
        body = {**({"sample_rate": sample_rate} if sample_rate is not None else {}), **settings}
        r = http.patch(f"/api/v1/deployments/{name}/monitoring", json=body, headers=owner.headers)
        assert r.status_code == 200, r.text
    if caller is not None:
        g = http.post("/api/v1/grants", json={"resource_type": "deployment", "resource": name,
                                              "permission": "invoke", "grantee_org": caller.org},
                      headers=owner.headers)
        assert g.status_code == 201, g.text
    return name
