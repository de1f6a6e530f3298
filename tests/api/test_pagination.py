"""Every list of the API pages by cursor, and every route refuses query parameters it does not take.

``LISTS`` names each list route with how to fill its path; ``test_every_list_route_is_walked``
fails for a route answering ``Paged[...]`` (or a bare JSON list) that it does not name. Each list
is walked at limit 1, 2, 3 and 1000; the pages must concatenate to the whole list, in its order,
with no repeat and no gap, also when rows are added between two page requests. Cursors that are
malformed, altered, forged with another key, from another list or for other filters get 400; a
limit of 0, -1, 2^63 or above the maximum gets 422; another organization's caller reaches
nothing more through a cursor it was handed.
"""

from __future__ import annotations

import base64
import json
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from consortium.api.pagination import LIMIT_MAX, Paged, encode
from consortium.store.db import transaction

API = "/api/v1"
N = 4  # rows of each kind seeded for the organization that walks the lists


def ident(item: dict[str, Any]) -> Any:
    """What names an item within its list."""
    for k in ("id", "seq", "user_id", "version", "name"):
        if k in item:
            return item[k]
    raise AssertionError(f"no identifying field in {item}")


@pytest.fixture(scope="module")
def seeded(world: Any, services: Any, http: Any) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "registry"))
    from registry_models import tiny_classifier

    from consortium.data.ingest import Upload, ingest
    from consortium.governance import credentials, projects
    from consortium.governance.audit import EventDraft
    from consortium.jobs import federated_nodes, queue
    from consortium.registry import models as reg
    from consortium.store.tables.base import new_id
    from consortium.store.tables.monitoring import PredictionRecord
    from consortium.store.tables.policies import ConsentRequest
    from consortium.store.tables.protection import DatasetWithdrawal
    from consortium.store.tables.registry import Deployment

    tag = secrets.token_hex(3)
    org_a, org_b = world.org(f"pga-{tag}"), world.org(f"pgb-{tag}")
    a, b = world.actor(org_a, "owner"), world.actor(org_b, "owner")
    world.org(f"pgc-{tag}")  # a third, so that the directory has pages to walk
    svc = services
    made: dict[str, Any] = {"a": a, "b": b, "tag": tag}
    with transaction(svc.session_factory) as s:
        pa, pb = credentials.resolve_token(s, a.token), credentials.resolve_token(s, b.token)
        for i in range(N):
            credentials.create_token(s, pa, f"extra-{i}", None, 30)
            ingest(s, svc.blobs, pa, f"ds-{i}", [b"x,y\n1,0\n2,1\n"], Upload(filename="d.csv", target="y"))
            ingest(s, svc.blobs, pb, f"theirs-{i}", [b"x,y\n1,0\n2,1\n"], Upload(filename="d.csv", target="y"))
            projects.create(s, pa, f"prj-{i}-{tag}", "pagination", ["metadata"])
            federated_nodes.register(s, pa, f"node-{i}")
            reg.register_version(s, pa.org_id, f"mdl-{i}", onnx=tiny_classifier(), blobs=svc.blobs,
                                 task="classification")
        for i in range(N - 1):  # versions 2.. of ds-0 and of mdl-0
            ingest(s, svc.blobs, pa, "ds-0", [f"x,y\n{i},0\n4,1\n".encode()], Upload(filename="d.csv", target="y"))
            reg.register_version(s, pa.org_id, "mdl-0", onnx=tiny_classifier(), blobs=svc.blobs,
                                 task="classification")
        job = queue.submit(s, org_id=pa.org_id, user_id=pa.user_id, kind="train", name="pg", recipe={"name": "pg"})
        for i in range(N):
            queue.submit(s, org_id=pa.org_id, user_id=pa.user_id, kind="train", name=f"pg-{i}", recipe={})
            queue.add_event(s, job.id, "log", {"message": f"line {i}"})
        mdl = reg.find_model(s, org_a, "mdl-0")
        version_id = reg.get_version(s, mdl, 1).id
        deps = []
        for i in range(N):
            d = Deployment(id=new_id("dep"), name=f"dep-{i}", org_id=pa.org_id, model_id=mdl.id,
                           version_id=version_id, created_by=pa.user_id)
            s.add(d)
            deps.append(d)
        for i in range(N):  # consent requests a model owner sent (rows as the consent module writes them)
            s.add(ConsentRequest(id=new_id("cns"), model_id=mdl.id, requester_org_id=pa.org_id,
                                 contributor_org_id=pb.org_id, target_org_id=pb.org_id, action="deploy",
                                 note=f"page {i}", created_by=pa.user_id))
        for i in range(N):  # withdrawals of versions of ds-0 (rows as the withdrawal module writes them)
            s.add(DatasetWithdrawal(id=new_id("wd"), org_id=pa.org_id, dataset_id=new_id("ds"),
                                    dataset=f"{org_a}/ds-0", version=i + 1, mode="stop", reason=f"page {i}",
                                    created_by=pa.user_id))
        s.flush()
        sealed = b"".join(svc.keys.encrypt_stream(s, pa.org_id, [b'{"inputs": [[1]], "outputs": {}}']))
        for _ in range(N):
            s.add(PredictionRecord(id=new_id("prd"), deployment_id=deps[0].id, owner_org_id=pa.org_id,
                                   caller_org_id=pa.org_id, version_id=version_id, rows=1, payload=sealed))
        made["job"], made["project"] = job.id, f"prj-0-{tag}"
        project_id = projects.find(s, f"{org_a}~prj-0-{tag}").id
    svc.audit_now([EventDraft(action=f"pgseed.{i}", actor_org_id=a.org_id, project_id=project_id)
                   for i in range(N)])
    for i in range(N):
        r = http.post(f"{API}/invitations", json={"email": f"p{i}@{org_a}.example", "role": "viewer"},
                      headers=a.headers)
        assert r.status_code == 201, r.text
        world.actor(org_a, "member")
        for own, other in ((a, b), (b, a)):  # grants given and received
            r = http.post(f"{API}/grants", json={"resource_type": "dataset", "permission": "metadata",
                                                 "resource": f"{own.org}/{'ds' if own is a else 'theirs'}-{i}",
                                                 "grantee_org": other.org}, headers=own.headers)
            assert r.status_code == 201, r.text
    return made


# route template -> (path parameters, extra query parameters); every list route of the API
LISTS: dict[str, Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]] = {
    "/api/v1/orgs": lambda m: ("/api/v1/orgs", {}),
    "/api/v1/members": lambda m: ("/api/v1/members", {}),
    "/api/v1/invitations": lambda m: ("/api/v1/invitations", {}),
    "/api/v1/tokens": lambda m: ("/api/v1/tokens", {}),
    "/api/v1/grants": lambda m: ("/api/v1/grants", {"direction": "all"}),
    "/api/v1/audit": lambda m: ("/api/v1/audit", {"action": "pgseed."}),
    "/api/v1/jobs": lambda m: ("/api/v1/jobs", {}),
    "/api/v1/jobs/{job_id}/events": lambda m: (f"/api/v1/jobs/{m['job']}/events", {}),
    "/api/v1/projects": lambda m: ("/api/v1/projects", {}),
    "/api/v1/projects/{project}/audit": lambda m: (f"/api/v1/projects/{m['project']}/audit", {}),
    "/api/v1/models": lambda m: ("/api/v1/models", {}),
    "/api/v1/models/{owner}/{model}/versions": lambda m: (f"/api/v1/models/{m['a'].org}/mdl-0/versions", {}),
    "/api/v1/deployments": lambda m: ("/api/v1/deployments", {}),
    "/api/v1/deployments/{deployment}/predictions": lambda m: ("/api/v1/deployments/dep-0/predictions",
                                                                {"payload": "false"}),
    "/api/v1/datasets": lambda m: ("/api/v1/datasets", {"scope": "all"}),
    "/api/v1/datasets/samples": lambda m: ("/api/v1/datasets/samples", {}),
    "/api/v1/datasets/{org}/{dataset}/versions": lambda m: (f"/api/v1/datasets/{m['a'].org}/ds-0/versions", {}),
    "/api/v1/nodes": lambda m: ("/api/v1/nodes", {}),
    "/api/v1/consents": lambda m: ("/api/v1/consents", {"direction": "sent"}),
    "/api/v1/withdrawals": lambda m: ("/api/v1/withdrawals", {}),
}
# lists that grow between two page requests in the test of inserts: route -> a maker of one more row
GROWS: dict[str, Callable[[Any, dict[str, Any], int], None]] = {}


def _get(http: Any, actor: Any, path: str, **params: Any) -> Any:
    r = http.get(path, params={k: v for k, v in params.items() if v is not None}, headers=actor.headers)
    assert r.status_code == 200, (path, params, r.status_code, r.text[:300])
    body = r.json()
    assert set(body) == {"items", "next_cursor"}, body
    return body


def walk(http: Any, actor: Any, path: str, params: dict[str, Any], limit: int,
         between: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor, pages = None, 0
    while True:
        body = _get(http, actor, path, **params, limit=limit, cursor=cursor)
        assert len(body["items"]) <= limit
        out += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return out
        assert body["items"], "a page before the last is never empty"
        assert pages < 500, "the walk does not end"
        if between is not None:
            between(pages)


def test_every_list_route_is_walked(app: Any) -> None:
    from fastapi.routing import APIRoute, iter_route_contexts

    lists, bare = set(), []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if not isinstance(route, APIRoute) or "GET" not in (ctx.methods or ()) or not str(ctx.path).startswith(API):
            continue
        model = route.response_model
        if isinstance(model, type) and issubclass(model, Paged):
            lists.add(ctx.path)
        elif getattr(model, "__origin__", None) is list:
            bare.append(ctx.path)
    assert not bare, f"list routes answering a bare JSON list instead of a page: {bare}"
    assert lists == set(LISTS), (sorted(lists - set(LISTS)), sorted(set(LISTS) - lists))


@pytest.mark.parametrize("route", sorted(LISTS))
def test_pages_concatenate_to_the_whole_list(http: Any, seeded: dict[str, Any], route: str) -> None:
    a = seeded["a"]
    path, params = LISTS[route](seeded)
    before = [ident(x) for x in _get(http, a, path, **params, limit=LIMIT_MAX)["items"]]
    assert len(before) >= 3 or route.endswith("/samples"), (route, before)
    for limit in (1, 2, 3, LIMIT_MAX):
        got = [ident(x) for x in walk(http, a, path, params, limit)]
        after = [ident(x) for x in _get(http, a, path, **params, limit=LIMIT_MAX)["items"]]
        assert len(got) == len(set(got)), f"{route} limit={limit}: repeated items"
        assert set(before) <= set(got) <= set(after), f"{route} limit={limit}: a gap"
        assert got == [x for x in after if x in set(got)], f"{route} limit={limit}: out of order"
    if route not in ("/api/v1/tokens", "/api/v1/projects/{project}/audit"):  # reads add events / use tokens
        assert after == before


def _grows(route: str) -> Callable[[Callable[[Any, dict[str, Any], int], None]], Callable[..., None]]:
    def deco(fn: Callable[[Any, dict[str, Any], int], None]) -> Callable[..., None]:
        GROWS[route] = fn
        return fn
    return deco


@_grows("/api/v1/tokens")
def _more_tokens(http: Any, m: dict[str, Any], i: int) -> None:
    r = http.post(f"{API}/tokens", json={"name": f"between-{secrets.token_hex(3)}"}, headers=m["a"].headers)
    assert r.status_code == 201, r.text


@_grows("/api/v1/grants")
def _more_grants(http: Any, m: dict[str, Any], i: int) -> None:
    r = http.post(f"{API}/grants", json={"resource_type": "dataset", "permission": "compute",
                                         "resource": f"{m['a'].org}/ds-{i % N}", "grantee_org": m["b"].org},
                  headers=m["a"].headers)
    assert r.status_code in (201, 409), r.text


@_grows("/api/v1/orgs")
def _more_orgs(http: Any, m: dict[str, Any], i: int) -> None:
    m["world"].org(f"pgo-{secrets.token_hex(4)}")


@_grows("/api/v1/jobs/{job_id}/events")
def _more_events(http: Any, m: dict[str, Any], i: int) -> None:
    from consortium.jobs import queue

    with transaction(m["svc"].session_factory) as s:
        queue.add_event(s, m["job"], "log", {"message": "between"})


@_grows("/api/v1/audit")
def _more_audit(http: Any, m: dict[str, Any], i: int) -> None:
    from consortium.governance.audit import EventDraft

    m["svc"].audit_now([EventDraft(action="pgseed.between", actor_org_id=m["a"].org_id)])


@_grows("/api/v1/datasets")
def _more_datasets(http: Any, m: dict[str, Any], i: int) -> None:
    from consortium.data.ingest import Upload, ingest
    from consortium.governance import credentials

    with transaction(m["svc"].session_factory) as s:
        # names before and after the walk's position: both kinds of insert
        name = ("aa-" if i % 2 else "zz-") + secrets.token_hex(3)
        ingest(s, m["svc"].blobs, credentials.resolve_token(s, m["a"].token), name, [b"x\n1\n"],
               Upload(filename="d.csv"))


@pytest.mark.parametrize("route", sorted(GROWS))
def test_rows_added_between_pages_neither_repeat_nor_hide_others(http: Any, seeded: dict[str, Any],
                                                                 world: Any, services: Any, route: str) -> None:
    a, m = seeded["a"], {**seeded, "world": world, "svc": services}
    path, params = LISTS[route](seeded)
    before = [ident(x) for x in _get(http, a, path, **params, limit=LIMIT_MAX)["items"]]
    got = [ident(x) for x in walk(http, a, path, params, 2, between=lambda page: GROWS[route](http, m, page))]
    after = [ident(x) for x in _get(http, a, path, **params, limit=LIMIT_MAX)["items"]]
    assert len(after) > len(before), "the walk added rows"
    assert len(got) == len(set(got)), "repeated items"
    assert set(before) <= set(got) <= set(after), "an item that was there all along is missing"
    assert got == [x for x in after if x in set(got)], "out of order"


def _first_cursor(http: Any, actor: Any, path: str, **params: Any) -> str:
    cursor = _get(http, actor, path, **params, limit=1)["next_cursor"]
    assert cursor
    return str(cursor)


def _bad(r: Any, status: int, *needles: str) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    err: dict[str, Any] = r.json()["error"]
    for n in needles:
        assert n in (err["message"] + " " + err.get("hint", "")), (n, err)
    return err


def test_a_cursor_that_this_list_did_not_issue_is_refused(http: Any, seeded: dict[str, Any],
                                                          settings: Any) -> None:
    a = seeded["a"]
    get = lambda path, **q: http.get(path, params=q, headers=a.headers)  # noqa: E731
    grants = _first_cursor(http, a, f"{API}/grants", direction="given")
    for junk in ("abc", "a.b", "%%%", "." * 40, grants.split(".")[0], "x" * 2000):
        _bad(get(f"{API}/grants", direction="given", cursor=junk), 400, "cursor", "drop `cursor`")
    body, mac = grants.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["k"][-1] = "grt_0000000000000000"  # another position, the signature kept
    altered = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    _bad(get(f"{API}/grants", direction="given", cursor=f"{altered}.{mac}"), 400, "altered")
    flipped = grants[:-3] + ("A" if grants[-3] != "A" else "B") + grants[-2:]
    _bad(get(f"{API}/grants", direction="given", cursor=flipped), 400, "altered")
    forged = encode("another key" * 4, "/grants", payload["f"], tuple(payload["k"]))
    _bad(get(f"{API}/grants", direction="given", cursor=forged), 400, "not one this hub issued")
    # another list's cursor, and this list's for other filters
    _bad(get(f"{API}/tokens", cursor=grants), 400, "belongs to the list", "grants")
    _bad(get(f"{API}/grants", direction="received", cursor=grants), 400, "other parameters")
    versions = _first_cursor(http, a, f"{API}/datasets/{a.org}/ds-0/versions")
    _bad(get(f"{API}/datasets/{a.org}/ds-1/versions", cursor=versions), 400, "other parameters")
    # an empty cursor is no cursor: the first page
    assert get(f"{API}/grants", direction="given", cursor="").status_code == 200


@pytest.mark.parametrize("limit", ["0", "-1", str(2**63), str(LIMIT_MAX + 1), "ten", "1.5"])
def test_limit_out_of_bounds_is_422(http: Any, seeded: dict[str, Any], limit: str) -> None:
    for path in (f"{API}/audit", f"{API}/datasets", f"{API}/jobs/{seeded['job']}/events"):
        err = _bad(http.get(path, params={"limit": limit}, headers=seeded["a"].headers), 422, "limit")
        if limit in (str(2**63), str(LIMIT_MAX + 1)):
            assert str(LIMIT_MAX) in err["message"], err


def test_the_default_page_is_bounded(http: Any, seeded: dict[str, Any], world: Any) -> None:
    from consortium.api.pagination import LIMIT_DEFAULT

    for _ in range(LIMIT_DEFAULT + 1 - len(_get(http, seeded["a"], f"{API}/orgs", limit=LIMIT_MAX)["items"])):
        world.org(f"pgd-{secrets.token_hex(4)}")
    body = _get(http, seeded["a"], f"{API}/orgs")
    assert len(body["items"]) == LIMIT_DEFAULT and body["next_cursor"]


def test_another_organization_gets_nothing_more_through_a_cursor(http: Any, seeded: dict[str, Any]) -> None:
    a, b = seeded["a"], seeded["b"]
    for path, params in ((f"{API}/grants", {"direction": "all"}), (f"{API}/datasets", {"scope": "all"}),
                         (f"{API}/tokens", {}), (f"{API}/jobs", {}), (f"{API}/models", {}),
                         (f"{API}/audit", {"action": "pgseed."})):
        mine = {ident(x) for x in _get(http, b, path, **params, limit=LIMIT_MAX)["items"]}
        theirs = {ident(x) for x in _get(http, a, path, **params, limit=LIMIT_MAX)["items"]}
        cursor = _first_cursor(http, a, path, **params)
        r = http.get(path, params={**params, "cursor": cursor, "limit": LIMIT_MAX}, headers=b.headers)
        assert r.status_code in (200, 400), r.text
        if r.status_code == 200:
            got = {ident(x) for x in r.json()["items"]}
            assert got <= mine, (path, got - mine)
            assert not (got & (theirs - mine)), path
    # a cursor of a job or a dataset the caller cannot see: still 404, as without a cursor
    events = _first_cursor(http, a, f"{API}/jobs/{seeded['job']}/events")
    r = http.get(f"{API}/jobs/{seeded['job']}/events", params={"cursor": events}, headers=b.headers)
    assert r.status_code == 404, r.text


@pytest.mark.parametrize("method,path,query,accepted", [
    ("GET", f"{API}/grants", "directon=given", "direction"),
    ("GET", f"{API}/audit", "limit=5&colour=red&size=1", "since_seq"),
    ("GET", f"{API}/me", "verbose=1", "no query parameters"),
    ("GET", f"{API}/datasets", "rows=3", "scope"),
    ("GET", "/healthz", "x=1", "no query parameters"),
    ("GET", "/v2/health/live", "x=1", "no query parameters"),
    ("POST", f"{API}/deployments/dep-0/predict", "explain=1", "no query parameters"),
    ("POST", "/v2/models/dep-0/infer", "x=1", "no query parameters"),
])
def test_unknown_query_parameters_are_refused_naming_them(http: Any, seeded: dict[str, Any], method: str,
                                                          path: str, query: str, accepted: str) -> None:
    r = http.request(method, f"{path}?{query}", headers=seeded["a"].headers,
                     json={"inputs": [[1.0]]} if method == "POST" else None)
    assert r.status_code == 422, r.text
    unknown = sorted({q.split("=")[0] for q in query.split("&")} - {"limit"})
    text = r.text
    assert all(u in text for u in unknown) and accepted in text, text
    if not path.startswith("/v2"):
        assert r.json()["error"]["details"]["unknown"] == unknown


def test_web_pages_tolerate_extra_query_parameters(http: Any) -> None:
    assert http.get("/login?utm_source=mail", follow_redirects=False).status_code == 200


def test_a_page_of_views_reads_as_the_views_one_by_one(services: Any, seeded: dict[str, Any]) -> None:
    """The lists' batched views (a page's rows loaded in a few queries) answer what the one-by-one
    views answer."""
    from consortium.data import catalog
    from consortium.governance import credentials, grants

    with services.session_factory() as s:
        p = credentials.resolve_token(s, seeded["a"].token)
        dss = catalog.visible_listing(s, p, "all").all(s)
        assert len(dss) > N and any(ds.org_id != p.org_id for ds in dss)
        assert catalog.dataset_views(s, p, dss) == [catalog.dataset_view(s, p, ds) for ds in dss]
        gs = grants.grants_listing(s, p, "all").all(s)
        assert len(gs) > 2 and {g.owner_org_id for g in gs} != {p.org_id}
        want = [grants.grant_view(s, g, services.resource_types) for g in gs]
        assert grants.grant_page(s, p, "all", services.resource_types, None, len(gs)).items == want
        first = grants.grant_page(s, p, "all", services.resource_types, None, 2)  # the listing's own cursors
        assert first.items == want[:2] and first.after == (gs[1].created_at, gs[1].id)
        assert grants.grant_page(s, p, "all", services.resource_types, first.after, len(gs)).items == want[2:]
