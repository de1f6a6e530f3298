"""Names of hub resources (organizations, projects, datasets, models, aliases, deployments, nodes):
one rule type, checked one way; and how a reference names another organization's resource
(``org~name``) and how a bare name resolves.

A rule's regex keeps its ``^...$`` anchors, because OpenAPI publishes it as a JSON Schema pattern
(which searches); ``check`` uses ``re.fullmatch``, because ``re.match`` with ``$`` also accepts a
name that ends in a newline.

>>> ORG_NAME.check("st-marys")
'st-marys'
>>> try:
...     ORG_NAME.check("st-marys\\n")
... except InvalidInput as e:
...     print(e.message)
name 'st-marys\\n' is not valid
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeVar

from consortium.errors import Conflict, InvalidInput


@dataclass(frozen=True)
class NameRule:
    what: str  # how the error names it: "dataset name"
    regex: re.Pattern[str]
    hint: str  # the rule in words
    reserved: frozenset[str] = frozenset()

    def check(self, name: str, what: str | None = None) -> str:
        """``name`` if it follows the rule; ``InvalidInput`` naming it and the rule otherwise."""
        if not isinstance(name, str) or self.regex.fullmatch(name) is None or name in self.reserved:
            raise InvalidInput(f"{what or self.what} {name!r} is not valid", hint=self.hint)
        return name


# organizations and projects
ORG_NAME = NameRule("name", re.compile(r"^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$"),
                    "use 3-40 lowercase letters, digits and dashes, not starting or ending with a dash")


# A qualified name in one path segment: ``org~name`` (no hub name may contain '~'); ``org/name``
# means the same wherever a reference is not a path segment (bodies, queries, the SDK).
QUALIFIER = "~"
T = TypeVar("T")


def split_qualified(ref: str, what: str = "resource") -> tuple[str | None, str]:
    """``org~name`` or ``org/name`` -> (org, name); a bare ``name`` -> (None, name).

    >>> split_qualified("st-marys~bc-risk"), split_qualified("st-marys/bc-risk"), split_qualified("bc-risk")
    (('st-marys', 'bc-risk'), ('st-marys', 'bc-risk'), (None, 'bc-risk'))
    """
    ref = (ref or "").strip()
    for sep in ("/", QUALIFIER):
        if sep in ref:
            org, _, name = ref.partition(sep)
            if not org or not name or "/" in name or QUALIFIER in name:
                raise InvalidInput(f"{what} reference {ref!r} is not valid",
                                   hint=f"write NAME, or ORG{QUALIFIER}NAME (ORG/NAME in a request body)")
            return org, name
    return None, ref


def qualified(org_name: str, name: str) -> str:
    """The single-segment reference of another organization's resource: ``org~name``."""
    return f"{org_name}{QUALIFIER}{name}"


def pick_by_name(what: str, name: str, own: T | None, visible: list[tuple[str, T]]) -> T | None:
    """How a bare name resolves: the caller's own organization's resource first, else the single
    one it can see (``visible``: (qualified name, resource) pairs, through grants or projects);
    several -> ``Conflict`` listing only the qualified names the caller can see; none -> None."""
    if own is not None:
        return own
    if len(visible) > 1:
        raise Conflict(f"{len(visible)} {what}s named {name!r} are visible to your organization: "
                       f"{', '.join(sorted(q for q, _ in visible))}",
                       hint=f"name one of them as ORG{QUALIFIER}NAME (or ORG/NAME in a request body)")
    return visible[0][1] if visible else None
