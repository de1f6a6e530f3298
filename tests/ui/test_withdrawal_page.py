"""A withdrawn dataset's page in a real browser (issue 19): the owner's admin withdraws version 1
from the dataset's page (the browser asks to confirm), the page then lists it as withdrawn with
the reason and the model it marked, a partner's viewer sees the same record without the form, and
the audit page shows the record of processing. Screenshot: ``test-artifacts/ui/dataset-withdrawn.png``."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import open_tab, wait_js

pytestmark = pytest.mark.one_backend  # a browser run; the API tests cover both databases


def test_withdrawing_a_version_from_its_page(browser: Any, live_url: str, http: Any, world: Any,
                                            services: Any) -> None:
    from consortium.store.db import transaction

    owner, partner = world.actor(world.org(), "admin"), world.actor(world.org(), "viewer")
    for part in (1, 2):
        r = http.post("/api/v1/datasets/import-sample", headers=owner.headers,
                      json={"sample": "iris", "name": "trial", "partitions": 2, "part": part})
        assert r.status_code == 201, r.text
    ds = f"{owner.org}/trial"
    r = http.post("/api/v1/grants", json={"resource_type": "dataset", "resource": ds, "permission": "metadata",
                                          "grantee_org": partner.org}, headers=owner.headers)
    assert r.status_code == 201, r.text
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
    from registry_models import tiny_classifier

    from consortium.registry import models as reg

    with transaction(services.session_factory) as s:  # a model whose lineage names version 1
        reg.register_version(s, owner.org, "iris-model", onnx=tiny_classifier(), blobs=services.blobs,
                             lineage={"datasets": [{"dataset": ds, "version": 1}], "source": "upload"})

    tab = open_tab(browser, live_url)
    tab.login(owner.email)
    asked: list[str] = []
    tab.page.on("dialog", lambda d: (asked.append(d.message), d.accept()))
    tab.go(f"/datasets/{ds}")
    tab.page.wait_for_selector("#withdraw-form")
    tab.page.fill("#withdraw-form input[name=version]", "1")
    tab.page.fill("#withdraw-form input[name=reason]", "erasure request (GDPR Art. 17)")
    tab.page.check("#withdraw-form input[name=keep_grants]")
    with tab.page.expect_navigation():  # the page reloads once the version is withdrawn
        tab.page.click("#withdraw-form button[type=submit]")
    assert "version 1 of" in asked[-1]
    tab.page.wait_for_selector("#withdrawals [data-withdrawn='1']")
    row = tab.page.locator("#withdrawals tr", has_text="v1").inner_text()
    assert "erasure request" in row and f"{owner.org}/iris-model v1" in row and "stopped" in row
    tab.shot("dataset-withdrawn")
    tab.go("/audit")
    wait_js(tab.page, "document.querySelector('#records table, #records p') !== null")
    tab.clean()
    tab.page.context.close()

    seen = open_tab(browser, live_url)
    seen.login(partner.email)
    seen.go(f"/datasets/{ds}")
    seen.page.wait_for_selector("#withdrawals [data-withdrawn='1']")
    assert seen.page.locator("#withdraw-form").count() == 0
    seen.clean()
    seen.page.context.close()
