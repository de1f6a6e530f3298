"""The OpenAPI the hub publishes at /openapi.json, made to describe what it really answers.

FastAPI documents each route's success answer and, for a route with parameters, a 422 body that
the hub never sends. ``describe`` completes it:
- the ``bearer`` security scheme, required by every route but the probes and the routes whose body
  carries the credential (login, accepting an invitation), so /docs has *Authorize*;
- every error status a route can answer, with the real body (``ErrorOut``, from
  ``consortium.api.errors``; ``OipErrorOut`` on the /v2 inference protocol routes);
- operation ids that are the route names, i.e. the audit actions (prefixed by the routes' module
  when two routes share a name), and component names without module paths;
- the name rules and choices that the services check (``FIELDS``), taken from the services' own
  regular expressions and tables, so that a request the schema allows is one the hub can accept
  (the services still check, with messages that say how to fix a name).

``tests/security/test_schemathesis.py`` fuzzes the live hub against this schema.

>>> from consortium.config import Settings
>>> from consortium.web import create_app
>>> spec = create_app(Settings(home="/tmp/consortium-doc")).openapi()
>>> spec["components"]["securitySchemes"]["bearer"]["scheme"]
'bearer'
>>> op = spec["paths"]["/api/v1/audit"]["get"]
>>> op["operationId"], op["security"], op["responses"]["404"]["content"]["application/json"]["schema"]
('list_events', [{'bearer': []}], {'$ref': '#/components/schemas/ErrorOut'})
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from consortium.api.access import RouteInfo, route_table
from consortium.api.responses import ErrorOut, OipErrorOut
from consortium.governance.grants import ResourceTypes
from consortium.store.db import INT64_MAX

REF = "#/components/schemas/"
SECURITY_SCHEMES = {"bearer": {"type": "http", "scheme": "bearer",
                               "description": "an API token (`consortium tokens create`, csm_tok_...) or "
                                              "the session token that POST /api/v1/auth/login returns"}}
ERRORS: dict[int, str] = {
    400: "Bad request: malformed for the protocol, or a number out of range",
    401: "Unauthenticated: no credential, or a wrong, expired or revoked one",
    403: "Permission denied: your role is too low for this action",
    404: "Not found: unknown, or not visible to you (the hub does not say which)",
    409: "Conflict: the change clashes with the current state",
    413: "Payload too large: the body is over the hub's limit",
    422: "Invalid input: the message names each field that is wrong and why",
    429: "Quota exceeded: retry after Retry-After seconds",
    503: "Unavailable: a worker, node or engine is not there right now; try again later",
}
HEADERS = {401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
           429: {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}}
FASTAPI_ONLY = ("HTTPValidationError", "ValidationError")  # FastAPI's 422 body, never sent by the hub


# A resource a path names: NAME (an id is one) or ORG~NAME, as ``governance.names.split_qualified`` reads it
# (after str.strip(), whose whitespace also has \x1c-\x1f and \x85, unlike a JSON Schema's \s).
_SOLID = r"[^~/\s\x1c-\x1f\x85]"
REFERENCE = rf"^[^~/]*{_SOLID}[^~/]*(~[^~/]*{_SOLID}[^~/]*)?$"
PATH_PARAMETERS = {"project": {"pattern": REFERENCE}, "deployment": {"pattern": REFERENCE}}


def fields(resource_types: ResourceTypes) -> dict[tuple[str, str], dict[str, Any]]:
    """(component, property) -> the JSON Schema keywords of the rule its service checks."""
    from consortium.data.samples import SAMPLES
    from consortium.governance.identity import EMAIL_RE, NAME_RE
    from consortium.governance.roles import Permission
    from consortium.governance.secrets import MIN_PASSWORD
    from consortium.registry.models import ALIAS_RE, MODEL_NAME_RE
    from consortium.serving.hub.deployments import DEPLOYMENT_NAME_RE

    name = {"pattern": NAME_RE.pattern}  # organizations and projects
    model_ref = rf"^({_inner(NAME_RE)}/)?{_inner(MODEL_NAME_RE)}(:[0-9]{{1,9}}|@{_inner(ALIAS_RE)})?$"
    permissions = [p.value for p in Permission]
    return {("OrgCreate", "name"): name, ("ProjectCreate", "name"): name, ("ProjectInvite", "org"): name,
            ("OrgSwitch", "org"): name, ("InvitationCreate", "email"): {"pattern": EMAIL_RE.pattern},
            ("ProjectCreate", "terms"): {"items": {"type": "string", "enum": permissions}, "minItems": 1},
            ("InvitationAccept", "password"): {"minLength": MIN_PASSWORD},
            ("GrantCreate", "permission"): {"enum": permissions},
            ("GrantCreate", "resource_type"): {"enum": resource_types.names()},
            ("DeploymentCreate", "name"): {"pattern": DEPLOYMENT_NAME_RE.pattern},
            ("DeploymentCreate", "model"): {"pattern": model_ref},
            ("SampleImport", "sample"): {"enum": sorted(SAMPLES)}}


def install(app: FastAPI, resource_types: ResourceTypes) -> None:
    """Make ``app.openapi()`` return the described schema (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description,
                               routes=app.routes)
            app.openapi_schema = describe(spec, route_table(app), resource_types)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI documents replacing it so


def describe(spec: dict[str, Any], routes: Iterable[RouteInfo], resource_types: ResourceTypes) -> dict[str, Any]:
    """``spec`` (FastAPI's) completed with security, error answers, operation ids and short names."""
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for model in (ErrorOut, OipErrorOut):
        s = model.model_json_schema(ref_template=REF + "{model}")
        schemas.update(s.pop("$defs", {}))
        schemas[model.__name__] = s
    components["securitySchemes"] = SECURITY_SCHEMES
    by_op = {(m, r.path): r for r in routes for m in r.methods}
    ops = [(path, method, op, by_op.get((method.upper(), path)))
           for path, item in spec.get("paths", {}).items() for method, op in item.items()]
    shared = Counter(r.name for *_, r in ops if r is not None)
    for path, _, op, r in ops:
        kind = r.rule.kind if r is not None and r.rule is not None else "self"
        _secure(op, kind)
        if kind != "public":
            _errors(op, OipErrorOut if path.startswith("/v2") else ErrorOut)
        if r is not None:
            op["operationId"] = r.name if shared[r.name] == 1 else f"{_module(r)}_{r.name}"
        for param in op.get("parameters", ()):
            if param.get("in") == "path" and param["name"] in PATH_PARAMETERS:
                param["schema"].update(PATH_PARAMETERS[param["name"]])
    spec = _short_names(_drop_unused(spec, FASTAPI_ONLY))
    for (component, prop), rule in fields(resource_types).items():  # a KeyError here: a model or field was renamed
        spec["components"]["schemas"][component]["properties"][prop].update(rule)
    bounded: dict[str, Any] = _integer_bounds(spec)
    return bounded


def _integer_bounds(node: Any) -> Any:
    """Integer bounds back to integers: FastAPI's OpenAPI model stores them as floats, and a float
    cannot hold 2**63 - 1 (it would publish 2**63, one past what a database column holds)."""
    if isinstance(node, dict):
        for key in ("minimum", "maximum"):
            v = node.get(key)
            if isinstance(v, float) and v.is_integer():
                node[key] = INT64_MAX if v >= INT64_MAX else -INT64_MAX - 1 if v <= -INT64_MAX - 1 else int(v)
        for v in node.values():
            _integer_bounds(v)
    elif isinstance(node, list):
        for v in node:
            _integer_bounds(v)
    return node


def _inner(regex: re.Pattern[str]) -> str:
    """A whole-string regex (``^...$``, alternatives too) as a group to build a larger one with."""
    return "(?:" + regex.pattern.strip("^$").replace("$|^", "|") + ")"


def _secure(op: dict[str, Any], kind: str) -> None:
    if kind == "metrics":  # open from the allowed addresses, else an operator's token
        op["security"] = [{}, {"bearer": []}]
    elif kind not in ("public", "credential"):
        op["security"] = [{"bearer": []}]


def _errors(op: dict[str, Any], model: type) -> None:
    responses = op.setdefault("responses", {})
    for status, description in ERRORS.items():
        answer: dict[str, Any] = {"description": description,
                                  "content": {"application/json": {"schema": {"$ref": REF + model.__name__}}}}
        if status in HEADERS:
            answer["headers"] = HEADERS[status]
        responses[str(status)] = answer


def _module(r: RouteInfo) -> str:
    return (getattr(r.endpoint, "__module__", "") or "api").rsplit(".", 1)[-1]


def _refs(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def _drop_unused(spec: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """Remove the component schemas ``names`` once nothing refers to them."""
    schemas = spec["components"]["schemas"]
    for name in names:
        if name in schemas:
            kept = schemas.pop(name)
            if REF + name in set(_refs(spec)):
                schemas[name] = kept
    return spec


def _short_names(spec: dict[str, Any]) -> dict[str, Any]:
    """``consortium__api__routes__audit__EventOut`` (FastAPI's name for one of two models that share
    a class name) becomes ``AuditEventOut``, a page of a list (``Paged_TokenPublic_``,
    ``consortium.api.pagination.Paged``) ``TokenPublicPage``, and every reference follows."""
    schemas = spec["components"]["schemas"]
    renamed = {}
    for name in list(schemas):
        new = ""
        if name.startswith("Paged_") and name.endswith("_"):
            new = name[len("Paged_"):-1] + "Page"
        elif "__" in name:
            *_, module, cls = name.split("__")
            new = module.title().replace("_", "") + cls
        if new:
            renamed[REF + name] = REF + new
            schemas[new] = schemas.pop(name)

    def follow(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: renamed.get(v, v) if k == "$ref" and isinstance(v, str) else follow(v)
                    for k, v in node.items()}
        if isinstance(node, list):
            return [follow(v) for v in node]
        return node

    return follow(spec) if renamed else spec
