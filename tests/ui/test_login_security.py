"""The login form in a real browser (security issue 15, findings 7 and 14f): with JavaScript off it
posts (the password never in the URL) and logs in; with JavaScript on or off, ``next`` never sends
the browser off the site after a real login. Screenshots: ``test-artifacts/ui/login-nojs*.png``."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import PASSWORD, Tab, open_tab

pytestmark = pytest.mark.one_backend  # a browser run; the API tests cover both databases

# what the browser is asked to open after logging in; each would leave the site if followed
EVIL_NEXT = ["/%09/127.0.0.1:8101/pwned", "/%0a/127.0.0.1:8101/pwned", "//127.0.0.1:8101/pwned",
             "/%5C127.0.0.1:8101/pwned", "https://127.0.0.1:8101/pwned", "javascript:alert(1)"]


@pytest.fixture(scope="module")
def person(world: Any) -> Any:
    return world.actor(world.org(), "member")


def no_js_tab(browser: Any, base: str) -> Tab:
    ctx = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    return Tab(page, base)


def test_login_without_javascript_posts_and_logs_in(browser: Any, live_url: str, person: Any) -> None:
    t = no_js_tab(browser, live_url)
    urls: list[str] = []
    t.page.on("request", lambda r: urls.append(f"{r.method} {r.url}"))
    t.go("/login?next=/datasets")
    t.page.fill("input[name=email]", person.email)
    t.page.fill("input[name=password]", "not the password")
    t.page.click("#login-form button[type=submit]")
    t.page.wait_for_selector("#login-error .error")
    assert "wrong email or password" in t.page.inner_text("#login-error")
    t.shot("login-nojs-error")
    t.page.fill("input[name=password]", PASSWORD)
    t.page.click("#login-form button[type=submit]")
    t.page.wait_for_url(f"{live_url}/datasets")
    assert any(u == f"POST {live_url}/login" for u in urls), urls
    assert not any("password" in u or PASSWORD.split()[0] in u for u in urls), urls  # never in a URL
    cookies = {c["name"]: c for c in t.page.context.cookies()}
    assert cookies["consortium_session"]["httpOnly"] is True
    t.page.context.close()


@pytest.mark.parametrize("javascript", [True, False])
def test_next_never_leaves_the_site_after_a_real_login(browser: Any, live_url: str, person: Any,
                                                       javascript: bool) -> None:
    for evil in EVIL_NEXT:
        t = open_tab(browser, live_url) if javascript else no_js_tab(browser, live_url)
        t.go(f"/login?next={evil}")
        t.page.fill("input[name=email]", person.email)
        t.page.fill("input[name=password]", PASSWORD)
        t.page.click("#login-form button[type=submit]")
        t.page.wait_for_url(f"{live_url}/", timeout=15_000)
        t.page.wait_for_load_state("load")
        assert t.page.url == f"{live_url}/", (evil, t.page.url)
        t.page.context.close()


def test_login_script_refuses_an_off_site_next_itself(browser: Any, live_url: str, person: Any) -> None:
    """Even if a page carried a bad ``next`` (the server never renders one), login.js goes to ``/``."""
    for evil in ("/\t/127.0.0.1:8101/pwned", "/\\127.0.0.1:8101/pwned", "//127.0.0.1:8101/pwned"):
        t = open_tab(browser, live_url)
        t.go("/login")
        t.page.evaluate("next => { document.getElementById('login-form').dataset.next = next; }", evil)
        t.page.fill("input[name=email]", person.email)
        t.page.fill("input[name=password]", PASSWORD)
        t.page.click("#login-form button[type=submit]")
        t.page.wait_for_url(f"{live_url}/")
        assert t.page.url == f"{live_url}/", (evil, t.page.url)
        t.clean()
        t.page.context.close()
