"""Consortium: an open, self-hostable platform for cross-organization AI collaboration."""

from consortium.version import __version__

__all__ = ["Client", "__version__"]


def __getattr__(name: str):  # lazy: importing the package must stay cheap (the SDK pulls in httpx only)
    if name == "Client":
        from consortium.sdk.client import Client

        return Client
    raise AttributeError(name)
