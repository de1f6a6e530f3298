"""No credential in a URL: a query string that carries a password, token or session is refused (400).

URLs end up in browser history, proxy and server access logs and ``Referer`` headers, so a secret
sent there is as good as published. Every request is checked before routing (``ContextMiddleware``
and the serving front call ``credential_parameter``), on every route; a parameter is refused when
its name is one credentials go by, or its value is one of the hub's own secrets (``csm_tok_...``,
``csm_ses_...``, ``csm_inv_...``) whatever its name.

>>> credential_parameter(b"next=/jobs&rows=10") is None
True
>>> credential_parameter(b"email=a%40b.c&password=hunter2"), credential_parameter(b"x=csm_tok_abc")
('password', 'x')
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from starlette.types import Send

CREDENTIAL_NAMES = frozenset({
    "password", "passwd", "pwd", "passphrase", "token", "access_token", "id_token", "refresh_token",
    "api_key", "apikey", "key_secret", "secret", "client_secret", "session", "session_token",
    "sessionid", "session_id", "consortium_session", "authorization", "auth", "bearer", "credential",
    "credentials", "invitation_token",
})
SECRET_PREFIXES = ("csm_tok_", "csm_ses_", "csm_inv_", "bearer ")


def credential_parameter(query_string: bytes) -> str | None:
    """The name of the first query parameter that carries a credential, else None."""
    if not query_string:
        return None
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        normal = name.strip().lower().replace("-", "_")
        if normal in CREDENTIAL_NAMES or value.strip().lower().startswith(SECRET_PREFIXES):
            return name[:40]
    return None


def refusal(param: str) -> tuple[str, str]:
    """``(message, hint)`` for a credential found in the query string."""
    message = f"credentials must not be sent in the URL: query parameter {param!r} carries one"
    hint = ("send them in the request body (log in with POST and a JSON or form body) or in the "
            "'Authorization: Bearer <token>' header, and treat the secret as leaked: URLs are logged")
    return message, hint


async def send_refusal(send: Send, path: str, param: str, rid: str) -> None:
    """Answer 400 straight from ASGI, in the API's error shape (the protocol's on ``/v2``)."""
    message, hint = refusal(param)
    err: object = (f"{message} ({hint})" if path.startswith("/v2")
                   else {"code": "bad_request", "message": message, "hint": hint})
    body = json.dumps({"error": err}).encode()
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", b"application/json"), (b"x-request-id", rid.encode()),
                            (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})
