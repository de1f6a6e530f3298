"""A tuning job in a real browser (issue 20): the job page charts each child's reward and the best so
far and names the best child; the version page tells the search (method, budget, best child, the
rl controller's preferences) and shows the reward-by-child plot."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import open_tab, wait_js
from support import wait_for

pytestmark = pytest.mark.one_backend  # a browser run; the API tests cover both databases


def test_rl_job_page_and_version_show_the_search(browser: Any, live_url: str, http: Any, world: Any,
                                                  worker: Any) -> None:
    a = world.actor(world.org())
    r = http.post("/api/v1/datasets/import-sample", json={"sample": "breast_cancer", "name": "bc"},
                  headers=a.headers)
    assert r.status_code == 201, r.text
    body = {"name": "bc-rl", "data": {"dataset": f"{a.org}/bc", "target": "target"},
            "process": [{"normalize": {}}], "model": {"type": "mlp", "hidden": [16]},
            "train": {"epochs": 3}, "evaluate": {"cv_folds": 0},
            "tune": {"method": "rl", "trials": 4, "space": {"model.hidden.0": {"choices": [4, 16]},
                                                             "train.lr": {"low": 0.001, "high": 0.1, "log": True}}}}
    job_id = http.post("/api/v1/jobs", json={"recipe": body}, headers=a.headers).json()["id"]
    job = wait_for(lambda: (j := http.get(f"/api/v1/jobs/{job_id}", headers=a.headers).json())["state"]
                   in ("succeeded", "failed") and j, 180, 0.5, "rl job")
    assert job["state"] == "succeeded", job["error"]
    tab = open_tab(browser, live_url)
    tab.login(a.email)
    page = tab.page
    tab.go(f"/jobs/{job_id}")
    page.wait_for_selector("#tune-chart .main-svg")
    assert page.locator("#tune-chart .scatterlayer .trace").count() == 2  # rewards and the best so far
    assert "Best so far: child" in page.locator("#tune-best").inner_text()
    tab.go(f"/models/{job['result']['model']}/versions/{job['result']['version']}")
    page.wait_for_selector("#lineage p:has-text('Tuned by')")
    text = page.locator("#lineage").inner_text()
    assert "RL (REINFORCE controller)" in text and "4 children" in text and "final preferences" in text
    wait_js(page, "[...document.querySelectorAll('#plots img')].some(i => i.alt.startsWith('Tuning') && "
                  "i.complete && i.naturalWidth > 0)")
    tab.shot("tuning-version")
    tab.clean()
