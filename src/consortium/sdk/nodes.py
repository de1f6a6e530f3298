"""SDK group ``client.nodes``: federation nodes, per-job approvals and dataset privacy budgets.

>>> c.nodes.register("site-1", approve="manual", datasets=[{"name": "bc", "rows": 190}])  # doctest: +SKIP
>>> c.nodes.approve("site-1", "job_3f9a1c2b7d4e5f60")                                     # doctest: +SKIP
>>> c.nodes.set_budget("st-marys-hospital/breast-cancer", epsilon=8.0)                   # doctest: +SKIP
{'epsilon': 8.0, 'delta': 1e-05, 'spent': 0.0, 'reserved': 0.0, 'remaining': 8.0, 'ledger': []}
"""

from __future__ import annotations

import builtins
from typing import Any

from consortium.sdk.resources import API, Group


class Nodes(Group):
    def register(self, name: str, *, approve: str = "auto", datasets: list[dict[str, Any]] | None = None,
                 agent: dict[str, Any] | None = None) -> dict[str, Any]:
        """Register (or re-register) a node of your organization; needs an admin token.

        >>> c.nodes.register("site-1", approve="manual")["name"]        # doctest: +SKIP
        'site-1'
        """
        return self._post("/nodes", {"name": name, "approve": approve,
                                     "datasets": datasets or [], "agent": agent or {}})

    def list(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Your organization's nodes: ``[{"id", "name", "approve", "online", "last_seen", "pending"}]``.

        >>> [(n["name"], n["online"]) for n in c.nodes.list()]           # doctest: +SKIP
        """
        return self._list("/nodes", limit=limit)

    def get(self, node: str) -> dict[str, Any]:
        """One node of your organization by name, with its advertised datasets.

        >>> c.nodes.get("site-1")["datasets"]                           # doctest: +SKIP
        """
        return self._get(f"/nodes/{node}")

    def heartbeat(self, node: str, datasets: builtins.list[dict[str, Any]] | None = None,
                  deleted: builtins.list[dict[str, str]] | None = None) -> dict[str, Any]:
        """Report that the node is alive (and, optionally, its current datasets and the withdrawn
        copies it deleted: ``{"withdrawal", "dataset"}``). Returns the node, with the jobs waiting
        for its approval (``pending``) and the withdrawn copies to delete (``withdrawn``).

        >>> c.nodes.heartbeat("site-1")["pending"]                      # doctest: +SKIP
        """
        return self._post(f"/nodes/{node}/heartbeat", {"datasets": datasets, "deleted": deleted or []})

    def approve(self, node: str, job_id: str) -> dict[str, Any]:
        """Let federated job ``job_id`` use your organization's data.

        >>> c.nodes.approve("site-1", "job_1a2b")["job_id"]            # doctest: +SKIP
        'job_1a2b'
        """
        return self._post(f"/nodes/{node}/approve/{job_id}")

    def reject(self, node: str, job_id: str) -> dict[str, Any]:
        """Refuse federated job ``job_id`` the use of your organization's data.

        >>> c.nodes.reject("site-1", "job_1a2b")                        # doctest: +SKIP
        """
        return self._post(f"/nodes/{node}/reject/{job_id}")

    def budget(self, dataset: str) -> dict[str, Any]:
        """A dataset's privacy budget, spent and remaining epsilon (``dataset``: org/name).

        >>> c.nodes.budget("st-marys/bc")["remaining_epsilon"]           # doctest: +SKIP
        7.5
        """
        return self._get(f"/datasets/{dataset}/privacy-budget")

    def set_budget(self, dataset: str, epsilon: float, delta: float = 1e-5) -> dict[str, Any]:
        """Set the most epsilon federated DP jobs may spend on your dataset (owner admins).

        >>> c.nodes.set_budget("st-marys/bc", epsilon=10.0)             # doctest: +SKIP
        """
        return self.c.request("PUT", f"{API}/datasets/{dataset}/privacy-budget",
                              json={"epsilon": epsilon, "delta": delta})
