"""The route index (consortium.api.route_index) picks, for every route of the hub's table, the very
route FastAPI's own routing picks, and leaves 404s and 405s to FastAPI."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from starlette.routing import Match

from consortium.api.access import route_table
from consortium.api.route_index import RouteIndex


def _index(app: Any) -> RouteIndex:
    index = app.router.middleware_stack
    assert isinstance(index, RouteIndex), "create_app puts the route index in front of the router"
    index.build()
    assert not index.disabled, index.disabled
    return index


def _scope(app: Any, method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "root_path": "",
            "query_string": b"", "headers": [], "path_params": {}, "app": app, "state": {},
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "http_version": "1.1", "scheme": "http"}


def _fastapi_pick(index: RouteIndex, scope: dict[str, Any]) -> Any:
    """The route FastAPI's router selects: it writes it into the scope before running it (the run
    itself fails here, outside the app's middleware, and is not what is compared)."""
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_m: Any) -> None:
        return None

    try:
        asyncio.run(index.fallback(scope, receive, send))
    except Exception:  # noqa: BLE001, S110 - only the selection matters
        pass
    return scope.get("route")


@pytest.mark.one_backend
def test_every_route_is_found_as_fastapi_finds_it(app: Any) -> None:
    index = _index(app)
    checked = 0
    for info in route_table(app):
        path = re.sub(r"\{[^}]+\}", "x1", info.path)
        for method in sorted(info.methods - {"HEAD"}):
            picked = next((e for e in index.candidates(path)
                           if e.matches(_scope(app, method, path))[0] == Match.FULL), None)
            assert picked is not None, (method, path)
            want = _fastapi_pick(index, _scope(app, method, path))
            assert picked.route is want, (method, info.path, picked.route, want)
            checked += 1
    assert checked > 150


@pytest.mark.one_backend
def test_unknown_paths_and_methods_are_fastapis_answers(http: Any) -> None:
    r = http.get("/api/v1/no-such-collection")
    assert r.status_code == 404
    r = http.put("/api/v1/me")
    assert r.status_code == 405 and "GET" in r.headers.get("allow", "")
    r = http.get("/api/v1/datasets")
    assert r.status_code == 401 and "credential" in r.text


@pytest.mark.one_backend
def test_a_route_after_another_method_of_its_path_is_served_by_the_index(app: Any, http: Any, world: Any) -> None:
    """``POST /tokens`` precedes ``GET /tokens`` in the table: the POST's partial match (another
    method) must not hand the GET to FastAPI's walk, which a full match later in the table serves;
    a path with no full match at all still gets FastAPI's 405."""
    index = _index(app)
    fell_back: list[str] = []
    fallback = index.fallback

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        fell_back.append(f"{scope['method']} {scope['path']}")
        await fallback(scope, receive, send)

    index.fallback = counting
    try:
        a = world.actor(world.org(), "admin")
        for path in ("/api/v1/tokens", "/api/v1/grants", "/api/v1/datasets", "/api/v1/me"):
            assert http.get(path, headers=a.headers).status_code == 200, path
        assert fell_back == []
        assert http.put("/api/v1/me", headers=a.headers).status_code == 405
        assert fell_back == ["PUT /api/v1/me"]
    finally:
        index.fallback = fallback
