"""The whole lifecycle in a real browser: log in as a hospital, upload a dataset, train a model
and watch the job finish, deploy it and grant a clinic the right to invoke it; log in as the
clinic and get a prediction from the try-it form. Plus the org switcher, tokens shown once, the
audit chain check, error pages and CSRF refusals. Screenshots: ``test-artifacts/ui/``."""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import ARTIFACTS, Tab, open_tab, wait_js

pytestmark = pytest.mark.one_backend  # a browser run; the API tests cover both databases

HOSPITAL, CLINIC, LAB = "st-marys-hospital", "riverside-clinic", "northgate-lab"


@pytest.fixture(scope="module")
def people(world: Any, services: Any) -> dict[str, Any]:
    from consortium.governance import identity
    from consortium.governance.roles import Role
    from consortium.store.db import transaction

    for org in (HOSPITAL, CLINIC, LAB):
        world.org(org)
    out = {"hospital": world.actor(HOSPITAL, "owner"), "clinic": world.actor(CLINIC, "owner"),
           "viewer": world.actor(HOSPITAL, "viewer")}
    with transaction(services.session_factory) as s:  # the hospital owner is also a viewer at the lab
        identity.add_member(s, identity.org_by_name(s, LAB).id, out["hospital"].user_id, Role.viewer)
    return out


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from consortium.data.samples import load_sample

    data = load_sample("breast_cancer")
    path = tmp_path_factory.mktemp("ui") / "bc.csv"
    data.frame.to_csv(path, index=False)
    return path, data


@pytest.fixture(scope="module")
def hospital(browser: Any, live_url: str, people: dict[str, Any]) -> Tab:
    tab = open_tab(browser, live_url)
    tab.login(people["hospital"].email)
    if tab.page.locator("#org-select").input_value() != HOSPITAL:  # log in lands in one of the user's orgs
        with tab.page.expect_navigation():  # the form posts, then the overview of the other organization loads
            tab.page.select_option("#org-select", HOSPITAL)
        wait_js(tab.page, f"document.querySelector('#org-select').value === '{HOSPITAL}'")
    return tab


def test_login_overview_tokens_and_org_switch(hospital: Tab) -> None:
    page = hospital.page
    assert page.locator("h1").first.inner_text().strip() == HOSPITAL.title()  # World's display name
    page.wait_for_selector("#tokens table")
    page.fill("#token-form input[name=name]", "laptop")
    page.click("#token-form button[type=submit]")
    secret = page.wait_for_selector("#token-secret code").inner_text()
    assert secret.startswith("csm_tok_")
    page.wait_for_selector("#tokens td:has-text('laptop')")
    hospital.shot("overview")
    hospital.shot("overview", phone=True)
    page.reload()  # shown once: gone after a reload
    page.wait_for_selector("#tokens td:has-text('laptop')")
    assert secret not in page.content()
    with page.expect_navigation():  # auto-submits the CSRF-protected form; wait for the new page
        page.select_option("#org-select", LAB)
    wait_js(page, f"document.querySelector('#org-select').value === '{LAB}'")
    assert "viewer" in page.locator(".role").inner_text()
    with page.expect_navigation():
        page.select_option("#org-select", HOSPITAL)
    wait_js(page, f"document.querySelector('#org-select').value === '{HOSPITAL}'")
    assert "owner" in page.locator(".role").inner_text()  # back as the hospital's owner before the next test
    hospital.clean()


def test_upload_dataset_with_progress(hospital: Tab, csv_file: Any) -> None:
    path, data = csv_file
    page = hospital.page
    hospital.go("/datasets")
    page.fill("#upload-form input[name=name]", "bc")
    page.fill("#upload-form input[name=target]", "target")
    page.set_input_files("#upload-form input[name=file]", str(path))
    page.click("#upload-form button[type=submit]")
    page.wait_for_url(f"{hospital.base}/datasets/{HOSPITAL}/bc")
    page.wait_for_selector("#schema table")
    assert page.locator("#version").inner_text().count(str(len(data.frame))) >= 1
    assert "mean_radius" in page.locator("#schema").inner_text()
    page.wait_for_selector("#preview table")
    hospital.shot("dataset")
    hospital.shot("dataset", phone=True)
    hospital.clean()


def test_train_and_watch_the_job(hospital: Tab, worker: Any) -> None:
    page = hospital.page
    hospital.go("/jobs/new")
    page.wait_for_selector(f"#dataset option[value='{HOSPITAL}/bc']", state="attached")
    page.select_option("#dataset", f"{HOSPITAL}/bc")
    page.wait_for_selector("#target option[value=target]", state="attached")
    page.select_option("#target", "target")
    page.fill("#job-form input[name=epochs]", "8")
    page.fill("#job-form input[name=name]", "bc-mlp")
    hospital.shot("job-new")
    page.click("#job-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/jobs/job_\w+$"))
    page.wait_for_selector("#job-done", timeout=90_000)
    page.wait_for_selector("#loss-chart .main-svg")
    assert "epoch 8 of 8" in page.locator("#progress-text").inner_text()
    assert page.locator("#loss-chart .scatterlayer .trace").count() == 2  # training and validation loss
    hospital.shot("job")
    hospital.shot("job", phone=True)
    hospital.clean()


def test_model_version_deploy_and_grant(hospital: Tab) -> None:
    page = hospital.page
    page.click("#job-done a")
    page.wait_for_url(re.compile(rf".*/models/{HOSPITAL}/bc-mlp/versions/1$"))
    page.wait_for_selector("#metrics table")
    wait_js(page, "[...document.querySelectorAll('#plots img')].length >= 2 && "
                  "[...document.querySelectorAll('#plots img')].every(i => i.complete && i.naturalWidth > 0)")
    assert HOSPITAL in page.locator("#lineage").inner_text()
    page.click("#explain-form button[type=submit]")  # an attribution for each feature of the row given
    page.wait_for_selector("#explain-chart .main-svg")
    assert "Integrated Gradients toward class" in page.locator("#explained").inner_text()
    assert page.locator("#explain-chart .bars .point").count() == 15  # the 15 strongest of 30 features
    hospital.shot("model-version")
    hospital.shot("model-version", phone=True)
    page.fill("#deploy-name", "bc-risk")
    page.click("#deploy-form button[type=submit]")
    page.wait_for_url(f"{hospital.base}/deployments/bc-risk")
    page.wait_for_selector(f"#grant-org option[value='{CLINIC}']", state="attached")
    page.select_option("#grant-org", CLINIC)
    page.fill("#grant-form input[name=per_minute]", "30")
    page.click("#grant-form button[type=submit]")
    page.wait_for_selector(f"#grants td:has-text('{CLINIC}')")
    page.fill("#feature-fields input >> nth=0", "14")
    page.click("#features-pane button[type=submit]")
    page.wait_for_selector("#prediction-result")
    assert "not enough data yet" in page.wait_for_selector("#drift-status").inner_text()  # the monitoring panels
    page.wait_for_selector("#feedback-empty")
    hospital.shot("deployment")
    hospital.clean()


def test_clinic_gets_a_prediction(browser: Any, live_url: str, people: dict[str, Any], csv_file: Any) -> None:
    _, data = csv_file
    row = data.frame.drop(columns=["target"]).iloc[0].tolist()
    expected = str(int(data.frame["target"].iloc[0]))
    clinic = open_tab(browser, live_url)
    clinic.login(people["clinic"].email)
    page = clinic.page
    hospital_deps = page.locator("#deployments")
    hospital_deps.wait_for()
    clinic.go("/deployments")
    page.click("#shared a:has-text('bc-risk')")
    page.wait_for_url(f"{live_url}/deployments/*~bc-risk")  # another organization's: org~name
    page.wait_for_selector("#feature-fields input")
    page.click("[data-tab=json-pane]")
    page.fill("#json-inputs", str([row]))
    page.click("#predict-json")
    predicted = page.wait_for_selector("#predicted").inner_text()
    assert predicted == expected, (predicted, expected)
    page.wait_for_selector("#usage table")
    clinic.shot("deployment-clinic")
    clinic.shot("deployment-clinic", phone=True)
    clinic.clean()
    # the clinic never sees the hospital's dataset: the styled 404 page, not a JSON error
    r = clinic.go(f"/datasets/{HOSPITAL}/bc")
    assert r.status == 404 and "Not found" in page.locator("h1").inner_text()
    clinic.shot("error-404")
    clinic.page.context.close()


def test_cancel_a_running_job(hospital: Tab, worker: Any) -> None:
    page = hospital.page
    hospital.go("/jobs/new")
    page.wait_for_selector(f"#dataset option[value='{HOSPITAL}/bc']", state="attached")
    page.select_option("#dataset", f"{HOSPITAL}/bc")
    page.fill("#job-form input[name=epochs]", "500")
    page.fill("#job-form input[name=name]", "bc-long")
    page.click("#job-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/jobs/job_\w+$"))
    wait_js(page, "/epoch \\d+ of 500/.test(document.querySelector('#progress-text').textContent)", 60)
    page.click("#cancel")
    page.wait_for_selector("#job-state .badge.cancelled", timeout=60_000)
    assert page.locator("#cancel").is_hidden() and page.locator("#stage").inner_text() == "Cancelled"
    assert "500 of 500" not in page.locator("#progress-text").inner_text()
    hospital.clean()


def test_audit_projects_and_refusals(hospital: Tab, browser: Any, live_url: str, people: dict[str, Any]) -> None:
    page = hospital.page
    hospital.go("/audit")
    page.wait_for_selector("#events table")
    page.click("#verify")
    assert "Audit chain intact" in page.wait_for_selector("#verify-outcome").inner_text()
    page.fill("#audit-filter input[name=action]", "create_deployment")
    page.click("#audit-filter button[type=submit]")
    page.wait_for_selector("#events td:has-text('create_deployment')")
    hospital.shot("audit")
    hospital.go("/projects")
    page.fill("#project-form input[name=name]", "bc-study")
    page.fill("#project-form input[name=purpose]", "Breast cancer risk across sites")
    page.click("#project-form button[type=submit]")
    page.wait_for_url(f"{live_url}/projects/*~bc-study")  # projects are linked by org~name
    page.wait_for_selector("#members table")
    page.wait_for_selector("#activity table")
    hospital.shot("project")
    for path, name in (("/models", "models"), ("/jobs", "jobs"), ("/deployments", "deployments")):
        hospital.go(path)
        page.wait_for_selector("main table")
        hospital.shot(name)
    hospital.clean()
    # a state-changing form without the page's CSRF token is refused; the session survives
    r = page.context.request.post(f"{live_url}/logout", form={"csrf": "forged"}, max_redirects=0)
    assert r.status == 403 and "security token" in r.text()
    hospital.go("/")
    assert page.url == f"{live_url}/"
    # a viewer gets the 403 page for starting jobs; an anonymous browser is sent to the login page
    viewer = open_tab(browser, live_url)
    viewer.login(people["viewer"].email)
    assert viewer.go("/jobs/new").status == 403
    viewer.shot("error-403")
    viewer.page.context.close()
    anon = open_tab(browser, live_url)
    anon.go("/datasets")
    assert anon.page.url == f"{live_url}/login?next=/datasets"
    anon.shot("login")
    anon.shot("login", phone=True)
    anon.clean()
    anon.page.context.close()
    # log out with the real form
    page.click(".logout button")
    page.wait_for_url(f"{live_url}/login")
    assert ARTIFACTS.is_dir()
