"""SDK groups for data protection: ``client.records`` (the processing record, the sealed audit
export and its offline check), ``client.withdrawals`` (withdrawing a dataset version and what
follows through lineage) and ``client.retention`` (retention periods and their purges)."""

from __future__ import annotations

import base64
import builtins
import json
import os
from pathlib import Path
from typing import Any

from consortium.sdk.resources import Group, segment


class Records(Group):
    def processing_record(self, org: str | None = None, *, partners_only: bool = False,
                          format: str = "json") -> Any:
        """Your organization's record of processing (GDPR Art. 30 style): one row per job and
        dataset, and per download, naming the partner, project, purpose and privacy settings.
        ``format="csv"`` returns the CSV text.

        >>> rows = c.records.processing_record()["items"]            # doctest: +SKIP
        >>> {r["partner"] for r in rows}                              # doctest: +SKIP
        {'riverside-clinic'}
        """
        org = org or self.c.me()["org"]
        out = self.c.request("GET", f"/api/v1/orgs/{org}/processing-record",
                             params={"format": format, "partners_only": partners_only})
        return out.decode() if isinstance(out, bytes) else out

    def export_audit(self, dest: str | os.PathLike[str], format: str = "jsonl") -> Path:
        """Stream your organization's audit events (``jsonl`` or ``syslog``, RFC 5424) into ``dest``,
        sealed by the hub; check the file later with ``Records.verify_export`` (no hub needed).

        >>> c.records.export_audit("audit.jsonl")                     # doctest: +SKIP
        """
        path = Path(dest)
        part = path.with_name(path.name + ".part")
        with part.open("wb") as f:
            for chunk in self.c.stream("GET", "/api/v1/audit/export", params={"format": format}):
                f.write(chunk)
        part.replace(path)
        return path

    @staticmethod
    def verify_export(path: str | os.PathLike[str], public_key: str) -> dict[str, Any]:
        """Offline: check an export's checkpoint and seal against the hub's public key (base64, or a
        file holding it or ``consortium audit public-key --json``'s output); raises
        ``IntegrityError`` naming what was changed. Reads the file line by line.

        >>> Records.verify_export("audit.jsonl", kept_key)["events"]   # doctest: +SKIP
        """
        from consortium.governance.export_seal import verify_export

        with open(path, encoding="utf-8") as f:
            return verify_export((line.rstrip("\n") for line in f), read_public_key(public_key))


def read_public_key(value: str) -> str:
    """A base64 Ed25519 key given as itself, or a file holding it (bare, or as JSON with ``public_key``).

    >>> read_public_key("A" * 43 + "=")[:4]
    'AAAA'
    """
    text = value
    if len(value) != 44 and Path(value).is_file():
        text = Path(value).read_text().strip()
        if text.startswith("{"):
            text = str(json.loads(text).get("public_key", ""))
    try:
        if len(base64.b64decode(text, validate=True)) == 32:
            return text
    except ValueError:
        pass
    from consortium.errors import InvalidInput

    raise InvalidInput(f"{value!r} is not an Ed25519 public key (base64 of 32 bytes) nor a file holding one",
                       hint="save it with `consortium audit public-key --json > hub-key.json`")


class Withdrawals(Group):
    def withdraw(self, dataset: str, version: int, *, mode: str = "stop", reason: str = "",
                 end_grants: bool = True) -> dict[str, Any]:
        """Withdraw one version of your dataset (``org/name``): its grants end, every model version
        derived from it is marked (through lineage), deployments serving one stop (``mode="stop"``)
        or keep serving with a warning to their owner (``"warn"``), and its blob is deleted.

        >>> w = c.withdrawals.withdraw("st-marys-hospital/bc", 3, reason="Art. 17 request")  # doctest: +SKIP
        >>> [m["model"] for m in w["models"]]                         # doctest: +SKIP
        """
        org, _, name = dataset.partition("/")
        return self._post(f"/datasets/{org}/{name}/versions/{version}/withdraw",
                          {"mode": mode, "reason": reason, "end_grants": end_grants})

    def list(self) -> builtins.list[dict[str, Any]]:
        """Withdrawals your organization made, and those that marked its models.

        >>> [w["version"] for w in c.withdrawals.list()]  # doctest: +SKIP
        [1]
        """
        return self._list("/withdrawals")

    def get(self, withdrawal_id: str) -> dict[str, Any]:
        """One withdrawal: its version, time, mode, reason and what followed.

        >>> c.withdrawals.get("wdr_1")["mode"]  # doctest: +SKIP
        'stop'
        """
        return self._get(f"/withdrawals/{withdrawal_id}")

    def of_dataset(self, dataset: str) -> builtins.list[dict[str, Any]]:
        """The withdrawn versions of a dataset you can see.

        >>> len(c.withdrawals.of_dataset("st-marys-hospital/digits"))  # doctest: +SKIP
        1
        """
        org, _, name = dataset.partition("/")
        return self._get(f"/datasets/{org}/{name}/withdrawals")["items"]

    def retrain_without(self, model: str, version: int | str) -> dict[str, Any]:
        """Start the marked version's recipe again without the withdrawn data (one job).

        >>> job = c.withdrawals.retrain_without("riverside-clinic/bc-fed", 2)  # doctest: +SKIP
        """
        org, _, name = model.partition("/")
        return self._post(f"/models/{org}/{segment(name)}/versions/{version}/retrain-without")


class Retention(Group):
    def set_dataset(self, dataset: str, days: int | None) -> dict[str, Any]:
        """Keep each version of your dataset ``days`` days after its upload (None: forever).

        >>> c.retention.set_dataset("digits", 365)["days"]  # doctest: +SKIP
        365
        """
        org, _, name = dataset.partition("/")
        return self.c.request("PUT", f"/api/v1/datasets/{org}/{name}/retention", json={"days": days})

    def set_job_logs(self, days: int | None) -> dict[str, Any]:
        """Keep your organization's job logs ``days`` days after the job finished (None: forever).

        >>> c.retention.set_job_logs(90)["days"]  # doctest: +SKIP
        90
        """
        return self.c.request("PUT", "/api/v1/retention/job-logs", json={"days": days})

    def list(self) -> builtins.list[dict[str, Any]]:
        """Your organization's retention periods (datasets, job logs, deployments' prediction logs).

        >>> len(c.retention.list())  # doctest: +SKIP
        2
        """
        return self._get("/retention")["items"]

    def purge(self) -> dict[str, Any]:
        """Purge what has expired now (hub operators; the hub also does it on a schedule).

        >>> sorted(c.retention.purge())  # doctest: +SKIP
        ['dataset_versions', 'deferred', 'job_log_events']
        """
        return self._post("/retention/purge")
