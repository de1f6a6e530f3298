"""The Python SDK: ``consortium.Client`` talks to a hub's public API and raises the project's errors.

>>> import consortium
>>> c = consortium.Client("http://127.0.0.1:8000", token="csm_tok_...")   # doctest: +SKIP
>>> c.me()["org"]                                                         # doctest: +SKIP
'st-marys'
>>> c.grants.create("dataset", "st-marys/bc", "compute", grantee_org="riverside")  # doctest: +SKIP

Resource groups hang off the client: ``orgs``, ``members``, ``invitations``, ``tokens``,
``grants``, ``audit``, ``keys`` (and the later stages' ``datasets``, ``jobs``, ``models``,
``deployments``, ...). Every failure raises a ``consortium.errors.ConsortiumError`` subclass
(``NotFound``, ``PermissionDenied``, ``InvalidInput``, ...), the same family the hub raised.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Self

import httpx

from consortium.api.status import family_of
from consortium.errors import FAMILIES, ConsortiumError, InvalidInput, QuotaExceeded, Unavailable
from consortium.sdk import resources
from consortium.sdk.datasets import Datasets
from consortium.sdk.jobs import Jobs
from consortium.sdk.models import Deployments, Models
from consortium.sdk.monitoring import Monitoring
from consortium.sdk.nodes import Nodes
from consortium.sdk.policies import Consents, Policies
from consortium.sdk.projects import Projects
from consortium.sdk.protection import Records, Retention, Withdrawals


class Client:
    """A connection to one hub, acting as one credential (an API token or a session).

    ``Client(url, token)``; both default to ``CONSORTIUM_URL`` and ``CONSORTIUM_TOKEN``; ``org``
    picks the organization a session acts in. Every failure raises the family the hub raised
    (``consortium.errors``: ``NotFound``, ``PermissionDenied``, ``InvalidInput``, ``QuotaExceeded``,
    ...) with its ``message``, ``hint`` and ``http_status``. Results are the hub's JSON as plain
    dicts and lists, shaped as each method's docstring says (the API's schemas at ``/docs``).

    Resource groups (each a small class; ``help(c.jobs)`` lists its methods):

    - ``orgs``, ``members``, ``invitations``, ``tokens``: organizations, their members and API tokens
    - ``grants``: share a dataset, model or deployment with another organization or a project
    - ``audit``, ``keys``: the tamper-evident audit log and its checkpoints; master-key rotation
    - ``datasets``: upload, inspect, preview, download, delete, import bundled samples
    - ``jobs``: submit recipes, follow or ``wait(progress=True)``, cancel, logs
    - ``models``, ``deployments``: the registry (versions, aliases, plots, explanations); serving
    - ``projects``: collaboration spaces several organizations join, and their reports
    - ``nodes``: federation nodes, approvals of federated jobs, privacy budgets
    - ``monitoring``: settings, metrics, drift, feedback, the prediction log, retraining checks
    - ``policies``, ``consents``: a dataset owner's rules; consent for models derived from its data
    - ``records``, ``withdrawals``, ``retention``: the processing record and sealed audit export;
      withdrawing a dataset version through lineage; retention periods and their purges

    >>> import consortium
    >>> c = consortium.Client("http://127.0.0.1:8000", token="csm_tok_...")    # doctest: +SKIP
    >>> c.me()["org"]                                                          # doctest: +SKIP
    'st-marys-hospital'
    >>> job = c.jobs.submit(open("examples/digits-cnn.yaml").read())           # doctest: +SKIP
    >>> c.jobs.wait(job["id"], progress=True)["state"]                         # doctest: +SKIP
    'succeeded'
    """

    GROUPS = ("orgs", "members", "invitations", "tokens", "grants", "audit", "keys", "datasets", "jobs",
              "models", "deployments", "projects", "nodes", "monitoring", "policies", "consents", "records",
              "withdrawals", "retention")

    def __init__(self, url: str | None = None, token: str | None = None, *, org: str | None = None,
                 timeout: float = 60.0, transport: httpx.BaseTransport | None = None,
                 ca_cert: str | None = None) -> None:
        """``ca_cert`` (or ``CONSORTIUM_CA_CERT``): a PEM file of the CA that signed the hub's HTTPS
        certificate; the client then trusts that CA only (pinned), not the system's."""
        self.url = (url or os.environ.get("CONSORTIUM_URL") or "http://127.0.0.1:8000").rstrip("/")
        self.token = token or os.environ.get("CONSORTIUM_TOKEN")
        headers = {"user-agent": "consortium-sdk"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        if org:
            headers["x-consortium-org"] = org
        ca = ca_cert or os.environ.get("CONSORTIUM_CA_CERT") or None
        verify: Any = True
        if ca:
            import ssl

            try:
                verify = ssl.create_default_context(cafile=ca)
            except (OSError, ssl.SSLError) as e:
                raise InvalidInput(f"cannot read the hub's CA certificate {ca!r}: {e}",
                                   hint="pass the PEM file of the CA that signed the hub's certificate") from None
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout,
                                  transport=transport, verify=verify)
        self.orgs = resources.Orgs(self)
        self.members = resources.Members(self)
        self.invitations = resources.Invitations(self)
        self.tokens = resources.Tokens(self)
        self.grants = resources.Grants(self)
        self.audit = resources.Audit(self)
        self.keys = resources.Keys(self)
        self.datasets = Datasets(self)
        self.jobs = Jobs(self)
        self.models = Models(self)
        self.deployments = Deployments(self)
        self.projects = Projects(self)
        self.nodes = Nodes(self)
        self.monitoring = Monitoring(self)
        self.records = Records(self)  # processing record, audit export (issue 19)
        self.withdrawals = Withdrawals(self)
        self.retention = Retention(self)
        self.policies = Policies(self)  # dataset policies (issue 19)
        self.consents = Consents(self)  # consent for derived models (issue 19)

    @classmethod
    def login(cls, url: str, email: str, password: str, **kw: Any) -> Client:
        """A client acting through a web session opened with email and password.

        >>> c = consortium.Client.login(url, "ana@st-marys.example", "passphrase")  # doctest: +SKIP
        """
        anon = cls(url, token=None, **kw)
        out = anon.request("POST", "/api/v1/auth/login", json={"email": email, "password": password})
        anon.close()
        return cls(url, token=out["session_token"], **kw)

    # -- transport -------------------------------------------------------------------------
    def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                content: Any = None, headers: dict[str, str] | None = None, files: Any = None,
                data: Any = None, raw: bool = False) -> Any:
        """One call of the hub's API (``path`` from the root, e.g. ``/api/v1/me``): decoded JSON,
        bytes, or None for an empty answer (``raw``: the ``httpx.Response``); an error status raises
        its ``ConsortiumError`` family. The groups are built on it; use it for a route they lack.

        >>> c.request("GET", "/api/v1/orgs", params={"limit": 5})["items"]  # doctest: +SKIP
        """
        try:
            r = self._http.request(method, path, json=json, params=_clean(params), content=content,
                                   headers=headers, files=files, data=data)
        except httpx.TransportError as e:
            raise Unavailable(f"cannot reach the hub at {self.url}: {e}",
                              hint="is it running? start it with `consortium up`") from e
        if r.status_code >= 400:
            raise _error(r)
        if raw:
            return r
        if r.status_code == 204 or not r.content:
            return None
        if r.headers.get("content-type", "").startswith("application/json"):
            return r.json()
        return r.content

    def stream(self, method: str, path: str, **kw: Any) -> Iterator[bytes]:
        """The answer's body in chunks, as they arrive (downloads); an error status raises.

        >>> with open("bc.csv", "wb") as f:                             # doctest: +SKIP
        ...     for chunk in c.stream("GET", "/api/v1/datasets/st-marys/bc/versions/1/download"):
        ...         f.write(chunk)
        """
        with self._http.stream(method, path, **kw) as r:
            if r.status_code >= 400:
                r.read()
                raise _error(r)
            yield from r.iter_bytes()

    def me(self) -> dict[str, Any]:
        """Who this client acts as: ``{"user_id", "email", "name", "org", "role", "via",
        "is_operator", "organizations": [{"name", "display_name", "role"}]}``.

        >>> c.me()["role"]                                              # doctest: +SKIP
        'owner'
        """
        return self.request("GET", "/api/v1/me")

    def logout(self) -> None:
        """End the web session this client acts through (a session login's).

        >>> c.logout()                                                  # doctest: +SKIP
        """
        self.request("POST", "/api/v1/auth/logout")

    def close(self) -> None:
        """Close the HTTP connections (``with Client(...) as c:`` does it on exit).

        >>> c.close()                                                   # doctest: +SKIP
        """
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _clean(params: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if params is None else {k: v for k, v in params.items() if v is not None}


def _error(r: httpx.Response) -> ConsortiumError:
    """The hub's error as the family it raised: the body's ``code`` names it (``errors.FAMILIES``);
    a code of no family (a stage's own, such as ``cancelled``) or a body with none (the Open
    Inference Protocol's ``{"error": "..."}``, a proxy's page) is read from the HTTP status, with
    the API's own table (``consortium.api.status``). ``http_status`` keeps the status received."""
    try:
        body = r.json()
    except ValueError:
        body = None
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        code, message, hint = str(err.get("code", "error")), err.get("message", r.text), err.get("hint")
    elif isinstance(err, str):
        code, message, hint = "", err, None
    else:
        code, message, hint = "", f"HTTP {r.status_code}: {r.text[:500]}", None
    details = err.get("details") if isinstance(err, dict) else None
    family = FAMILIES.get(code) or family_of(r.status_code)
    if family is QuotaExceeded:
        retry = (details or {}).get("retry_after") if isinstance(details, dict) else None
        e: ConsortiumError = QuotaExceeded(message, retry_after=int(retry or r.headers.get("retry-after", "1")))
    else:
        e = family(message, details=details)
    if code and code != e.code:
        e.code = code  # a stage's own code under its family (e.g. cancelled, a Conflict)
    e.hint = hint
    e.http_status = r.status_code  # type: ignore[attr-defined]  # for SDK users; the families carry no status
    return e
