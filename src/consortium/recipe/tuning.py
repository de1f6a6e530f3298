"""Edits of a recipe by dotted path, for the ``tune`` section: a trial's values set into a copy, and
the search space checked at both ends so that no trial can ask for more than a recipe may.

>>> from consortium.recipe.schema import validate_mapping
>>> r = apply_params(validate_mapping({"name": "a"}), {"train.lr": 0.01, "model.hidden.0": 16})
>>> r.train.lr, r.model.hidden
(0.01, [16, 32])
"""

from __future__ import annotations

import copy
from typing import Any

from consortium.errors import InvalidInput
from consortium.recipe.schema import Recipe, validate_mapping


def _set_path(tree: Any, path: str, value: Any) -> None:
    keys = path.split(".")
    node = tree
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    last = keys[-1]
    if isinstance(node, list):
        node[int(last)] = value
    elif isinstance(node, dict) and last in node:
        node[last] = value
    else:
        raise KeyError(path)


def apply_params(recipe: Recipe, params: dict[str, Any]) -> Recipe:
    """A copy of ``recipe`` with dotted-path values set (``{"train.lr": 0.01, "model.dense.0": 64}``).

    >>> r = apply_params(validate_mapping({"name": "a"}), {"train.lr": 0.01}); r.train.lr
    0.01
    """
    tree = copy.deepcopy(recipe.to_dict())
    tree.pop("tune", None)
    for path, value in params.items():
        if not path.startswith(("train.", "model.")):
            raise InvalidInput(f"invalid recipe at tune.space.{path}: only train.* and model.* can be tuned")
        try:
            _set_path(tree, path, value)
        except (KeyError, IndexError, ValueError, TypeError):
            raise InvalidInput(
                f"invalid recipe at tune.space.{path}: no such field in the recipe",
                hint="use a dotted path such as train.lr or model.dense.0",
            ) from None
    return validate_mapping(tree).model_copy(update={"tune": recipe.tune})


FLOAT_FIELDS = frozenset({"lr", "weight_decay", "momentum", "dropout", "gamma", "min_delta"})


def is_float_path(path: str) -> bool:
    """Whether a tuned path is a float field even when its range's ends are whole numbers.

    >>> is_float_path("train.lr"), is_float_path("model.hidden.0")
    (True, False)
    """
    return path.split(".")[-1] in FLOAT_FIELDS


def check_space(recipe: Recipe) -> Recipe:
    """Every tuned path exists, and both ends of every range give a valid recipe (a trial at the top
    of a range within the recipe's size bounds)."""
    if recipe.tune:
        space = recipe.tune.space.items()
        apply_params(recipe, {k: (v.choices[0] if v.choices is not None else v.low) for k, v in space})
        try:
            apply_params(recipe, {k: (v.choices[-1] if v.choices is not None else v.high) for k, v in space})
        except InvalidInput as e:
            raise InvalidInput(f"invalid recipe at tune.space, at the top of its ranges: "
                               f"{e.message.removeprefix('invalid recipe at ')}", hint=e.hint) from None
    return recipe
