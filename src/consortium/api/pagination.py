"""Every list of the API pages the same way: ``limit`` and ``cursor`` in, ``{"items": [...],
"next_cursor": "..." | null}`` out (``Paged[T]``, documented as such in the OpenAPI).

``limit`` is the page size: 100 by default, at most ``LIMIT_MAX`` (1000; above it, 422 naming the
maximum). ``next_cursor`` is null on the last page; pass it back unchanged, with the same other
query parameters, for the next one. The store pages by key (``consortium.store.paging``), so
pages concatenate to the whole list with no gap and no repeat even while rows are added.

A cursor is opaque: the key of the last item, the list it belongs to (the route's path template)
and a digest of the request's other parameters (path and query), signed with an HMAC under
``settings.secret_key`` so that it cannot be forged or altered. A malformed or altered cursor, one
from another list or one for other filters gets 400 saying so (drop ``cursor`` to start over).
Even a forged key would reach nothing more: the key is only a position, and each list's query
keeps its authorization filter.

>>> c = encode("k" * 32, "/api/v1/grants", "f", ("2026-12-02T10:00:00+00:00", "gr_1"))
>>> decode("k" * 32, c, "/api/v1/grants", "f")
('2026-12-02T10:00:00+00:00', 'gr_1')
>>> decode("k" * 32, c, "/api/v1/audit", "f")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
consortium.errors.BadRequest: the cursor belongs to the list GET /api/v1/grants, not GET /api/v1/audit (...)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel, Field

from consortium.api.deps import services
from consortium.errors import BadRequest
from consortium.store.paging import Key, Page

T = TypeVar("T")
LIMIT_DEFAULT = 100
LIMIT_MAX = 1000
CURSOR_MAX = 2048
PAGE_PARAMS = frozenset({"limit", "cursor"})
HINT = "drop `cursor` to start the list over, or pass the previous page's next_cursor unchanged"


class Paged(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    next_cursor: str | None = Field(description="pass as `cursor` (with the same other parameters) "
                                                 "for the next page; null on the last page")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode(), b"consortium-cursor:" + payload, hashlib.sha256).digest()[:16]


def _value(v: Any) -> Any:
    return {"t": v.isoformat()} if isinstance(v, datetime) else v


def _unvalue(v: Any) -> Any:
    if isinstance(v, dict) and set(v) == {"t"} and isinstance(v["t"], str):
        return datetime.fromisoformat(v["t"])
    if isinstance(v, (str, int)) and not isinstance(v, bool):
        return v
    raise ValueError(f"a cursor key holds {type(v).__name__}")


def encode(secret: str, listing: str, filters: str, key: Key) -> str:
    payload = json.dumps({"v": 1, "l": listing, "f": filters, "k": [_value(v) for v in key]},
                         separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_mac(secret, payload))}"


def decode(secret: str, cursor: str, listing: str, filters: str) -> Key:
    """The key a cursor holds, if this hub issued it for this list and these filters; else 400."""
    try:
        body, mac = cursor.split(".")
        payload = _unb64(body)
        good = hmac.compare_digest(_unb64(mac), _mac(secret, payload))
    except ValueError:  # no '.', not base64 (binascii.Error is a ValueError)
        good = False
    if not good:
        raise BadRequest("the cursor is malformed or was altered: it is not one this hub issued", hint=HINT)
    try:
        data = json.loads(payload)
        key = tuple(_unvalue(v) for v in data["k"])
        issued_for, issued_filters = str(data["l"]), str(data["f"])
    except (ValueError, KeyError, TypeError):
        raise BadRequest("the cursor is malformed", hint=HINT) from None
    if issued_for != listing:
        raise BadRequest(f"the cursor belongs to the list GET {issued_for}, not GET {listing}", hint=HINT)
    if issued_filters != filters:
        raise BadRequest("the cursor was issued for other parameters of this list (filters or path)",
                         hint="repeat the first page's parameters with the cursor, or drop `cursor` "
                              "to start the list over")
    return key


@dataclass(frozen=True)
class PageIn:
    """A list request's page: its size, the key to continue after (None: from the start), and
    what a next cursor must name."""

    limit: int
    after: Key | None
    listing: str
    filters: str
    secret: str

    def out(self, page: Page[Any], items: Iterable[Any] | None = None) -> dict[str, Any]:
        """The response body: ``items`` (default: the page's own, as they are) and the next cursor."""
        return {"items": list(page.items if items is None else items),
                "next_cursor": None if page.after is None else encode(self.secret, self.listing,
                                                                      self.filters, page.after)}

    def map(self, page: Page[T], view: Callable[[T], Any]) -> dict[str, Any]:
        return self.out(page, [view(x) for x in page.items])


def _filters(request: Request) -> str:
    params: Sequence[tuple[str, str]] = sorted((k, v) for k, v in request.query_params.multi_items()
                                               if k not in PAGE_PARAMS)
    raw = json.dumps([sorted(request.path_params.items()), params], separators=(",", ":"))
    return _b64(hashlib.sha256(raw.encode()).digest()[:12])


async def page_in(request: Request,
            limit: Annotated[int, Query(ge=1, le=LIMIT_MAX, description=f"page size (at most {LIMIT_MAX})")]
            = LIMIT_DEFAULT,
            cursor: Annotated[str | None, Query(max_length=CURSOR_MAX,
                                                description="the previous page's next_cursor")] = None) -> PageIn:
    route = request.scope.get("route")
    listing = str(getattr(route, "path", request.url.path))
    secret = services(request).settings.secret_key
    filters = _filters(request)
    after = decode(secret, cursor, listing, filters) if cursor else None
    return PageIn(limit, after, listing, filters, secret)


PageDep = Annotated[PageIn, Depends(page_in)]
