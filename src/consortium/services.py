"""The services one hub process holds: its core (``consortium.hub.Hub``: settings, database, keys,
sealed blobs, audit) and what is built from the stages on it. Built once by the entry point.

Nothing here is created at import time; ``Services.start`` (``Hub.start``) opens the core from
``Settings`` and ``__post_init__`` wires the stages' parts into typed fields. This module sits
above the stages: it imports them to wire them, and no stage imports it (a stage takes a ``Hub``
or the piece it needs, passed in).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from consortium.governance.grants import ResourceTypes
from consortium.hub import Hub
from consortium.jobs.submit import SubmitCheck, checks_for

if TYPE_CHECKING:
    from consortium.monitoring.prometheus import HubMetrics
    from consortium.monitoring.recorder import Monitor
    from consortium.serving.hub.runtime import ServingRuntime
    from consortium.serving.service import BatchingConfig


@dataclass
class Services(Hub):
    submit_checks: tuple[SubmitCheck, ...] = field(init=False)  # what every job submission must pass, in order
    resource_types: ResourceTypes = field(init=False)  # what grants can name: datasets, deployments
    metrics: HubMetrics = field(init=False, repr=False)  # this process's Prometheus registry
    monitor: Monitor = field(init=False, repr=False)  # sampling and the prediction log; running_monitor starts it
    serving: ServingRuntime = field(init=False, repr=False)  # the prediction path; see serving_runtime

    def __post_init__(self) -> None:
        from consortium.data.resources import DATASET
        from consortium.monitoring.prometheus import HubMetrics
        from consortium.serving.hub.deployments import DEPLOYMENT

        self.submit_checks = checks_for(self.settings.max_model_params, self.settings.executor)
        self.resource_types = ResourceTypes((DATASET, DEPLOYMENT))
        self.metrics = HubMetrics(self)
        self.monitor = self.new_monitor()
        self.serving = self.serving_runtime()

    def new_monitor(self) -> Monitor:
        """A monitor as the settings say (``CONSORTIUM_MONITORING``), not started, writing with this
        hub's keys, counting in its metrics and running its retraining checks."""
        from consortium.monitoring.recorder import Monitor

        return Monitor(self, metrics=self.metrics, checks=self.submit_checks,
                       enabled=self.settings.monitoring == "on")

    def running_monitor(self) -> Monitor:
        """The hub's monitor (``monitor``), started on first use; one the app closed at shutdown is
        replaced by a fresh one (the same services may serve another app, e.g. in tests)."""
        if self.monitor.closed:
            self.monitor = self.new_monitor()
        if not self.monitor.running:
            self.monitor.start()
        return self.monitor

    def close_monitor(self) -> None:
        """Write what the monitor still holds and stop its thread (the app's shutdown)."""
        if self.monitor.running:
            self.monitor.close()

    def serving_runtime(self, batching: BatchingConfig | None = None) -> ServingRuntime:
        """A serving runtime on this hub's database, model blobs, audit chain and monitor, batching as
        the settings say unless ``batching`` is given. ``serving`` is the hub's; nothing in it runs
        before the first prediction, and the app's shutdown stops it (``ServingRuntime.aclose``)."""
        from consortium.registry.models import onnx_by_id
        from consortium.serving.hub.runtime import ServingRuntime
        from consortium.serving.service import BatchingConfig

        cfg = self.settings
        if batching is None:
            batching = BatchingConfig(enabled=cfg.batching == "on", max_batch_size=cfg.batch_max_size,
                                      max_wait_ms=cfg.batch_max_wait_ms)
        load_model = functools.partial(onnx_by_id, self.session_factory, self.blobs)
        return ServingRuntime(self.session_factory, load_model, audit=self.audit_in,
                              monitor=lambda: self.monitor if self.monitor.running else None, batching=batching)
