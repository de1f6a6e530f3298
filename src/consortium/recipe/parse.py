"""Reading a recipe: YAML/JSON text or a mapping in, a validated ``Recipe`` out, or one ``InvalidInput``
that names the path of the bad field and what is allowed.

>>> parse_recipe("name: x\\nmodel: {type: logistic}").model.type
'logistic'
>>> try:
...     parse_recipe("- just\\n- a list")
... except InvalidInput as e:
...     print(e.message)
a recipe is a mapping with at least a 'name'
"""

from __future__ import annotations

from typing import Any

from consortium.errors import InvalidInput
from consortium.recipe.schema import Recipe, validate_mapping
from consortium.recipe.tuning import check_space
from consortium.recipe.yaml_errors import load_text


def parse_recipe(source: str | bytes | dict[str, Any] | Recipe) -> Recipe:
    """Read a recipe from YAML/JSON text or a mapping; raise ``InvalidInput`` naming the bad field.
    The tuning space is checked at both ends of its ranges (``check_space``)."""
    if isinstance(source, Recipe):
        return check_space(source)
    if isinstance(source, (str, bytes)):
        source = load_text(source)
    if not isinstance(source, dict):
        raise InvalidInput(
            "a recipe is a mapping with at least a 'name'", hint="e.g. {name: my-model, model: {type: mlp}}"
        )
    return check_space(validate_mapping(source))
