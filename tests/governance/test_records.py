"""Records (issue 19 point 5), through the API on SQLite and PostgreSQL: an organization's
processing record (which partner used which of its datasets, when, in which job and project, for
which purpose, with which privacy settings) as JSON and CSV, and the sealed audit export as JSON
Lines and syslog, verified offline; an edited, cut or re-sealed export fails the check."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest

from consortium.errors import IntegrityError
from consortium.governance.export_seal import record_of, verify_export


def fed_recipe(datasets: list[str], **fed: Any) -> dict[str, Any]:
    return {"name": "bc-fed", "data": {"target": "target", "test_size": 0.2, "seed": 0},
            "model": {"type": "mlp", "hidden": [8]}, "train": {"batch_size": 32},
            "federated": {"datasets": datasets, "rounds": 2, "local_epochs": 1, "min_nodes": len(datasets), **fed},
            "register": {"model": "bc-fed"}}


@pytest.fixture(scope="module")
def used(http: Any, world: Any) -> dict[str, Any]:
    """Two hospitals; the second uses the first's dataset in a project (federated, DP, secure
    aggregation) and alone (centralized), and downloads it once."""
    owner, partner, stranger = (world.actor(world.org()) for _ in range(3))
    for a in (owner, partner):
        r = http.post("/api/v1/datasets/import-sample", headers=a.headers,
                      json={"sample": "breast_cancer", "name": "bc", "partitions": 2, "part": 1, "seed": 0})
        assert r.status_code == 201, r.text
    ds = f"{owner.org}/bc"
    for perm in ("compute", "download"):
        r = http.post("/api/v1/grants", json={"resource_type": "dataset", "resource": ds, "permission": perm,
                                              "grantee_org": partner.org}, headers=owner.headers)
        assert r.status_code == 201, r.text
    prj = http.post("/api/v1/projects", json={"name": "cardio", "purpose": "predict readmission risk",
                                              "terms": ["metadata", "compute"]}, headers=partner.headers)
    assert prj.status_code == 201, prj.text
    fed = http.post("/api/v1/jobs", headers=partner.headers, json={
        "project": "cardio",
        "recipe": fed_recipe([ds, f"{partner.org}/bc"], secure_aggregation=True,
                             dp={"epsilon": 2.5, "delta": 1e-5, "max_grad_norm": 1.0})})
    central = http.post("/api/v1/jobs", headers=partner.headers, json={"recipe": {
        "name": "bc-alone", "data": {"dataset": ds, "target": "target"}, "model": {"type": "logistic"},
        "train": {"epochs": 1}}})
    assert fed.status_code == 201 and central.status_code == 201, (fed.text, central.text)
    dl = http.get(f"/api/v1/datasets/{owner.org}/bc/versions/1/download", headers=partner.headers)
    assert dl.status_code == 200
    return {"owner": owner, "partner": partner, "stranger": stranger, "dataset": ds,
            "fed": fed.json()["id"], "central": central.json()["id"]}


def test_processing_record_names_partner_job_project_purpose_and_privacy(http: Any, used: dict[str, Any]) -> None:
    owner, partner = used["owner"], used["partner"]
    r = http.get(f"/api/v1/orgs/{owner.org}/processing-record", headers=owner.headers)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    by_job = {i["job_id"]: i for i in items if i["activity"] == "job"}
    fed, central = by_job[used["fed"]], by_job[used["central"]]
    assert fed["partner"] == partner.org and fed["dataset"] == used["dataset"] and fed["dataset_version"] == 1
    assert fed["project"] == "cardio" and fed["purpose"] == "predict readmission risk"
    assert fed["differential_privacy"] is True and fed["epsilon_target"] == 2.5 and fed["secure_aggregation"] is True
    assert central["project"] is None and central["differential_privacy"] is False and central["job_kind"] == "train"
    downloads = [i for i in items if i["activity"] == "download"]
    assert [(d["partner"], d["dataset"], d["dataset_version"]) for d in downloads] == \
        [(partner.org, used["dataset"], 1)]
    # the partner's own record shows its own dataset in the federated job, not the owner's
    mine = http.get(f"/api/v1/orgs/{partner.org}/processing-record", headers=partner.headers).json()["items"]
    assert {i["dataset"] for i in mine} == {f"{partner.org}/bc"}
    only = http.get(f"/api/v1/orgs/{partner.org}/processing-record", params={"partners_only": True},
                    headers=partner.headers).json()["items"]
    assert only == []


def test_processing_record_as_csv_has_the_same_rows(http: Any, used: dict[str, Any]) -> None:
    owner = used["owner"]
    as_json = http.get(f"/api/v1/orgs/{owner.org}/processing-record", headers=owner.headers).json()
    r = http.get(f"/api/v1/orgs/{owner.org}/processing-record", params={"format": "csv"}, headers=owner.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0]) == as_json["columns"]
    assert [x["job_id"] for x in rows] == [i["job_id"] or "" for i in as_json["items"]]
    fed = next(x for x in rows if x["job_id"] == used["fed"])
    assert fed["secure_aggregation"] == "true" and fed["epsilon_target"] == "2.5"


def test_another_organization_cannot_read_the_record(http: Any, used: dict[str, Any]) -> None:
    r = http.get(f"/api/v1/orgs/{used['owner'].org}/processing-record", headers=used["stranger"].headers)
    missing = http.get("/api/v1/orgs/nx-nothing/processing-record", headers=used["stranger"].headers)
    assert r.status_code == missing.status_code == 404
    assert r.json()["error"]["message"].replace(used["owner"].org, "X") == \
        missing.json()["error"]["message"].replace("nx-nothing", "X")  # the same answer as for a missing one


def _export(http: Any, actor: Any, fmt: str) -> list[str]:
    r = http.get("/api/v1/audit/export", params={"format": fmt}, headers=actor.headers)
    assert r.status_code == 200, r.text
    return r.text.splitlines()


def _public_key(http: Any, actor: Any) -> str:
    return http.get("/api/v1/audit/public-key", headers=actor.headers).json()["public_key"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("fmt", ["jsonl", "syslog"])
def test_audit_export_verifies_offline_and_holds_the_organizations_events(http: Any, used: dict[str, Any],
                                                                         fmt: str) -> None:
    owner = used["owner"]
    lines = _export(http, owner, fmt)
    key = _public_key(http, owner)
    out = verify_export(lines, key)
    records = [record_of(x) for x in lines]
    events = [r for r in records if r["type"] == "event"]
    assert out["ok"] and out["events"] == len(events) > 5
    assert all(owner.org_id in (e["actor_org_id"], e["resource_org_id"]) for e in events)
    assert "download_version" in {e["action"] for e in events}  # the partner's download concerns the owner
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert out["checkpoint"]["seq"] >= events[-1]["seq"]
    if fmt == "syslog":
        assert all(re.match(r"<\d{1,3}>1 \S+ \S+ consortium - \S+ \[consortium@32473 ", x) for x in lines), lines[:2]
        ok = next(x for x in lines if '"outcome":"ok"' in x and "download_version" in x)
        assert ok.startswith("<110>1 ")  # facility 13 (log audit), informational
    # the checkpoint in the header is the one `audit verify --checkpoint` takes: the chain still matches it
    r = http.post("/api/v1/audit/verify", json={"checkpoints": [records[0]["checkpoint"]]}, headers=owner.headers)
    assert r.status_code == 200 and r.json()["ok"] and r.json()["checkpoints"][0]["ok"], r.text


def test_an_altered_cut_or_reordered_export_fails_offline(http: Any, used: dict[str, Any]) -> None:
    owner = used["owner"]
    lines = _export(http, owner, "jsonl")
    key = _public_key(http, owner)
    ev = next(i for i, x in enumerate(lines) if '"type":"event"' in x)
    altered = list(lines)
    altered[ev] = altered[ev].replace('"outcome":"ok"', '"outcome":"denied"', 1)
    dropped = lines[:ev] + lines[ev + 1:]
    swapped = list(lines)
    swapped[ev], swapped[ev + 1] = swapped[ev + 1], swapped[ev]
    for bad, what in ((altered, "altered"), (dropped, "sealed"), (lines[:-1], "cut short"), (swapped, "after")):
        with pytest.raises(IntegrityError) as e:
            verify_export(bad, key)
        assert what in e.value.message, (what, e.value.message)
    # a seal re-signed by another key does not pass for the hub's
    from consortium.governance.audit_keys import AuditKeys
    from consortium.governance.export_seal import digest, json_line, seal_record

    other = AuditKeys.from_root(b"\x01" * 32)
    forged = altered[:-1] + [json_line({**seal_record(other.key_id, key, len([x for x in altered if '"event"' in x]),
                                                       digest(altered[:-1]), other.signer.sign),
                                        "key_id": json.loads(lines[-1])["key_id"]})]
    with pytest.raises(IntegrityError, match="signature does not verify"):
        verify_export(forged, key)


def test_export_pages_through_a_long_log(services: Any, world: Any) -> None:
    """More events than a page: every one is exported once, in order (the keyset pages)."""
    from consortium.governance import audit_export
    from consortium.governance.audit import EventDraft
    from consortium.governance.identity import org_by_name
    from consortium.store.db import transaction

    org = world.org()
    with transaction(services.session_factory) as s:
        o = org_by_name(s, org)
        services.audit_in(s, [EventDraft("bulk.event", actor_org_id=o.id, details={"i": i}) for i in range(25)])
    lines = [x.rstrip("\n") for chunk in audit_export.export_lines(services.session_factory, services.audit_chain,
                                                                   o, "jsonl", page_size=7)
             for x in chunk.splitlines()]
    out = verify_export(lines, services.audit_chain.keys.public_key)
    assert out["events"] == 25
    assert [record_of(x)["details"]["i"] for x in lines[1:-1]] == list(range(25))


def test_cli_exports_and_verifies_offline_without_the_hub(live_url: str, used: dict[str, Any], tmp_path: Any) -> None:
    """`consortium audit export --format syslog --out FILE`, then `audit verify-export FILE --key K`
    pointed at no hub at all; an edited byte fails it. `records processing --format csv` too."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    cli = str(Path(sys.executable).parent / "consortium")
    owner = used["owner"]
    env = {**os.environ, "CONSORTIUM_URL": live_url, "CONSORTIUM_TOKEN": owner.token,
           "CONSORTIUM_CONFIG": str(tmp_path / "cli.json"), "COLUMNS": "200"}

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([cli, *args], env={**env, **extra}, capture_output=True, text=True, timeout=120)

    key = run("audit", "public-key", "--json")
    assert key.returncode == 0, key.stderr
    (tmp_path / "hub-key.json").write_text(key.stdout)
    out = tmp_path / "audit.log"
    r = run("audit", "export", "--format", "syslog", "--out", str(out))
    assert r.returncode == 0 and out.stat().st_size > 0, r.stdout + r.stderr
    nowhere = {"CONSORTIUM_URL": "http://127.0.0.1:9", "CONSORTIUM_TOKEN": "csm_tok_none"}
    ok = run("audit", "verify-export", str(out), "--key", str(tmp_path / "hub-key.json"), **nowhere)
    assert ok.returncode == 0 and "export intact" in ok.stdout, ok.stdout + ok.stderr
    text = out.read_text()
    out.write_text(text.replace('outcome="ok"', 'outcome="no"', 1))
    bad = run("audit", "verify-export", str(out), "--key", str(tmp_path / "hub-key.json"), **nowhere)
    assert bad.returncode != 0 and "differs from what was sealed" in bad.stdout + bad.stderr
    csv_out = run("records", "processing", "--format", "csv")
    assert csv_out.returncode == 0 and csv_out.stdout.startswith("activity,job_id,"), csv_out.stderr
    assert used["fed"] in csv_out.stdout
