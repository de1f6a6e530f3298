"""Access rules declared on every route, and checked for every route by the authorization-matrix test.

A route states who may call it with ``@rule(...)``; the dependencies in ``deps`` enforce it. The
test in ``tests/api/test_authorization_matrix.py`` walks the app's whole route table and fails
for a route without a rule, or one whose behaviour does not match its rule.

Kinds:
- ``public``: no credential (health probes only).
- ``credential``: the request body carries the credential itself (login, accepting an invitation).
- ``self``: any authenticated caller, acting on itself or on directory data.
- ``org``: acts inside the caller's current organization, needing at least ``role``.
- ``resource``: addresses a resource named by a path parameter; another organization without a
  grant gets 404, a role below ``role`` gets 403.
- ``operator``: hub operators only.
- ``metrics``: hub operators, or any caller from an address in ``settings.metrics_allow`` (Prometheus).
- ``page``: a web UI page (HTML); an anonymous browser is redirected (303) to the login page; an
  authenticated caller follows ``org`` (no path parameter) or ``resource`` (a path parameter names
  the resource) and gets the 404 or 403 *page*.
- ``page_public``: the login page and static assets of the web UI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from consortium.governance.roles import Role

Kind = Literal["public", "credential", "self", "org", "resource", "operator", "metrics", "page", "page_public"]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Rule:
    kind: Kind
    role: Role = Role.viewer


def rule(kind: Kind, role: Role = Role.viewer) -> Callable[[F], F]:
    def mark(fn: F) -> F:
        fn.__access_rule__ = Rule(kind, role)  # type: ignore[attr-defined]  # a marker rule_of reads back
        return fn

    return mark


def rule_of(endpoint: Callable[..., Any]) -> Rule | None:
    return getattr(endpoint, "__access_rule__", None)


@dataclass(frozen=True)
class RouteInfo:
    path: str
    methods: frozenset[str]
    name: str
    endpoint: Callable[..., Any] | None
    rule: Rule | None


def route_table(app: Any) -> list[RouteInfo]:
    """Every HTTP route the app serves, with its full path and declared rule (mounts excluded)."""
    from fastapi.routing import iter_route_contexts
    from starlette.routing import Mount

    out = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if isinstance(route, Mount) or ctx.path is None or not ctx.methods:
            continue
        endpoint = getattr(route, "endpoint", None)
        out.append(RouteInfo(ctx.path, frozenset(ctx.methods), ctx.name or "", endpoint,
                             rule_of(endpoint) if endpoint else None))
    return out
