"""Browser security headers on every response the hub sends, the serving front's included.

Every response: ``X-Content-Type-Options: nosniff`` (a JSON body or an uploaded file is never run
as a script or page), ``X-Frame-Options: DENY`` and ``Referrer-Policy: same-origin``. HTML pages:
a Content Security Policy that runs only the hub's own script files (the web UI has no inline
script or style) and that no other site may frame; every other response: ``default-src 'none'``.

A page that needs more says so on its request: ``csp_nonce(request)`` gives a nonce for its own
inline script, ``use_policy(request, ...)`` another policy (the Swagger page: its bundle is served
by the hub from the installed ``swagger_ui_bundle`` package, its one inline script has a nonce).

>>> policy({}).split("; ")[1]
"script-src 'self'"
>>> "'nonce-abc'" in policy({"state": {"csp_nonce": "abc"}})
True
"""

from __future__ import annotations

import secrets
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The two <style> elements the pinned plotly.js (plotly 7.1.0) adds as it loads: its global sheet,
# created empty and filled through the CSSOM, and MapLibre's (map traces). Allowed by their hashes
# only; a new plotly whose styles differ shows up as a console error in the browser tests.
PLOTLY_STYLES = ("'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=' "  # "" (the empty sheet)
                 "'sha256-ji27qzEtxXZW+7dun6UwjHXJ18e6WAin1VvNtkzIE/o='")  # .maplibregl-map{...}
PAGE_POLICY = ("default-src 'self'; script-src 'self'{nonce}; "
               f"style-src 'self' {PLOTLY_STYLES}; img-src 'self' data: blob:; "
               "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
               "frame-ancestors 'none'")
OTHER_POLICY = b"default-src 'none'; frame-ancestors 'none'"
DOCS_POLICY = ("default-src 'self'; script-src 'self'{nonce}; "
               "style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
ALWAYS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
          (b"referrer-policy", b"same-origin")]
CSP = b"content-security-policy"


def csp_nonce(request: Request) -> str:
    """This response's nonce for an inline ``<script nonce="...">`` (made on first use)."""
    state = request.scope.setdefault("state", {})
    if "csp_nonce" not in state:
        state["csp_nonce"] = secrets.token_urlsafe(18)
    return str(state["csp_nonce"])


def use_policy(request: Request, template: str) -> None:
    """Send this policy with the page instead of ``PAGE_POLICY`` (``{nonce}`` is filled in)."""
    request.scope.setdefault("state", {})["csp_policy"] = template


def policy(scope: Scope) -> str:
    state: dict[str, Any] = scope.get("state") or {}
    nonce = state.get("csp_nonce")
    template = state.get("csp_policy") or PAGE_POLICY
    return str(template).format(nonce=f" 'nonce-{nonce}'" if nonce else "")


class SecurityHeaders:
    """ASGI middleware, outside every other layer: adds the headers as each response starts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                html = has_csp = False
                for k, v in headers:
                    if k == b"content-type":
                        html = v.startswith(b"text/html")
                    elif k == CSP:
                        has_csp = True
                headers.extend(ALWAYS)
                if not has_csp:
                    headers.append((CSP, policy(scope).encode() if html else OTHER_POLICY))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
