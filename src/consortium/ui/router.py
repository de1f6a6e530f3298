"""The UI router: every page and static asset, each with its access rule (kinds ``page``/``page_public``)."""

from __future__ import annotations

from fastapi import APIRouter

from consortium.ui.route import PageRoute


def ui_router() -> APIRouter:
    """All UI routes (outside ``/api/v1``); included last by ``consortium.web.create_app``."""
    from consortium.ui.pages import assets, auth, data, governance, registry, training

    router = APIRouter(route_class=PageRoute, include_in_schema=False)
    for module in (assets, auth, governance, data, training, registry):
        router.include_router(module.router)
    return router
