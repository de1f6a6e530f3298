"""Python SDK. ``consortium.Client`` is the entry point; stage modules register their groups here."""
