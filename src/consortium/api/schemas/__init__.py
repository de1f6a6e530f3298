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

import types
from typing import Annotated, Any, Union, get_args, get_origin

from annotated_types import Ge, Le, MaxLen
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, field_validator

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


def _wants_number(annotation: Any) -> bool:
    """Whether a field takes an int or a float (also optional or annotated) and not a bool."""
    if get_origin(annotation) is Annotated:
        return _wants_number(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        args = get_args(annotation)
        return bool not in args and any(_wants_number(a) for a in args)
    return annotation in (int, float)


class In(BaseModel):
    """Base of request bodies: unknown fields are an error, not silently ignored, and a number
    field refuses ``true``/``false`` (pydantic would read them as 1 and 0; JSON's 5.0 stays 5)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, v: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(v, bool) and field is not None and _wants_number(field.annotation):
            raise ValueError("expected a number, not true/false")
        return v


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)
