"""SDK group for monitoring: ``client.monitoring``.

>>> import consortium
>>> c = consortium.Client("http://127.0.0.1:8000", token="csm_tok_...")              # doctest: +SKIP
>>> c.monitoring.configure("bc-risk", sample_rate=0.05,
...                         retrain={"enabled": True, "min_accuracy": 0.85})            # doctest: +SKIP
>>> out = c.deployments.predict("bc-risk", [[...]])                                    # doctest: +SKIP
>>> c.monitoring.feedback("bc-risk", out["prediction_id"], label="malignant")         # doctest: +SKIP
{'prediction_id': 'prd_...', 'rows': 1, 'replaced': False, 'correct': 1}
>>> c.monitoring.drift("bc-risk")["status"]                                            # doctest: +SKIP
'ok'
"""

from __future__ import annotations

from typing import Any

from consortium.sdk.resources import Group, segment


class Monitoring(Group):
    def settings(self, deployment: str) -> dict[str, Any]:
        """Sample rate, retention, drift thresholds, retraining trigger and its recent runs (owner).

        >>> c.monitoring.settings("digits")["sample_rate"]             # doctest: +SKIP
        0.1
        """
        return self._get(f"/deployments/{segment(deployment)}/monitoring")

    def configure(self, deployment: str, *, sample_rate: float | None = None, retention_days: int | None = None,
                  drift: dict[str, Any] | None = None, retrain: dict[str, Any] | None = None) -> dict[str, Any]:
        """Change settings; only the fields given change (nested sections merge).

        >>> c.monitoring.configure("digits", sample_rate=1.0, retrain={"min_accuracy": 0.9})  # doctest: +SKIP
        """
        body = {k: v for k, v in {"sample_rate": sample_rate, "retention_days": retention_days, "drift": drift,
                                  "retrain": retrain}.items() if v is not None}
        return self._patch(f"/deployments/{segment(deployment)}/monitoring", body)

    def metrics(self, deployment: str, minutes: int = 60) -> dict[str, Any]:
        """Requests, errors, p50/p95/p99 latency and calls per organization.

        >>> m = c.monitoring.metrics("digits", minutes=15)             # doctest: +SKIP
        >>> m["requests"], m["p95_ms"]                                   # doctest: +SKIP
        (120, 4.2)
        """
        return self._get(f"/deployments/{segment(deployment)}/metrics", minutes=minutes)

    def drift(self, deployment: str) -> dict[str, Any]:
        """PSI and KS per feature of recent logged inputs against the training reference (owner).

        >>> c.monitoring.drift("digits")["status"]                     # doctest: +SKIP
        'ok'
        """
        return self._get(f"/deployments/{segment(deployment)}/drift")

    def feedback(self, deployment: str, prediction_id: str, label: Any = None,
                 labels: list[Any] | None = None) -> dict[str, Any]:
        """Report the true ``label`` of a one-row prediction (or ``labels``, one per row). Any
        ``prediction_id`` the deployment returned works, logged or not; reporting again replaces.

        >>> out = c.deployments.predict("bc-risk", rows)               # doctest: +SKIP
        >>> c.monitoring.feedback("bc-risk", out["prediction_id"], label="benign")  # doctest: +SKIP
        """
        body: dict[str, Any] = {"prediction_id": prediction_id}
        if labels is not None:
            body["labels"] = labels
        else:
            body["label"] = label
        return self._post(f"/deployments/{segment(deployment)}/feedback", body)

    def quality(self, deployment: str, minutes: int | None = None) -> dict[str, Any]:
        """Live accuracy (or MSE) from feedback, against the test-set figure.

        >>> q = c.monitoring.quality("bc-risk")                         # doctest: +SKIP
        >>> q["live"], q["test"]                                         # doctest: +SKIP
        (0.94, 0.96)
        """
        params = {"minutes": minutes} if minutes else {}
        return self._get(f"/deployments/{segment(deployment)}/feedback", **params)

    def timeseries(self, deployment: str, metric: str = "latency", minutes: int = 60,
                   step: int = 5) -> dict[str, Any]:
        """Points for plots: ``latency``, ``accuracy`` or ``drift``.

        >>> c.monitoring.timeseries("digits", "latency", minutes=60)["points"][:1]  # doctest: +SKIP
        """
        return self._get(f"/deployments/{segment(deployment)}/timeseries", metric=metric,
                         minutes=minutes, step=step)

    def predictions(self, deployment: str, limit: int = 50, payload: bool = True) -> list[dict[str, Any]]:
        """The newest logged predictions, decrypted (owner).

        >>> [p["caller_org"] for p in c.monitoring.predictions("digits", limit=5)]  # doctest: +SKIP
        """
        return self._list(f"/deployments/{segment(deployment)}/predictions", limit=limit,
                          payload=str(payload).lower())

    def check(self, deployment: str) -> dict[str, Any]:
        """Evaluate the retraining trigger now.

        >>> c.monitoring.check("bc-risk")["triggered"]                 # doctest: +SKIP
        False
        """
        return self._post(f"/deployments/{segment(deployment)}/monitoring/check")
