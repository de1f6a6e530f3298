"""The project's error families.

Services raise these; the API maps them to HTTP in one table (``consortium.api.status``, used
by ``consortium.api.errors``), and the SDK raises them back to its caller from the answer's
``code``, so a ``NotFound`` on the hub is a ``NotFound`` in the client. Each error carries a
stable ``code`` and a message that says what is wrong and how to fix it; none knows HTTP.

>>> try:
...     raise InvalidInput("column 'age' is missing", hint="add it or pick another target")
... except ConsortiumError as e:
...     print(e.code, "-", e)
invalid_input - column 'age' is missing (add it or pick another target)
"""

from __future__ import annotations

from typing import Any


class ConsortiumError(Exception):
    """Base of every error the project raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, hint: str | None = None, details: Any = None) -> None:
        self.message = message
        self.hint = hint
        self.details = details
        super().__init__(message if not hint else f"{message} ({hint})")


class InvalidInput(ConsortiumError):
    """The request is well-formed but its content is wrong (bad recipe, bad file, bad shape)."""

    code = "invalid_input"


class UnsupportedFormat(InvalidInput):
    """An upload in a format the hub does not take (e.g. a lone image as a dataset); the message
    names the formats it does take."""

    code = "unsupported_format"


class BadRequest(ConsortiumError):
    """The request itself is malformed for the protocol (e.g. wrong tensor shape for a model)."""

    code = "bad_request"


class Unauthenticated(ConsortiumError):
    """No credential, or a wrong, expired or revoked one."""

    code = "unauthenticated"


class PermissionDenied(ConsortiumError):
    """The caller is known and may see the resource, but its role is too low for the action."""

    code = "permission_denied"


class NotFound(ConsortiumError):
    """Unknown name, or a resource the caller may not know exists (never reveal which)."""

    code = "not_found"


class Conflict(ConsortiumError):
    """The change clashes with current state (duplicate name, accepted twice, ...)."""

    code = "conflict"


class PayloadTooLarge(ConsortiumError):
    code = "payload_too_large"


class QuotaExceeded(ConsortiumError):
    """Over a rate quota; ``retry_after`` is in seconds."""

    code = "quota_exceeded"

    def __init__(self, message: str, *, retry_after: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint, details={"retry_after": retry_after})
        self.retry_after = retry_after


class Unavailable(ConsortiumError):
    """A dependency (worker, node, engine) is not there right now; try again later."""

    code = "unavailable"


class Withdrawn(ConsortiumError):
    """The data behind the resource was withdrawn by its owner (e.g. a deployment of a model
    derived from a withdrawn dataset version, whose owner chose that it stop)."""

    code = "withdrawn"


class IntegrityError(ConsortiumError):
    """Stored data failed an integrity check (tampered blob, broken audit chain)."""

    code = "integrity_error"


FAMILIES: dict[str, type[ConsortiumError]] = {
    cls.code: cls
    for cls in (
        ConsortiumError, InvalidInput, UnsupportedFormat, BadRequest, Unauthenticated, PermissionDenied,
        NotFound, Conflict, PayloadTooLarge, QuotaExceeded, Unavailable, Withdrawn, IntegrityError,
    )
}


def from_code(code: str, message: str, *, details: Any = None) -> ConsortiumError:
    """Rebuild an error from its wire form (used by the SDK)."""
    cls = FAMILIES.get(code, ConsortiumError)
    if cls is QuotaExceeded:
        retry = int((details or {}).get("retry_after", 1))
        return QuotaExceeded(message, retry_after=retry)
    err = cls(message, details=details)
    return err
