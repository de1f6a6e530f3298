"""Dataset pages: the list with the streaming upload (progress bar), and one dataset's versions,
schema, statistics, preview and grants."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from consortium.api.access import rule
from consortium.api.deps import Caller
from consortium.api.routes.datasets import Readable
from consortium.ui.render import page
from consortium.ui.route import PageRoute

router = APIRouter(route_class=PageRoute)


@router.get("/datasets", name="ui.datasets")
@rule("page")
def datasets_page(request: Request, p: Caller) -> HTMLResponse:
    return page(request, "datasets.html", p, active="datasets", title="Datasets")


@router.get("/datasets/{org}/{dataset}", name="ui.dataset")
@rule("page")
def dataset_page(request: Request, ds: Readable, p: Caller) -> HTMLResponse:
    return page(request, "dataset.html", p, active="datasets", title=f"{request.path_params['org']}/{ds.name}",
                owner=request.path_params["org"], name=ds.name, own=ds.org_id == p.org_id)
