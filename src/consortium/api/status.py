"""The one table from the project's error families to HTTP status (``consortium.errors`` defines
the families and their stable codes; only the API layer knows HTTP).

A family's status is its own entry or that of the nearest family it derives from, so a stage's
own error class (``TrainingCancelled(Conflict)``) answers as its family does. The SDK reads the
same table backwards for an answer whose body names no code (a proxy's 502, a bare 404).

>>> from consortium.errors import NotFound, UnsupportedFormat
>>> status_of(NotFound("no such dataset")), status_of(UnsupportedFormat("a PNG image"))
(404, 415)
>>> family_of(429).__name__, family_of(418).__name__
('QuotaExceeded', 'ConsortiumError')
"""

from __future__ import annotations

from consortium.errors import (
    BadRequest,
    Conflict,
    ConsortiumError,
    IntegrityError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    QuotaExceeded,
    Unauthenticated,
    Unavailable,
    UnsupportedFormat,
    Withdrawn,
)

STATUS: dict[type[ConsortiumError], int] = {
    ConsortiumError: 500,
    BadRequest: 400,
    Unauthenticated: 401,
    PermissionDenied: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    UnsupportedFormat: 415,
    InvalidInput: 422,
    QuotaExceeded: 429,
    Withdrawn: 451,  # Unavailable For Legal Reasons (RFC 7725)
    IntegrityError: 500,
    Unavailable: 503,
}

_BY_STATUS: dict[int, type[ConsortiumError]] = {}
for _family, _status in STATUS.items():
    _BY_STATUS.setdefault(_status, _family)  # 500: the base, not IntegrityError


def status_of(exc: ConsortiumError) -> int:
    """The HTTP status of an error: its family's entry, or the nearest base family's."""
    for cls in type(exc).__mro__:
        status = STATUS.get(cls)
        if status is not None:
            return status
    return 500


def family_of(status: int) -> type[ConsortiumError]:
    """The family an HTTP status stands for (``ConsortiumError`` for one the hub does not use)."""
    return _BY_STATUS.get(status, ConsortiumError)
