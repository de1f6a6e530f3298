"""Deleting a dataset version, then the whole dataset, from its page in a real browser: only the
owner organization's admins see the buttons, the browser asks to confirm, and the API then no
longer knows them. Screenshot: ``test-artifacts/ui/dataset-delete.png``."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import open_tab

pytestmark = pytest.mark.one_backend  # a browser run; the API tests cover both databases


def test_an_admin_deletes_a_version_then_the_dataset(browser: Any, live_url: str, http: Any, world: Any) -> None:
    org = world.org()
    admin, member = world.actor(org, "admin"), world.actor(org, "member")
    for part in (1, 2):  # two different partitions of iris: versions 1 and 2 of one dataset
        r = http.post("/api/v1/datasets/import-sample", headers=admin.headers,
                      json={"sample": "iris", "name": "trial", "partitions": 2, "part": part})
        assert r.status_code == 201, r.text
    url = f"/api/v1/datasets/{org}/trial"
    assert [v["version"] for v in http.get(url, headers=admin.headers).json()["version_list"]] == [1, 2]

    viewer = open_tab(browser, live_url)
    viewer.login(member.email)
    viewer.go(f"/datasets/{org}/trial")
    viewer.page.wait_for_selector("#versions table")
    assert viewer.page.locator("#delete-dataset").count() == 0  # a member may not delete
    assert viewer.page.locator("#versions button.danger").count() == 0
    viewer.clean()
    viewer.page.context.close()

    tab = open_tab(browser, live_url)
    tab.login(admin.email)
    asked: list[str] = []
    tab.page.on("dialog", lambda d: (asked.append(d.message), d.accept()))
    tab.go(f"/datasets/{org}/trial")
    tab.page.wait_for_selector("#versions table")
    tab.shot("dataset-delete")
    row = tab.page.locator("#versions tr", has_text="v1")
    with tab.page.expect_navigation():  # the page reloads once the version is gone
        row.locator("button.danger").click()
    assert "version 1 of" in asked[-1]
    assert [v["version"] for v in http.get(url, headers=admin.headers).json()["version_list"]] == [2]
    tab.page.wait_for_selector("#versions table")
    assert tab.page.locator("#versions button.danger").count() == 0  # the last version goes with the dataset
    tab.page.click("#delete-dataset")
    tab.page.wait_for_url(live_url + "/datasets")
    assert "all its versions" in asked[-1]
    assert http.get(url, headers=admin.headers).status_code == 404
    tab.clean()
    tab.page.context.close()
