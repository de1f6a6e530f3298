"""The SDK raises the family the hub's answer names, and reads a status with the API's own table."""

from __future__ import annotations

import httpx
import pytest

from consortium import errors
from consortium.api.status import STATUS, status_of
from consortium.sdk.client import _error


def _answer(status: int, body: object | None = None, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers) if body is not None else \
        httpx.Response(status, text="<html>bad gateway</html>", headers=headers)


def test_families_know_no_http_status() -> None:
    """HTTP lives in the API's table only; every family has an entry (or a base that has one)."""
    for cls in errors.FAMILIES.values():
        assert "status" not in vars(cls), cls
        err = cls("x", retry_after=1) if cls is errors.QuotaExceeded else cls("x")
        assert status_of(err) == STATUS[next(c for c in cls.__mro__ if c in STATUS)]


@pytest.mark.parametrize("code", sorted(errors.FAMILIES))
def test_every_code_comes_back_as_its_family(code: str) -> None:
    cls = errors.FAMILIES[code]
    details = {"retry_after": 7} if cls is errors.QuotaExceeded else None
    status = next(STATUS[c] for c in cls.__mro__ if c in STATUS)
    err = _error(_answer(status, {"error": {"code": code, "message": "m", "hint": "h", "details": details}}))
    assert type(err) is cls and err.code == code and err.message == "m" and err.hint == "h"
    if cls is errors.QuotaExceeded:
        assert err.retry_after == 7  # type: ignore[attr-defined]


def test_a_stage_code_keeps_its_code_under_the_status_family() -> None:
    err = _error(_answer(409, {"error": {"code": "cancelled", "message": "training was cancelled"}}))
    assert isinstance(err, errors.Conflict) and err.code == "cancelled"
    assert err.http_status == 409  # type: ignore[attr-defined]


def test_bodies_without_a_code_are_read_from_the_status() -> None:
    oip = _error(_answer(400, {"error": "input 'x' has shape [3], the model takes [4]"}))
    assert type(oip) is errors.BadRequest and "shape" in oip.message
    assert type(_error(_answer(404, {"error": "unknown model"}))) is errors.NotFound
    proxy = _error(_answer(503))
    assert type(proxy) is errors.Unavailable and proxy.message.startswith("HTTP 503")
    limited = _error(_answer(429, **{"retry-after": "12"}))
    assert isinstance(limited, errors.QuotaExceeded) and limited.retry_after == 12
    assert type(_error(_answer(418))) is errors.ConsortiumError
