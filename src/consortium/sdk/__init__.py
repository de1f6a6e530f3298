"""Python SDK. ``consortium.Client`` is the entry point; stage modules register their groups here."""

from consortium.sdk import datasets  # noqa: E402,F401  (registers client.datasets)
