"""Shared schema base: strict input models (unknown fields refused) and output models; typed
integers for every number a caller sends that reaches the database.

A column holds 64 bits (``BigInteger``: audit positions) or, on PostgreSQL, 32 (``Integer``:
version numbers, job event ids). A larger number in a query is an ``OverflowError`` or a
``DataError`` deep in the driver, so every integer path, query and body field is bounded here by
the width of the column it meets: FastAPI checks it (a 422 naming the field) and the OpenAPI
shows the bound. Use them as ``Annotated[NonNegInt64, Query(description=...)]`` (or ``Path()``,
``Header()``), or as a body field's type.

>>> from pydantic import TypeAdapter
>>> TypeAdapter(NonNegInt64).validate_python(INT64_MAX) == INT64_MAX
True
>>> TypeAdapter(VersionRef).validate_python("latest"), TypeAdapter(VersionRef).validate_python("3")
('latest', '3')
>>> try:
...     TypeAdapter(VersionRef).validate_python(str(INT32_MAX + 1))
... except ValueError as e:
...     print(e.errors()[0]["msg"])
Value error, version numbers go up to 2147483647
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge, Le, MaxLen
from pydantic import AfterValidator, BaseModel, ConfigDict

from consortium.store.db import INT32_MAX, INT64_MAX

NonNegInt64 = Annotated[int, Ge(0), Le(INT64_MAX)]
"""0 .. 2^63-1: audit positions (``since_seq``), seeds, and numbers kept in JSON (limits, thresholds)."""

PosInt64 = Annotated[int, Ge(1), Le(INT64_MAX)]
"""As ``NonNegInt64``, from 1: quotas, counts, partition numbers."""

NonNegInt32 = Annotated[int, Ge(0), Le(INT32_MAX)]
"""0 .. 2^31-1: numbers compared with ``Integer`` columns: job event ids (``after``), version numbers."""


def _version_ref(ref: str) -> str:
    if ref.isdigit() and not ref.isascii():
        raise ValueError("write version numbers with the digits 0-9")
    if ref.isdigit() and int(ref) > INT32_MAX:
        raise ValueError(f"version numbers go up to {INT32_MAX}")
    return ref


VersionRef = Annotated[str, MaxLen(64), AfterValidator(_version_ref)]
"""A version as a caller names it in a path or body: a number (at most ``INT32_MAX``), an alias
name or ``latest``; the services turn the digits into an int."""


class In(BaseModel):
    """Base of request bodies: unknown fields are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)
