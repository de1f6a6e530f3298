"""Unknown query parameters are refused (422 naming them and the accepted ones), not ignored.

A misspelt filter (``?stat=failed``) or a parameter of another route would otherwise be dropped
without a word, and the caller would read an unfiltered answer as a filtered one. ``known_query``
is one dependency, put on every API router when the app is built (``consortium.api.app``), that
compares the request's query with the parameters the matched route declares (its own and its
dependencies', e.g. ``limit`` and ``cursor`` of ``consortium.api.pagination``). The serving
front's prediction paths take no query parameter and call ``refuse`` themselves (as the routes
behind them do, through the dependency). The web UI's
pages are not API routes and keep tolerating extra parameters (links carry tracking tags, old
bookmarks carry old filters): a page is read by a person, who sees what it shows.

>>> refuse(["limit", "colour"], frozenset({"limit", "cursor"}))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
consortium.errors.InvalidInput: unknown query parameter colour; this route accepts cursor, limit (...)
>>> refuse(["limit"], frozenset({"limit"})) is None
True
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request

from consortium.errors import InvalidInput

_ACCEPTED: dict[int, frozenset[str]] = {}


def accepted(route: Any) -> frozenset[str]:
    """The query parameter names ``route`` declares (by alias), its dependencies' included."""
    found = _ACCEPTED.get(id(route))
    if found is None:
        from fastapi.dependencies.utils import get_flat_dependant

        dependant = getattr(route, "dependant", None)
        found = frozenset(p.alias for p in get_flat_dependant(dependant).query_params) if dependant else frozenset()
        _ACCEPTED[id(route)] = found
    return found


def refuse(given: Iterable[str], allowed: frozenset[str]) -> None:
    """Raise ``InvalidInput`` (422) naming the parameters in ``given`` that ``allowed`` lacks."""
    unknown = sorted(set(given) - allowed)
    if unknown:
        takes = ", ".join(sorted(allowed)) if allowed else "no query parameters"
        raise InvalidInput(f"unknown query parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                           f"this route accepts {takes}",
                           hint="remove or correct them; each route's parameters are in the API schema at /docs",
                           details={"unknown": unknown, "accepted": sorted(allowed)})


def names(query_string: bytes) -> list[str]:
    """The parameter names of a raw query string.

    >>> names(b"a=1&b&a=2")
    ['a', 'b', 'a']
    """
    return [k for k, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)]


async def known_query(request: Request) -> None:
    """The dependency: 422 when the query names a parameter the matched route does not take."""
    if request.scope.get("query_string"):
        refuse(request.query_params.keys(), accepted(request.scope.get("route")))
