"""Per-request context (request id, principal, audit details) and the body-size limit, as pure ASGI middleware."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consortium.api.query_credentials import credential_parameter, send_refusal
from consortium.governance.audit import EventDraft
from consortium.governance.principal import Principal


@dataclass
class RequestContext:
    request_id: str
    principal: Principal | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    resource_org_id: str | None = None
    project_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    extra: list[EventDraft] = field(default_factory=list)
    audit: bool = True

    def resource(self, rtype: str, rid: str, owner_org_id: str | None, project_id: str | None = None) -> None:
        self.resource_type, self.resource_id, self.resource_org_id = rtype, rid, owner_org_id
        if project_id:
            self.project_id = project_id

    def draft(self, outcome: str) -> EventDraft:
        p = self.principal
        return EventDraft(action=self.action or "request", outcome=outcome, request_id=self.request_id,
                          actor_user_id=p.user_id if p else None, actor_org_id=p.org_id if p else None,
                          resource_type=self.resource_type, resource_id=self.resource_id,
                          resource_org_id=self.resource_org_id, project_id=self.project_id,
                          details=self.details)


# its own generator: training in this process seeds the global one
_ids = random.Random()  # noqa: S311 - request ids need uniqueness for log lookup, not secrecy
os.register_at_fork(after_in_child=_ids.seed)  # forked processes must not repeat each other's ids


def request_id() -> str:
    """A new request id: 16 hex digits, unique enough to find a request in logs and audit (not a
    secret, so not from the system's CSPRNG: that is a system call per request)."""
    return f"{_ids.getrandbits(64):016x}"


class ContextMiddleware:
    """Gives each request a ``RequestContext``, refuses bodies over the route's size limit with 413
    and credentials in the query string with 400 (``consortium.api.query_credentials``)."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        rid = headers.get(b"x-request-id", b"").decode()[:64] or request_id()
        scope.setdefault("state", {})["ctx"] = RequestContext(request_id=rid)
        param = credential_parameter(scope.get("query_string", b""))
        if param is not None:  # no password, token or session in a URL, on any route
            await send_refusal(send, scope["path"], param, rid)
            return
        limit = self.limit_for(scope["path"])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await too_large(send, limit, rid)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return msg

        async def send_with_id(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                msg.setdefault("headers", [])
                msg["headers"] = list(msg["headers"]) + [(b"x-request-id", rid.encode())]
            await send(msg)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except BodyTooLarge:
            await too_large(send, limit, rid)


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body exceeds {limit} bytes")
        self.limit = limit


async def too_large(send: Send, limit: int, rid: str) -> None:
    body = json.dumps({"error": {"code": "payload_too_large",
                                 "message": f"request body exceeds the limit of {limit} bytes",
                                 "hint": "send a smaller body, or raise CONSORTIUM_MAX_UPLOAD_BYTES / "
                                         "CONSORTIUM_MAX_BODY_BYTES on the hub"}}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"x-request-id", rid.encode()),
                            (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
