"""The web user interface: server-rendered pages (Jinja2) plus a little JavaScript of our own.

Pages are served by the hub outside ``/api/v1``. A page resolves what it shows through the same
services and dependencies as the API (so another organization's resource is the 404 page), and
its JavaScript reads and changes data through the public API with the session cookie, sending
the page's CSRF token in the ``X-CSRF-Token`` header. Charts use the plotly.js bundle shipped in
the installed ``plotly`` Python package, served from there (never copied into the repository).
Every page view is audited as ``ui.<page>`` (see ``consortium.ui.route``).

>>> from fastapi import FastAPI
>>> from consortium.api.access import route_table
>>> from consortium.ui import ui_router
>>> app = FastAPI()
>>> app.include_router(ui_router())
>>> sorted(r.rule.kind for r in route_table(app) if r.path in ("/login", "/datasets") and "GET" in r.methods)
['page', 'page_public']
"""

from consortium.ui.router import ui_router

__all__ = ["ui_router"]
