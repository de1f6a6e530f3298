"""Names of hub resources (organizations, projects, datasets, models, aliases, deployments, nodes):
one rule type, checked one way.

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

from consortium.errors import InvalidInput


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
