"""The dataset page's policy form and consent requests in a real browser (issue 19): the owner's
admin sets rules (an impossible one is refused naming it), a grantee reads them without a form,
and the contributor approves a consent request for a model trained on its data.
Screenshot: ``test-artifacts/ui/dataset-policy.png``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import open_tab, wait_js

from consortium.store.db import transaction

pytestmark = pytest.mark.one_backend  # a browser run; the API tests cover both databases


def test_policy_form_and_a_consent_request(browser: Any, live_url: str, http: Any, world: Any,
                                           services: Any) -> None:
    org, other = world.org(), world.org()
    admin, grantee = world.actor(org, "admin"), world.actor(other, "admin")
    r = http.post("/api/v1/datasets/import-sample", headers=admin.headers, json={"sample": "iris", "name": "flowers"})
    assert r.status_code == 201, r.text
    assert http.post("/api/v1/grants", headers=admin.headers, json={
        "resource_type": "dataset", "resource": f"{org}/flowers", "permission": "compute",
        "grantee_org": other}).status_code == 201
    # a model of the grantee trained on the flowers, and its request to serve it to a third organization
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
    from registry_models import tiny_classifier

    from consortium.registry import models as reg
    from consortium.store.tables.data import Dataset

    with transaction(services.session_factory) as s:
        ds = s.query(Dataset).filter_by(org_id=admin.org_id, name="flowers").one()
        reg.register_version(s, grantee.org_id, "petals", onnx=tiny_classifier(), blobs=services.blobs,
                             task="classification", lineage={"datasets": [
                                 {"dataset": f"{org}/flowers", "dataset_id": ds.id, "version": 1, "owner": org,
                                  "owner_org_id": ds.org_id}]})
    third = world.org()
    r = http.post(f"/api/v1/models/{other}/petals/consents", json={"organization": third, "action": "deploy"},
                  headers=grantee.headers)
    assert r.status_code == 201, r.text

    tab = open_tab(browser, live_url)
    tab.login(admin.email)
    tab.go(f"/datasets/{org}/flowers")
    tab.page.wait_for_selector("#policy-none")
    form = tab.page.locator("#policy-form")
    form.locator("input[name=max_epochs]").fill("0")  # impossible: refused, naming the rule
    form.locator("button[type=submit]").click()
    tab.page.wait_for_selector("#policy-form .error")
    assert "max_epochs" in tab.page.inner_text("#policy-form .error")
    assert [e for e in tab.errors if "422" in e] == tab.errors  # the browser logs the refused PUT, nothing else
    tab.errors.clear()
    form.locator("input[name=max_epochs]").fill("5")
    form.locator("input[name=dp_max_epsilon]").fill("2")
    form.locator("input[name=model_types][value=mlp]").check()
    form.locator("input[name=manual_approval]").check()
    form.locator("button[type=submit]").click()
    tab.page.wait_for_selector('#policy-rules dd[data-rule="max_epochs"]')
    assert tab.page.inner_text('#policy-rules dd[data-rule="max_epochs"]') == "5"
    rules = http.get(f"/api/v1/datasets/{org}/flowers/policy", headers=admin.headers).json()["rules"]
    assert rules["max_epochs"] == 5 and rules["dp_max_epsilon"] == 2 and rules["model_types"] == ["mlp"]
    assert rules["manual_approval"] is True
    # the consent request: approved from the page
    tab.page.wait_for_selector('#consents button[data-decide="approve"]')
    tab.shot("dataset-policy")
    tab.page.click('#consents button[data-decide="approve"]')
    wait_js(tab.page, "!document.querySelector('#consents button[data-decide]')")
    [c] = http.get("/api/v1/consents", headers=grantee.headers).json()["items"]
    assert c["state"] == "approved" and c["organization"] == third
    tab.clean()
    tab.page.context.close()

    other_tab = open_tab(browser, live_url)  # the grantee reads the rules, without the form
    other_tab.login(grantee.email)
    other_tab.go(f"/datasets/{org}/flowers")
    other_tab.page.wait_for_selector('#policy-rules dd[data-rule="dp_max_epsilon"]')
    assert other_tab.page.locator("#policy-form").count() == 0
    assert other_tab.page.locator("#consents").count() == 0
    other_tab.clean()
    other_tab.page.context.close()
