"""SDK groups ``client.policies`` (a dataset's rules, set by its owner) and ``client.consents``
(consent requests for models trained on other organizations' data).

>>> import consortium
>>> c = consortium.Client("http://127.0.0.1:8000", token="csm_tok_...")               # doctest: +SKIP
>>> c.policies.set("bc", {"max_epochs": 5, "dp_max_epsilon": 2.0})["set"]              # doctest: +SKIP
['dp_max_epsilon', 'max_epochs']
>>> [r["contributor"] for r in c.consents.ask("bc-federated", "northgate-lab")]       # doctest: +SKIP
['riverside-clinic']
"""

from __future__ import annotations

from typing import Any

from consortium.sdk.resources import API, Group


class Policies(Group):
    def _ref(self, dataset: str) -> str:
        return dataset.strip("/") if "/" in dataset else f"{self.c.me()['org']}/{dataset}"

    def get(self, dataset: str) -> dict[str, Any]:
        """The dataset's rules: ``{"dataset", "rules": {...}, "set": [names], "set_by", "updated_at"}``.

        >>> c.policies.get("st-marys-hospital/breast-cancer")["rules"]  # doctest: +SKIP
        {'max_epochs': 5}
        """
        return self._get(f"/datasets/{self._ref(dataset)}/policy")

    def set(self, dataset: str, rules: dict[str, Any]) -> dict[str, Any]:
        """Replace the rules of one of your datasets (admins); a rule left out does not restrict.

        >>> c.policies.set("breast-cancer", {"max_epochs": 5, "dp_max_epsilon": 2.0})["set"]  # doctest: +SKIP
        ['dp_max_epsilon', 'max_epochs']
        """
        return self.c.request("PUT", f"{API}/datasets/{self._ref(dataset)}/policy", json=rules)

    def clear(self, dataset: str) -> dict[str, Any]:
        """Remove every rule of the dataset.

        >>> c.policies.clear("breast-cancer")["set"]  # doctest: +SKIP
        []
        """
        return self._delete(f"/datasets/{self._ref(dataset)}/policy")

    def report_refusal(self, dataset: str, job_id: str, rules: list[str], message: str = "") -> dict[str, Any]:
        """A node tells the hub it refused ``job_id`` against the dataset's policy (audited).

        >>> c.policies.report_refusal("breast-cancer", "job_1", ["max_epochs"], "asked 50 epochs")  # doctest: +SKIP
        """
        return self._post(f"/datasets/{self._ref(dataset)}/policy/refusals",
                          {"job_id": job_id, "rules": rules, "message": message})


class Consents(Group):
    def ask(self, model: str, organization: str, action: str = "deploy", note: str = "") -> list[dict[str, Any]]:
        """Ask each contributor of your model (``name`` or ``org/name``) to let it go to ``organization``
        (``share``, ``deploy``; ``download``: your own organization downloads its ONNX file).

        >>> c.consents.ask("bc-federated", "northwind-bank")[0]["state"]  # doctest: +SKIP
        'pending'
        """
        ref = model.strip("/") if "/" in model else f"{self.c.me()['org']}/{model}"
        return self._post(f"/models/{ref}/consents",
                          {"organization": organization, "action": action, "note": note})

    def list(self, direction: str = "all", limit: int | None = None) -> list[dict[str, Any]]:
        """Requests your organization received as a contributor or sent (``all``, ``received``, ``sent``).

        >>> [r["state"] for r in c.consents.list("received")]  # doctest: +SKIP
        ['pending']
        """
        return self._list("/consents", limit=limit, direction=direction)

    def get(self, consent_id: str) -> dict[str, Any]:
        """One request your organization made or was asked.

        >>> c.consents.get("cns_1")["action"]  # doctest: +SKIP
        'deploy'
        """
        return self._get(f"/consents/{consent_id}")

    def approve(self, consent_id: str) -> dict[str, Any]:
        """Agree, as the contributing organization (admins).

        >>> c.consents.approve("cns_1")["state"]  # doctest: +SKIP
        'approved'
        """
        return self._post(f"/consents/{consent_id}/approve")

    def refuse(self, consent_id: str) -> dict[str, Any]:
        """Refuse, as the contributing organization (admins).

        >>> c.consents.refuse("cns_1")["state"]  # doctest: +SKIP
        'refused'
        """
        return self._post(f"/consents/{consent_id}/refuse")
