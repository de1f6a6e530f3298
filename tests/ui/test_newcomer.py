"""What a new user meets first (issue 21's web UI points), in a real browser on one hub: the demo's
``bc-risk`` (trained like a job: feature names, a real example row, drift reference, test metrics,
plots), try-it errors that replace stale results, the usage and latency charts (whole minutes,
markers inside the plot, no toolbar over the title at 390 px), accessible tabs and a skip link, the
audit page (names, no overflow, hide reads, gaps explained, paging), the dataset page (formatting,
distinct counts, histograms, real links), jobs and models tables (duration, metrics, parameters,
sorting), job times, the compare view, the live loss chart, the federated form's project datasets
and min_nodes (refused in the page and by the API), the project report and its export, named
activity, member invitations and roles, paged tokens, the ``<noscript>`` notice and an offline
``/docs``. Screenshots: ``test-artifacts/ui/newcomer-*.png``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Tab, open_tab, wait_js
from support import wait_for

pytestmark = pytest.mark.one_backend
HOSPITAL, CLINIC, LAB = "st-marys-hospital", "riverside-clinic", "northgate-lab"
ORGS = (HOSPITAL, CLINIC, LAB)
PROJECT = "bc-study"


@pytest.fixture(scope="module")
def demo(services: Any, http: Any) -> dict[str, Any]:
    """The demo's organizations and its bc-risk model and deployment (``consortium.demo``'s own
    steps), each organization with a third of breast_cancer as ``bc`` granted to a project."""
    from consortium.demo.models import seed_models
    from consortium.demo.orgs import seed_orgs
    from consortium.store.db import transaction

    out: dict[str, Any] = {}
    with transaction(services.session_factory) as s:
        out["organizations"] = {o["name"]: o for o in seed_orgs(s, services.keys, {}, [])}
        seed_models(services, s, out)
    h = {org: {"authorization": f"Bearer {o['token']}"} for org, o in out["organizations"].items()}
    out["headers"] = h
    for i, org in enumerate(ORGS):
        r = http.post(
            "/api/v1/datasets/import-sample",
            headers=h[org],
            json={"sample": "breast_cancer", "name": "bc", "partitions": 3, "part": i + 1, "seed": 0},
        )
        assert r.status_code == 201, r.text
    r = http.post(
        "/api/v1/projects",
        headers=h[HOSPITAL],
        json={"name": PROJECT, "purpose": "breast cancer across sites", "terms": ["compute", "metadata"]},
    )
    assert r.status_code == 201, r.text
    for org in (CLINIC, LAB):
        assert (
            http.post(f"/api/v1/projects/{PROJECT}/invitations", headers=h[HOSPITAL], json={"org": org}).status_code
            == 200
        )
        assert http.post(f"/api/v1/projects/{PROJECT}/accept", headers=h[org]).status_code == 200
    for org in ORGS:
        r = http.post(
            "/api/v1/grants",
            headers=h[org],
            json={
                "resource_type": "dataset",
                "resource": f"{org}/bc",
                "permission": "compute",
                "grantee_project": PROJECT,
            },
        )
        assert r.status_code == 201, r.text
    return out


@pytest.fixture(scope="module")
def hospital(browser: Any, live_url: str, demo: dict[str, Any]) -> Iterator[Tab]:
    tab = open_tab(browser, live_url)
    tab.login(demo["organizations"][HOSPITAL]["email"], demo["organizations"][HOSPITAL]["password"])
    yield tab
    tab.page.context.close()


def boxes(page: Any, selector: str) -> list[dict[str, float]]:
    return page.eval_on_selector_all(
        selector,
        "ns => ns.map(n => { const r = n.getBoundingClientRect(); return {x: r.x, y: r.y, w: r.width, h: r.height}; })",
    )


def inside(inner: dict[str, float], outer: dict[str, float], slack: float = 1.5) -> bool:
    return (
        inner["x"] >= outer["x"] - slack
        and inner["y"] >= outer["y"] - slack
        and inner["x"] + inner["w"] <= outer["x"] + outer["w"] + slack
        and inner["y"] + inner["h"] <= outer["y"] + outer["h"] + slack
    )


def test_demo_deployment_try_it_charts_and_tabs(hospital: Tab, http: Any, demo: dict[str, Any]) -> None:
    page = hospital.page
    hospital.go("/deployments/bc-risk")
    first = page.wait_for_selector("#feature-fields input")
    labels = page.locator("#feature-fields label").all_inner_texts()
    assert labels[0].strip() == "mean radius" and not any(re.fullmatch(r"x\d+", t.strip()) for t in labels), labels[:3]
    assert first.input_value() == "17.99"  # a real row of the breast-cancer data, not zeros
    # tabs: roles, selection, arrow keys
    tabs = page.locator("#features-pane").locator("xpath=..").locator("[role=tab]")
    assert tabs.count() == 3 and page.get_attribute("[data-tab=features-pane]", "aria-selected") == "true"
    assert page.get_attribute("[data-tab=json-pane]", "aria-controls") == "json-pane"
    page.focus("[data-tab=features-pane]")
    page.keyboard.press("ArrowRight")
    assert page.get_attribute("[data-tab=json-pane]", "aria-selected") == "true"
    assert page.locator("#json-pane").is_visible() and page.locator("#features-pane").is_hidden()
    assert page.evaluate("document.activeElement.dataset.tab") == "json-pane"
    # a good prediction, then a bad shape: the error replaces the stale prediction
    page.click("#predict-json")
    page.wait_for_selector("#prediction-result")
    page.fill("#json-inputs", "[[1, 2]]")
    page.click("#predict-json")
    page.wait_for_selector("#json-pane .error")
    assert page.locator("#prediction-result").count() == 0
    hospital.errors[:] = [e for e in hospital.errors if "status of 400" not in e]  # the refused prediction itself
    page.click("[data-tab=features-pane]")
    page.click("#features-pane button[type=submit]")
    page.wait_for_selector("#prediction-result")
    assert page.locator("#json-pane .error").count() == 0  # the other tab's old error went too
    assert "no reference" not in page.wait_for_selector("#drift-status").inner_text()  # the version has statistics
    for _ in range(3):  # calls in the current minute for the charts
        assert (
            http.post(
                "/api/v1/deployments/bc-risk/predict",
                headers=demo["headers"][HOSPITAL],
                json={"inputs": [[17.99] * 30]},
            ).status_code
            == 200
        )
    wait_for(
        lambda: http.get("/api/v1/deployments/bc-risk/usage?minutes=60", headers=demo["headers"][HOSPITAL]).json()[
            "per_minute"
        ],
        20,
        what="the calls in the usage counts",
    )
    page.reload()
    page.wait_for_selector("#usage-chart .bars path")
    page.wait_for_selector("#latency-chart .scatterlayer .points path")
    for chart, marks in (("usage-chart", ".bars path"), ("latency-chart", ".scatterlayer .points path")):
        area = boxes(page, f"#{chart} .nsewdrag")[0]
        drawn = [b for b in boxes(page, f"#{chart} {marks}") if b["w"] > 0]
        assert drawn and all(inside(b, area) for b in drawn), (chart, area, drawn)
    hospital.shot("newcomer-deployment")
    page.set_viewport_size({"width": 390, "height": 800})
    page.reload()
    page.wait_for_selector("#usage-chart .main-svg")
    page.hover("#usage-chart .nsewdrag")
    for chart in ("usage-chart", "latency-chart"):
        title = boxes(page, f"#{chart} .gtitle")[0]
        bar = [b for b in boxes(page, f"#{chart} .modebar-btn") if b["w"] > 0]
        assert not any(
            b["x"] < title["x"] + title["w"]
            and title["x"] < b["x"] + b["w"]
            and b["y"] < title["y"] + title["h"]
            and title["y"] < b["y"] + b["h"]
            for b in bar
        ), (chart, title, bar)
    hospital.shot("newcomer-deployment-390")
    page.set_viewport_size({"width": 1280, "height": 800})
    # the version: test metrics and plots
    hospital.go(f"/models/{HOSPITAL}/bc-risk/versions/1")
    page.wait_for_selector("#metrics table")
    metrics = page.locator("#metrics").inner_text()
    assert "accuracy" in metrics and "roc auc" in metrics and "train accuracy" not in metrics
    wait_js(
        page,
        "[...document.querySelectorAll('#plots img')].length >= 3 && "
        "[...document.querySelectorAll('#plots img')].every(i => i.complete && i.naturalWidth > 0)",
    )
    hospital.clean()


def test_dataset_page(hospital: Tab) -> None:
    page = hospital.page
    hospital.go(f"/datasets/{HOSPITAL}/bc")
    page.wait_for_selector("#schema table")
    heads = page.locator("#schema thead th").all_inner_texts()
    rows = [r.split("\t") for r in page.locator("#schema tbody tr").all_inner_texts()]
    distinct = [r[heads.index("Distinct")] for r in rows]
    assert all(re.fullmatch(r"[\d,]+", d) for d in distinct), distinct
    assert page.locator("#schema tbody tr").first.locator(".hist > span").count() > 3  # a histogram per column
    assert page.locator("#schema .hist").count() == len(rows)
    for col in ("Min", "Max", "Mean"):
        for r in rows:
            v = r[heads.index(col)]
            assert re.fullmatch(r"-?\d{1,3}(,\d{3})*(\.\d{1,4})?", v), (col, v)  # grouped, at most 4 decimals
    assert any("," in r[heads.index("Max")] for r in rows)  # e.g. worst area 2,501
    link = page.locator("#versions a[data-version]").first
    assert link.get_attribute("href") == "?version=1"
    link.click()
    assert page.url.endswith(f"/datasets/{HOSPITAL}/bc?version=1")
    page.reload()
    page.wait_for_selector("#schema table")
    assert page.locator("#version-title").inner_text() == "Version 1"
    hospital.shot("newcomer-dataset")
    page.click("#upload-version")
    page.wait_for_url(re.compile(r".*/datasets\?dataset=bc&target=target$"))
    assert page.input_value("#upload-form input[name=name]") == "bc"
    assert page.input_value("#upload-form input[name=target]") == "target"
    # an upload refused: the error alone, no full progress bar or "Sent; checking" beside it
    # a file the hub refuses: a header but no rows
    page.set_input_files(
        "#upload-form input[name=file]", files=[{"name": "empty.csv", "mimeType": "text/csv", "buffer": b"a,target\n"}]
    )
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#upload-form .error")
    assert page.locator("#upload-progress").is_hidden()
    assert "Sent" not in page.locator("#upload-status").inner_text()
    hospital.errors[:] = [e for e in hospital.errors if "status of 422" not in e]  # the refused upload itself
    hospital.clean()


def test_jobs_live_chart_times_sorting_and_compare(hospital: Tab, worker: Any, http: Any, demo: dict[str, Any]) -> None:
    page = hospital.page
    recipe = {
        "name": "bc-b",
        "data": {"dataset": f"{HOSPITAL}/bc", "target": "target", "seed": 0},
        "process": [{"normalize": {"method": "standard"}}],
        "model": {"type": "logistic"},
        "train": {"lr": 0.1, "epochs": 5},
        "register": {"model": "bc-b"},
    }
    r = http.post("/api/v1/jobs", headers=demo["headers"][HOSPITAL], json={"recipe": recipe})
    assert r.status_code == 201, r.text
    hospital.go("/jobs/new")
    page.wait_for_selector(f"#dataset option[value='{HOSPITAL}/bc']", state="attached")
    page.select_option("#dataset", f"{HOSPITAL}/bc")
    page.select_option("#model-type", "logistic")
    page.fill("#job-form input[name=epochs]", "30")
    page.fill("#job-form input[name=name]", "bc-a")
    page.fill("#job-form input[name=register]", "bc-b")
    page.click("#job-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/jobs/job_\w+$"))
    page.wait_for_selector("#job-done", timeout=120_000)
    wait_js(
        page, "document.querySelectorAll('#loss-chart .scatterlayer .trace:first-child .points path').length === 30"
    )
    times = page.locator("#job-times").inner_text()
    assert "started" in times and "finished" in times and "took" in times, times
    # the jobs table
    job_b = r.json()["id"]
    wait_for(
        lambda: http.get(f"/api/v1/jobs/{job_b}", headers=demo["headers"][HOSPITAL]).json()["state"] == "succeeded",
        120,
        what="job bc-b",
    )
    hospital.go("/jobs")
    page.wait_for_selector("#jobs table")
    heads = page.locator("#jobs thead th").all_inner_texts()
    for h in ("Duration", "Metrics", "Parameters"):
        assert any(h in x for x in heads), heads
    text = page.locator("#jobs").inner_text()
    assert "accuracy" in text and "lr 0.1" in text and "epochs 30" in text, text
    page.click("#jobs th button:has-text('Job')")
    names = [r.split("\t")[1] for r in page.locator("#jobs tbody tr").all_inner_texts()]
    assert (
        names == sorted(names)
        and page.get_attribute("#jobs th:has(button:has-text('Job'))", "aria-sort") == "ascending"
    )
    page.click("#jobs th button:has-text('Job')")
    assert [r.split("\t")[1] for r in page.locator("#jobs tbody tr").all_inner_texts()] == sorted(names, reverse=True)
    page.check("#jobs tbody tr >> nth=0 >> input.pick")
    assert page.locator("#compare-runs").is_disabled()  # one run is not a comparison
    page.check("#jobs tbody tr >> nth=1 >> input.pick")
    page.click("#compare-runs")
    page.wait_for_url(re.compile(r".*/compare\?jobs=job_\w+,job_\w+$"))
    page.wait_for_selector("#cmp-params table")
    assert page.locator("#cmp-metrics thead th").count() == 3  # the row names and the two runs
    lr = page.locator("#cmp-params tbody tr:has-text('lr')")
    assert "differs" in lr.inner_text()
    wait_js(
        page,
        "document.querySelectorAll('#cmp-plots img').length >= 4 && "
        "[...document.querySelectorAll('#cmp-plots img')].every(i => i.complete && i.naturalWidth > 0)",
    )
    hospital.shot("newcomer-compare")
    # the model's versions: metrics, parameters, sortable, compare
    hospital.go(f"/models/{HOSPITAL}/bc-b")
    page.wait_for_selector("#versions table")
    assert "Training time" in page.locator("#versions thead").inner_text()
    page.check("#versions tbody tr >> nth=0 >> input.pick")
    page.check("#versions tbody tr >> nth=1 >> input.pick")
    page.click("#compare-versions")
    page.wait_for_selector("#cmp-metrics table")
    assert (
        "v1" in page.locator("#cmp-metrics thead").inner_text()
        and "v2" in page.locator("#cmp-metrics thead").inner_text()
    )
    hospital.go("/models")
    page.wait_for_selector("#models table")
    assert "Latest metrics" in page.locator("#models thead").inner_text()
    assert hospital.go("/compare?jobs=job_x").status == 422  # one run: the error page says how to compare
    hospital.errors.clear()
    hospital.clean()


def test_federated_form_offers_the_project_datasets(hospital: Tab, http: Any, demo: dict[str, Any]) -> None:
    page = hospital.page
    hospital.go(f"/jobs/new?project={PROJECT}")
    wait_js(page, f"document.querySelector('#project').value === '{PROJECT}'")
    page.wait_for_selector(f"#dataset option[value='{HOSPITAL}/bc']", state="attached")
    page.select_option("#dataset", f"{HOSPITAL}/bc")
    page.check("input[name=where][value=federated]")
    for org in ORGS:  # every compatible dataset granted to the project is offered and ticked
        page.wait_for_selector(f"#fed-datasets input[value='{org}/bc']")
        assert page.locator(f"#fed-datasets input[value='{org}/bc']").is_checked(), org
    assert page.input_value("#job-form input[name=min_nodes]") == "3"
    assert "min_nodes: 3" in (page.locator("#recipe-preview").text_content() or "")
    page.uncheck(f"#fed-datasets input[value='{CLINIC}/bc']")
    page.uncheck(f"#fed-datasets input[value='{LAB}/bc']")
    page.fill("#job-form input[name=min_nodes]", "2")
    page.click("#job-form button[type=submit]")
    error = page.wait_for_selector("#job-form .error").inner_text()
    assert "1 dataset ticked" in error and "at least 2" in error, error
    assert "/jobs/new" in page.url
    hospital.shot("newcomer-federated-form")
    # the API refuses it too
    recipe = {
        "name": "one",
        "data": {"target": "target"},
        "model": {"type": "logistic"},
        "train": {"epochs": 1},
        "federated": {"datasets": [f"{HOSPITAL}/bc"], "rounds": 1, "min_nodes": 2},
    }
    r = http.post("/api/v1/jobs", headers=demo["headers"][HOSPITAL], json={"recipe": recipe, "project": PROJECT})
    assert r.status_code == 422 and "min_nodes" in r.json()["error"]["message"], r.text
    hospital.clean()


def test_audit_page(hospital: Tab, http: Any, demo: dict[str, Any]) -> None:
    h = demo["headers"]
    for _ in range(4):  # the clinic's own activity: in the hub's chain, not shown to the hospital
        http.get("/api/v1/datasets", headers=h[CLINIC])

    def clinic_reads() -> int:  # audit events are written in the background: these are in the chain
        out = http.get("/api/v1/audit?action=list_datasets&limit=50", headers=h[CLINIC]).json()
        return len(out["items"] if isinstance(out, dict) else out)

    wait_for(lambda: clinic_reads() >= 4, 20, what="the clinic's events in the chain")
    for _ in range(60):  # reads of the hospital's own: enough events for a second page
        http.get(f"/api/v1/datasets/{HOSPITAL}/bc", headers=h[HOSPITAL])
    page = hospital.page
    hospital.go("/audit")
    page.wait_for_selector("#events table")
    assert page.locator("#hide-reads").is_checked()
    actions = page.locator("#events tbody tr:not(.gap) td:nth-child(4)").all_inner_texts()
    assert actions and not any(a.startswith(("ui.", "get_", "list_")) for a in actions), actions
    gaps = page.locator("#events tr.gap").all_inner_texts()
    assert any("other organizations" in g for g in gaps) and any("reads hidden" in g for g in gaps), gaps
    assert "gap means events of other organizations" in page.locator("#audit-note").inner_text()
    for td, most in (
        ("td:nth-child(1)", 1),
        ("td:nth-child(2)", 1),
        ("td:nth-child(3)", 2),
    ):  # #, When: one line; Who: two
        heights = page.eval_on_selector_all(
            f"#events tbody tr:not(.gap) {td}",
            "ns => ns.map(n => { const r = document.createRange(); "
            "r.selectNodeContents(n); return r.getBoundingClientRect().height; })",
        )
        assert max(heights) <= 22 * most, (td, heights)  # a 14 px font at line-height 1.5 is 21 px a line
    overflow = page.eval_on_selector_all(
        "#events td.details", "ns => ns.filter(n => n.scrollWidth > n.clientWidth + 1).length"
    )
    assert overflow == 0
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    hospital.shot("newcomer-audit")
    page.uncheck("#hide-reads")
    page.select_option("#audit-filter select[name=limit]", "50")
    page.click("#audit-filter button[type=submit]")
    wait_js(page, "document.querySelectorAll('#events tbody tr:not(.gap)').length === 50")
    seqs = [int(x) for x in page.locator("#events tbody tr:not(.gap) td:nth-child(1)").all_inner_texts()]
    page.click("#older")
    wait_js(page, "document.querySelectorAll('#events tbody tr:not(.gap)').length > 50")
    more = [int(x) for x in page.locator("#events tbody tr:not(.gap) td:nth-child(1)").all_inner_texts()]
    assert more[:50] == seqs and min(more[50:]) < min(seqs) and len(set(more)) == len(more)
    page.fill("#audit-filter input[name=action]", "demo.deploy")  # resources by name, the id on hover
    page.click("#audit-filter button[type=submit]")
    dep = page.wait_for_selector("#events tbody tr:has-text('demo.deploy') .resource")
    assert "bc-risk" in dep.inner_text() and (dep.get_attribute("title") or "").startswith("dep_")
    hospital.clean()


def test_project_report_and_activity(hospital: Tab) -> None:
    page = hospital.page
    hospital.go(f"/projects/{PROJECT}")
    page.wait_for_selector("#report h3")
    with page.expect_download() as dl:
        page.click("#export-json")
    report = json.loads(open(dl.value.path()).read())
    assert report["project"] == PROJECT and {c["organization"] for c in report["contributions"]} == set(ORGS)
    with page.expect_download() as dl:
        page.click("#export-csv")
    csv = open(dl.value.path()).read()
    assert csv.startswith("section,key,value") and f"{CLINIC}/bc" in csv
    page.wait_for_selector("#activity table")
    heads = page.locator("#activity thead th").all_inner_texts()
    rows = [r.split("\t") for r in page.locator("#activity tbody tr").all_inner_texts()]
    who = {r[heads.index("Who")] for r in rows}
    assert who <= set(ORGS) and len(who) >= 2, who  # names, not ids
    acts = [r[heads.index("Action")] for r in rows]
    assert all("_" not in a and a[0].isupper() for a in acts), acts
    resources = " ".join(r[heads.index("Resource")] for r in rows)
    assert not re.search(r"\b(prj|org|ds|dep)_\w+", resources), resources
    hospital.shot("newcomer-project")
    hospital.clean()


def test_organization_members_invitations_and_tokens(
    hospital: Tab, http: Any, world: Any, demo: dict[str, Any]
) -> None:
    viewer = world.actor(HOSPITAL, "viewer")
    for i in range(45):
        assert (
            http.post(
                "/api/v1/tokens", headers=demo["headers"][HOSPITAL], json={"name": f"t{i:02d}", "days": 1}
            ).status_code
            == 201
        )
    page = hospital.page
    hospital.go("/")
    sel = page.wait_for_selector(f"select[data-user='{viewer.user_id}']")
    assert sel.input_value() == "viewer"
    page.select_option(f"select[data-user='{viewer.user_id}']", "member")
    page.wait_for_selector("#flash:has-text('is now member')")
    members = http.get("/api/v1/members", headers=demo["headers"][HOSPITAL]).json()
    members = members["items"] if isinstance(members, dict) else members
    assert next(m for m in members if m["user_id"] == viewer.user_id)["role"] == "member"
    page.fill("#invite-form input[name=email]", "new.analyst@st-marys.example")
    page.select_option("#invite-form select[name=role]", "viewer")
    page.click("#invite-form button[type=submit]")
    assert page.wait_for_selector("#invitation-token code").inner_text().strip()
    page.wait_for_selector("#invitations td:has-text('new.analyst@st-marys.example')")
    page.wait_for_selector("#tokens-pager")
    assert page.locator("#tokens tbody tr").count() == 20
    first = page.locator("#tokens tbody tr").first.inner_text()
    page.click("#tokens-next")
    wait_js(page, "/page 2 /.test(document.querySelector('#tokens-page').textContent)")
    assert page.locator("#tokens tbody tr").first.inner_text() != first
    assert page.evaluate("document.documentElement.scrollHeight") < 6000
    hospital.shot("newcomer-overview")
    hospital.clean()


def test_noscript_skip_link_and_offline_docs(browser: Any, live_url: str, hospital: Tab, demo: dict[str, Any]) -> None:
    page = hospital.page
    hospital.go("/datasets")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "page"
    assert page.locator("#noscript").count() == 0  # JavaScript on: no notice
    # /docs with every other site unreachable: Swagger UI from the hub itself; its policy allows no CDN
    ctx = page.context
    ctx.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), lambda route: route.abort())
    r = hospital.go("/docs")
    assert "jsdelivr" not in r.headers["content-security-policy"]
    assert page.wait_for_selector(".swagger-ui .info .title").inner_text().startswith("Consortium")
    page.wait_for_selector(".swagger-ui .opblock")  # the operations render (the 3.0 rendering of the spec)
    assert page.locator(".swagger-ui .errors-wrapper").count() == 0
    ctx.unroute(re.compile(r"^https?://(?!127\.0\.0\.1)"))
    hospital.errors.clear()  # Swagger UI's own console chatter is not ours
    # JavaScript off: the login form still works, and a page says it needs JavaScript
    off = browser.new_context(java_script_enabled=False)
    p = off.new_page()
    p.goto(f"{live_url}/login")
    p.fill("input[name=email]", demo["organizations"][HOSPITAL]["email"])
    p.fill("input[name=password]", demo["organizations"][HOSPITAL]["password"])
    p.click("#login-form button[type=submit]")
    p.wait_for_url(f"{live_url}/")
    p.goto(f"{live_url}/datasets")
    assert "JavaScript, which is off" in p.locator("#noscript").inner_text()
    off.close()
