"""Consortium: an open, self-hostable platform for cross-organization AI collaboration."""

from __future__ import annotations

from typing import TYPE_CHECKING

from consortium.version import __version__

if TYPE_CHECKING:
    from consortium.sdk.client import Client

__all__ = ["Client", "__version__"]


def __getattr__(name: str) -> type[Client]:
    # lazy: importing the package must stay cheap (the SDK pulls in httpx only)
    if name == "Client":
        from consortium.sdk.client import Client

        return Client
    raise AttributeError(name)
