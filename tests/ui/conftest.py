"""A real hub (uvicorn on loopback) with a real job worker, and headless Chromium driven by Playwright.

Screenshots go to ``test-artifacts/ui/`` (gitignored). Every page a test opens fails the test on a
browser console error or an uncaught page error. The tests skip, saying why, when Debian's
``/usr/bin/chromium`` is missing (``apt-get install chromium``; the Makefile's test target does it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
PASSWORD = "correct horse battery"  # what ``World.actor`` gives every user
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 800}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("UI tests need Debian's chromium at /usr/bin/chromium: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield b
        b.close()




@dataclass
class Tab:
    """One browser context and page, with the console errors it collected."""

    page: Any
    base: str
    errors: list[str] = field(default_factory=list)

    def go(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def shot(self, name: str, phone: bool = False) -> Path:
        path = ARTIFACTS / f"{name}{'-375' if phone else ''}.png"
        if phone:
            self.page.set_viewport_size(PHONE)
            self.page.wait_for_timeout(300)  # charts follow the window's resize
        self.page.wait_for_load_state("networkidle")
        self.page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar stays on top of a full-page shot
        width = self.page.evaluate("document.documentElement.scrollWidth")
        limit = (PHONE if phone else DESKTOP)["width"]
        assert width <= limit, f"{self.page.url} is {width}px wide at a {limit}px viewport (sideways scrolling)"
        self.page.screenshot(path=str(path), full_page=True)
        if phone:
            self.page.set_viewport_size(DESKTOP)
        return path

    def clean(self) -> None:
        assert not self.errors, f"browser console errors: {self.errors}"

    def login(self, email: str, password: str = PASSWORD) -> None:
        self.go("/login")
        self.page.fill("input[name=email]", email)
        self.page.fill("input[name=password]", password)
        self.page.click("#login-form button[type=submit]")
        self.page.wait_for_url(self.base + "/")


def wait_js(page: Any, expression: str, timeout_s: float = 15.0) -> Any:
    """Poll a JavaScript expression from the test until it is truthy. ``page.wait_for_function``
    evaluates its string inside the page, which the pages' Content Security Policy refuses (no
    'unsafe-eval'); ``page.evaluate`` goes through the DevTools protocol instead."""
    from playwright.sync_api import Error
    from support import wait_for

    def check() -> Any:
        try:
            return page.evaluate(expression)
        except Error as e:  # the page is navigating (a form posted): ask again on the next page
            if "context was destroyed" in str(e) or "navigat" in str(e):
                return False
            raise

    return wait_for(check, timeout_s, what=expression)


def open_tab(browser: Any, base: str) -> Tab:
    ctx = browser.new_context(viewport=DESKTOP)
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    tab = Tab(page, base)
    page.on("console", lambda m: tab.errors.append(f"{m.type}: {m.text} @ {page.url}") if m.type == "error" else None)
    page.on("pageerror", lambda e: tab.errors.append(f"page error: {e} @ {page.url}"))
    return tab
