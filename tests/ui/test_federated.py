"""A real federated job in a real browser: three organizations each hold an IID third of
breast_cancer and grant ``compute`` to a project the hospital leads; the hospital starts a job from
the project's page with the new-job form's federated choice (its partners' datasets ticked, two
rounds of FedAvg) and watches the job page fill in
per-organization metrics per round, then opens the model version: lineage with every organization
and the contribution report.

The worker runs Flower's simulation engine (the same ServerApp/ClientApp as the deployment engine,
under a second per round). Screenshots: ``test-artifacts/ui/federated-*.png``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Tab, open_tab, wait_js
from support import start_worker, stop_worker

pytestmark = pytest.mark.one_backend  # a browser run; the API tests cover both databases

HOSPITAL, CLINIC, LAB = "st-marys-hospital", "riverside-clinic", "northgate-lab"
ORGS = (HOSPITAL, CLINIC, LAB)
PROJECT = "bc-study"


@pytest.fixture(scope="module")
def fed_worker(settings: Any) -> Iterator[Any]:
    p = start_worker(settings, CONSORTIUM_FEDERATION_ENGINE="simulation")
    yield p
    stop_worker(p)


@pytest.fixture(scope="module")
def sites(http: Any, world: Any) -> dict[str, Any]:
    """The three organizations with their third of breast_cancer as ``bc``, each granted ``compute``
    to the project ``bc-study`` that the hospital leads (as in the demo)."""
    actors = {org: world.actor(world.org(org)) for org in ORGS}
    for i, a in enumerate(actors.values()):
        r = http.post("/api/v1/datasets/import-sample", headers=a.headers,
                      json={"sample": "breast_cancer", "name": "bc", "partitions": 3, "part": i + 1, "seed": 0})
        assert r.status_code == 201, r.text
    r = http.post("/api/v1/projects", headers=actors[HOSPITAL].headers,
                  json={"name": PROJECT, "purpose": "breast cancer across sites", "terms": ["compute", "metadata"]})
    assert r.status_code == 201, r.text
    for org in (CLINIC, LAB):
        r = http.post(f"/api/v1/projects/{PROJECT}/invitations", headers=actors[HOSPITAL].headers, json={"org": org})
        assert r.status_code == 200, r.text
        assert http.post(f"/api/v1/projects/{PROJECT}/accept", headers=actors[org].headers).status_code == 200
    for org, a in actors.items():
        r = http.post("/api/v1/grants", headers=a.headers, json={
            "resource_type": "dataset", "resource": f"{org}/bc", "permission": "compute", "grantee_project": PROJECT})
        assert r.status_code == 201, r.text
    return actors


@pytest.fixture(scope="module")
def hospital(browser: Any, live_url: str, sites: dict[str, Any]) -> Iterator[Tab]:
    tab = open_tab(browser, live_url)
    tab.login(sites[HOSPITAL].email)
    yield tab
    tab.page.context.close()


def test_federated_job_shows_each_organization_per_round(hospital: Tab, fed_worker: Any) -> None:
    page = hospital.page
    hospital.go(f"/projects/{PROJECT}")
    page.click("#project-job")  # the new-job page with the project chosen
    wait_js(page, f"document.querySelector('#project').value === '{PROJECT}'")
    page.wait_for_selector(f"#dataset option[value='{HOSPITAL}/bc']", state="attached")
    page.select_option("#dataset", f"{HOSPITAL}/bc")
    assert page.locator("#fed-fields").is_hidden()
    page.check("input[name=where][value=federated]")  # the form's federated choice
    for org in (CLINIC, LAB):  # the project's datasets with the same columns are offered
        page.check(f"#fed-datasets input[value='{org}/bc']")
    assert page.locator(f"#fed-datasets input[value='{HOSPITAL}/bc']").is_checked()
    assert page.locator("#job-form input[name=epochs]").is_hidden()  # rounds x local epochs instead
    page.fill("#job-form input[name=rounds]", "2")
    page.fill("#job-form input[name=name]", "bc-federated")
    recipe = page.locator("#recipe-preview").text_content() or ""  # in a closed <details>
    assert all(f"{org}/bc" in recipe for org in ORGS) and "fedavg" in recipe and "min_nodes: 3" in recipe, recipe
    hospital.shot("federated-form")
    page.click("#job-form button[type=submit]")
    wait_js(page, "/\\/jobs\\/job_\\w+$/.test(location.pathname) || "
                  "!!document.querySelector('#job-form .error')")
    assert "/jobs/job_" in page.url, page.locator("#job-form .error").inner_text()
    page.wait_for_selector("#job-done", timeout=120_000)
    page.wait_for_selector("#fed-chart .main-svg")
    assert "round 2 of 2" in page.locator("#progress-text").inner_text()
    assert f"in project {PROJECT}" in page.locator("#job-sub").inner_text()
    assert page.locator("#fed-table tbody tr").count() == 4  # the latest round: three organizations, the global model
    page.select_option("#round-pick", "all")
    rows = [r.split("\t") for r in page.locator("#fed-table tbody tr").all_inner_texts()]
    heads = page.locator("#fed-table thead th").all_inner_texts()
    by_org = {(r[heads.index("Round")], r[heads.index("Organization")]): r for r in rows}
    for rnd in ("1", "2"):
        for org in ORGS:
            row = by_org[(rnd, org)]  # every organization, every round
            assert int(row[heads.index("Samples")].replace(",", "")) > 50, row
            for col in ("Loss", "Accuracy"):
                assert re.fullmatch(r"\d\.\d+", row[heads.index(col)]), (col, row)
        glob = by_org[(rnd, "global model")]  # the hub's evaluation of the aggregated model
        assert 0.5 < float(glob[heads.index("Accuracy")]) <= 1, glob
    legend = page.eval_on_selector_all("#fed-chart .legendtext", "ns => ns.map(n => n.textContent)")
    assert set(legend) == {*ORGS, "global model"}, legend
    assert page.locator("#loss-chart .scatterlayer .trace").count() >= 3
    hospital.shot("federated-job")
    hospital.shot("federated-job", phone=True)
    hospital.clean()


def test_federated_version_lineage_and_contributions(hospital: Tab) -> None:
    page = hospital.page
    page.click("#job-done a")
    page.wait_for_url(re.compile(rf".*/models/{HOSPITAL}/bc-federated/versions/1$"))
    page.wait_for_selector("#lineage .lineage")
    lineage = page.locator("#lineage").inner_text()
    for org in ORGS:
        assert org in lineage and f"{org}/bc" in lineage, (org, lineage)
    assert "federated job" in lineage.lower()
    page.wait_for_selector("#contrib table")
    contrib = page.locator("#contrib tbody tr").all_inner_texts()
    assert sorted(r.split("\t")[0] for r in contrib) == sorted(ORGS), contrib
    assert "{" not in page.locator("#contrib").inner_text()  # no raw JSON
    hospital.shot("federated-version")
    hospital.shot("federated-version", phone=True)
    hospital.clean()


def test_a_member_of_the_project_reads_the_version(browser: Any, live_url: str, sites: dict[str, Any]) -> None:
    clinic = open_tab(browser, live_url)
    clinic.login(sites[CLINIC].email)
    page = clinic.page
    clinic.go(f"/models/{HOSPITAL}/bc-federated/versions/1")
    page.wait_for_selector("#contrib table")
    assert all(org in page.locator("#lineage").inner_text() for org in ORGS)
    assert page.locator("#deploy-form").count() == 0  # only the owner organization deploys it
    clinic.clean()
    clinic.page.context.close()
