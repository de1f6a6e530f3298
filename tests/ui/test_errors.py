"""Errors from the API as readable messages in a real browser, never a stack trace, raw JSON or a
blank page: a bad upload, bad recipes in the YAML form, pages that do not exist. Screenshots:
``test-artifacts/ui/errors-*.png``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Tab, open_tab

pytestmark = pytest.mark.one_backend  # a browser run; the API tests cover both databases

BAD_RECIPES = {  # YAML -> what the message must say
    "name: x\nmodel: {type: mlp\n": "not valid YAML at line 2, column 18",  # the form sends it without the last newline
    "name: x\ndata: {dataset: DS, target: target}\nmodel: {type: transformer}\n": "'mlp'",
    "name: x\ndata: {dataset: nobody/nothing, target: t}\nmodel: {type: mlp}\n": "nobody/nothing not found",
}
EXPECTED_CONSOLE = re.compile(r"error: Failed to load resource: the server responded with a status of 4\d\d")


@pytest.fixture(scope="module")
def owner(http: Any, world: Any) -> Any:
    a = world.actor(world.org(), "owner")
    r = http.post("/api/v1/datasets/import-sample", headers=a.headers, json={"sample": "iris", "name": "flowers"})
    assert r.status_code == 201, r.text
    return a


@pytest.fixture(scope="module")
def tab(browser: Any, live_url: str, owner: Any) -> Iterator[Tab]:
    t = open_tab(browser, live_url)
    t.login(owner.email)
    yield t
    t.page.context.close()


def readable(text: str) -> None:
    assert text.strip() and "Traceback" not in text and '{"error"' not in text, text


def only_refusals_logged(tab: Tab) -> None:
    """The browser logs each 4xx answer it received; anything else is a real console error."""
    assert all(EXPECTED_CONSOLE.match(e) for e in tab.errors), tab.errors
    tab.errors.clear()


def test_bad_upload_says_what_is_wrong(tab: Tab, tmp_path: Any) -> None:
    bad = tmp_path / "scan.csv"
    bad.write_bytes(b"\x00\x01garbage\xff\xfe" * 50)
    page = tab.page
    tab.go("/datasets")
    page.fill("#upload-form input[name=name]", "junk")
    page.set_input_files("#upload-form input[name=file]", str(bad))
    page.click("#upload-form button[type=submit]")
    text = page.wait_for_selector("#upload-form .error").inner_text()
    readable(text)
    assert "UTF-8" in text and "\n" in text, text  # the message and, below it, the hint
    assert page.url.endswith("/datasets")
    tab.shot("errors-upload")
    only_refusals_logged(tab)


def test_bad_recipes_say_what_is_wrong(tab: Tab, owner: Any) -> None:
    page = tab.page
    tab.go("/jobs/new")
    page.click("[data-tab=yaml-pane]")
    for recipe, needle in BAD_RECIPES.items():
        page.fill("#recipe-yaml", recipe.replace("DS", f"{owner.org}/flowers"))
        page.click("#yaml-form button[type=submit]")
        box = page.wait_for_selector(f"#yaml-form .error:has-text(\"{needle}\")")
        readable(box.inner_text())
        assert re.search(r"/jobs/new$", page.url)
    tab.shot("errors-recipe")
    only_refusals_logged(tab)


def test_unknown_pages_are_styled_pages(tab: Tab, owner: Any) -> None:
    page = tab.page
    for path in ("/nope/nothing", "/jobs/job_missing", f"/models/{owner.org}/none/versions/3", "/deployments/none"):
        r = tab.go(path)
        assert r.status == 404 and "text/html" in r.headers["content-type"], (path, r.status)
        assert page.locator("h1").inner_text() == "Not found"
        assert page.locator(".sidenav").count() == 1  # the layout of a logged-in user
        readable(page.locator("main").inner_text())
    tab.go("/nope/nothing")
    assert "there is no page at /nope/nothing" in page.locator("main").inner_text()
    tab.shot("errors-404")
    tab.shot("errors-404", phone=True)
    # the page's own API calls still get JSON for a route that does not exist
    body = page.evaluate("fetch('/api/v1/nope', {headers: {accept: 'application/json'}}).then(r => r.json())")
    assert body["error"]["code"] == "not_found"
    only_refusals_logged(tab)


def test_unknown_routes_stay_json_for_api_clients(http: Any) -> None:
    assert http.get("/nope", headers={"accept": "application/json"}).json()["error"]["code"] == "not_found"
    assert http.get("/api/v1/nope", headers={"accept": "text/html"}).json()["error"]["code"] == "not_found"
    assert http.post("/nope", headers={"accept": "text/html"}).headers["content-type"].startswith("application/json")
    r = http.get("/nope", headers={"accept": "text/html"})
    assert r.status_code == 404 and "there is no page at /nope" in r.text and "<html" in r.text


def test_wrong_password_is_a_message_on_the_login_form(browser: Any, live_url: str, owner: Any) -> None:
    anon = open_tab(browser, live_url)
    anon.go("/login")
    anon.page.fill("input[name=email]", owner.email)
    anon.page.fill("input[name=password]", "not the password")
    anon.page.click("#login-form button[type=submit]")
    text = anon.page.wait_for_selector("#login-error .error").inner_text()
    readable(text)
    assert "password" in text.lower() and anon.page.url.endswith("/login"), text
    anon.shot("errors-login", phone=True)
    only_refusals_logged(anon)
    anon.page.context.close()
