"""A route table keyed by path prefix in front of FastAPI's router (home-made, issue 22).

FastAPI 0.138 keeps every included router as a branch and matches a request by walking the
branches in order, each walk re-reading its routers' versions, and walks again to handle the
match: a request for ``/api/v1/datasets`` tried about 180 routes, half of the hub's CPU for that
request. ``RouteIndex`` sits where the router's own dispatch sits (``Router.middleware_stack``)
and tries only the routes whose literal leading path segments agree with the request's, in the
table's order, so the first full match is the one FastAPI's walk would find. It dispatches that
match as FastAPI does (the route's effective context: its full path, the included routers'
dependencies, prefixes and response class) with the route's request handler built once, not
per request. Anything else (no full match, a wrong method, a route kind it does not dispatch, a
``root_path``) goes to FastAPI's own router, so a 404, 405, redirect or low-priority route is
answered exactly as before. The route table itself, and so the OpenAPI document, is unchanged.

The index is built at the first request; a route added later is still served, by the fallback,
unless it would shadow an indexed route that an earlier router already matched (routes are only
appended in the hub). ``tests/api/test_route_index.py`` checks, for every route of the hub's
table, that the index picks the route FastAPI picks, so a FastAPI upgrade that changes the
internals used here (``fastapi.routing``'s effective route context) fails loudly; if they are
missing at build time, the index stays out of the way and logs why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute, Match, Router
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)
DEPTH = 3  # leading segments keyed on: /api/v1/<collection>
MAX_KEYS = 4096  # distinct request prefixes remembered; past it the memo starts over

Dispatch = Callable[[Scope, Receive, Send], Any]


class _Entry:
    """One route of the table: how to match it and how to serve a full match (None: leave the
    request to FastAPI's router)."""

    __slots__ = ("handle", "matches", "order", "route")

    def __init__(self, order: int, route: BaseRoute, matches: Callable[[Scope], tuple[Match, Scope]],
                 handle: Dispatch | None) -> None:
        self.order, self.route, self.matches, self.handle = order, route, matches, handle


def literal_prefix(path: str) -> tuple[str, ...]:
    """The leading path segments with no parameter in them, at most ``DEPTH``.

    >>> literal_prefix("/api/v1/datasets/{org}/{dataset}")
    ('api', 'v1', 'datasets')
    >>> literal_prefix("/static/{path:path}"), literal_prefix("/{page}"), literal_prefix("/api/v1")
    (('static',), (), ('api', 'v1'))
    """
    out = []
    for seg in path.split("/")[1:DEPTH + 1]:
        if "{" in seg:
            break
        out.append(seg)
    return tuple(out)


def _segments(path: str) -> tuple[str, ...]:
    return tuple(path.split("/")[1:DEPTH + 1])


class RouteIndex:
    """The router's dispatch, trying only the routes whose literal prefix the request's path has."""

    def __init__(self, router: Router, fallback: ASGIApp) -> None:
        self.router, self.fallback = router, fallback
        self._by_prefix: dict[tuple[str, ...], list[_Entry]] = {}
        self._built_for = -1
        self._memo: dict[tuple[str, ...], list[_Entry]] = {}
        self.disabled = ""  # why the index stays out of the way ("": it does not)

    def build(self) -> None:
        by_prefix: dict[tuple[str, ...], list[_Entry]] = {}
        try:
            from fastapi.routing import (
                _FASTAPI_EFFECTIVE_ROUTE_CONTEXT_KEY,
                _effective_route_context_var,
                _get_fastapi_scope,
            )
        except ImportError as e:  # another FastAPI: its own routing serves every request
            self.disabled = f"fastapi.routing changed ({e}); routing through FastAPI's router"
            log.warning("route index off: %s", self.disabled)
            return
        for order, rc in enumerate(iter_route_contexts(self.router.routes)):
            route, eff = rc.original_route, getattr(rc, "_route_context", None)
            if eff is None:  # a route of the router itself: matched and served as Router.app does
                entry = _Entry(order, route, route.matches, route.handle)
                path = getattr(route, "path", None)
            elif isinstance(route, APIRoute) and hasattr(eff, "matches") and hasattr(eff, "path"):
                if type(route).handle is APIRoute.handle:
                    token = _effective_route_context_var.set(eff)
                    try:  # the handler APIRoute.handle builds per request, built once
                        app = _served(route.get_route_handler())
                    finally:
                        _effective_route_context_var.reset(token)
                else:  # a route class with its own handle (the UI's PageRoute): called as FastAPI calls it
                    app = route.handle
                entry = _Entry(order, route, _api_matcher(route, eff),
                               _api_handler(eff, app, _get_fastapi_scope, _FASTAPI_EFFECTIVE_ROUTE_CONTEXT_KEY))
                path = eff.path
            else:  # an included non-API route: where it matches, FastAPI's router serves the request
                entry = _Entry(order, route, getattr(eff, "matches", _always), None)
                path = getattr(eff, "path", None) if hasattr(eff, "matches") else None
            key = literal_prefix(path) if isinstance(path, str) and path.startswith("/") else ()
            by_prefix.setdefault(key, []).append(entry)
        self._by_prefix, self._memo = by_prefix, {}
        self._built_for = len(self.router.routes)

    def candidates(self, path: str) -> list[_Entry]:
        segs = _segments(path)
        found = self._memo.get(segs)
        if found is None:
            found = sorted((e for j in range(len(segs) + 1) for e in self._by_prefix.get(segs[:j], ())),
                           key=lambda e: e.order)
            if len(self._memo) >= MAX_KEYS:
                self._memo = {}
            self._memo[segs] = found
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path") or self.disabled:
            await self.fallback(scope, receive, send)
            return
        if self._built_for != len(self.router.routes):
            self.build()
            if self.disabled:
                await self.fallback(scope, receive, send)
                return
        for entry in self.candidates(scope["path"]):
            match, child = entry.matches(scope)
            if match == Match.NONE:
                continue
            if match == Match.PARTIAL:
                continue  # the path with another method: a full match may follow (else a 405)
            if entry.handle is not None:
                scope.setdefault("router", self.router)
                scope.update(child)
                await entry.handle(scope, receive, send)
                return
            break  # a route served by FastAPI: its router decides
        await self.fallback(scope, receive, send)


def _always(scope: Scope) -> tuple[Match, Scope]:
    return Match.FULL, {}


def _served(handler: Any) -> Dispatch:
    from fastapi.routing import request_response

    app: Dispatch = request_response(handler)
    return app


def _api_matcher(route: APIRoute, eff: Any) -> Callable[[Scope], tuple[Match, Scope]]:
    def matches(scope: Scope) -> tuple[Match, Scope]:
        match, child = eff.matches(scope)
        if match != Match.NONE:
            child["route"] = route  # as APIRoute.matches: the route the endpoint was declared on
        return match, child

    return matches


def _api_handler(eff: Any, app: Dispatch, fastapi_scope: Callable[[Scope], dict[str, Any]], key: str) -> Dispatch:
    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        fastapi_scope(scope)[key] = eff  # what FastAPI's walk leaves in the scope
        await app(scope, receive, send)

    return handle


def install(router: Router) -> RouteIndex:
    """Put a ``RouteIndex`` in front of ``router``'s own dispatch (its ``middleware_stack``)."""
    index = RouteIndex(router, router.middleware_stack)
    router.middleware_stack = index
    return index
