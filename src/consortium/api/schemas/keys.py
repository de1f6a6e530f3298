"""The hub's keyring (operators): ``KeyringBase`` -> ``KeyringPublic`` (its status) /
``KeyringRotated`` (the answer to a rotation). Only key ids are shown, never a key."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from consortium.api.schemas import Out


class KeyringBase(BaseModel):
    active_master_key: str = Field(description="id of the master key that wraps the data keys")


class KeyringPublic(KeyringBase, Out):
    source: Literal["file", "env"] = Field(description="file: the hub's keyring; env: CONSORTIUM_MASTER_KEY")
    data_keys: int = Field(description="organization data keys")
    wrapped_by: dict[str, int] = Field(description="data keys per master key id")
    audit_key: str = Field(description="id of the key that keys the audit chain")


class KeyringRotated(KeyringBase, Out):
    previous_master_key: str
    rewrapped: int = Field(description="data keys re-wrapped under the new master key")
