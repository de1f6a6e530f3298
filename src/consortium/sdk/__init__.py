"""Python SDK. ``consortium.Client`` is the entry point; stage modules register their groups here."""

from consortium.sdk import jobs  # noqa: E402,F401  (registers client.jobs)
from consortium.sdk import projects  # noqa: E402,F401  (registers client.projects)
from consortium.sdk import models  # noqa: E402,F401  (registers client.models, client.deployments)
from consortium.sdk import datasets  # noqa: E402,F401  (registers client.datasets)
from consortium.sdk import nodes  # noqa: E402,F401  (registers client.nodes)
from consortium.sdk import monitoring  # noqa: E402,F401  (registers client.monitoring)
