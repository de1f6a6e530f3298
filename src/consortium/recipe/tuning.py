"""Edits of a recipe by dotted path, for the ``tune`` section: a trial's values set into a copy, and
the search space checked at both ends so that no trial can ask for more than a recipe may.

>>> from consortium.recipe.schema import validate_mapping
>>> r = apply_params(validate_mapping({"name": "a"}), {"train.lr": 0.01, "model.hidden.0": 16})
>>> r.train.lr, r.model.hidden
(0.01, [16, 32])
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from consortium.errors import InvalidInput
from consortium.recipe.schema import ParamRange, Recipe, validate_mapping


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


FLOAT_BUCKETS = 5
INT_VALUES = 6  # an integer range wider than this is sampled at this many points


@dataclass(frozen=True)
class Decision:
    """One discrete choice the controller makes: a dotted recipe path and the values it may take."""

    name: str
    values: list[Any]


def _round(x: float) -> float:
    return float(f"{x:.3g}")


def _spread(r: ParamRange, n: int, *, integer: bool) -> list[Any]:
    lo, hi = float(r.low or 0), float(r.high or 0)
    if r.step and not r.log:
        count = int(math.floor((hi - lo) / r.step + 1e-9)) + 1
        grid = [lo + i * r.step for i in range(count)]
        if len(grid) > n:
            grid = [grid[round(i * (len(grid) - 1) / (n - 1))] for i in range(n)]
    elif r.log:
        grid = [lo * (hi / lo) ** (i / (n - 1)) for i in range(n)]
    else:
        grid = [lo + (hi - lo) * i / (n - 1) for i in range(n)]
    if integer:
        out: list[Any] = sorted({int(round(v)) for v in grid})
        return out
    return [min(max(_round(v), lo), hi) for v in grid]  # rounding stays inside the range


def decisions_of(space: dict[str, ParamRange]) -> list[Decision]:
    """The search space as the discrete decisions of ``tune: {method: rl}``'s controller
    (``consortium.training.rl_controller``): ``choices`` as given; an integer range as its values,
    or ``INT_VALUES`` of them spread over it; a float range as ``FLOAT_BUCKETS`` buckets, spread
    geometrically when ``log`` (the learning-rate buckets).

    >>> decisions_of({"model.hidden.0": ParamRange(low=16, high=64, step=16)})[0].values
    [16, 32, 48, 64]
    """
    if not space:
        raise InvalidInput("invalid recipe at tune.space: it has no choices for the controller to make",
                           hint="declare at least one range or choices list under tune.space")
    out = []
    for name, r in space.items():
        if r.choices is not None:
            values = list(r.choices)
        else:
            integer = (float(r.low or 0).is_integer() and float(r.high or 0).is_integer()
                       and (r.step is None or float(r.step).is_integer()) and not is_float_path(name))
            if integer and not r.log and (r.high or 0) - (r.low or 0) < INT_VALUES and not r.step:
                values = list(range(int(r.low or 0), int(r.high or 0) + 1))
            else:
                values = _spread(r, INT_VALUES if integer else FLOAT_BUCKETS, integer=integer)
        if len(values) < 1:
            raise InvalidInput(f"invalid recipe at tune.space.{name}: the range is empty",
                               hint="give low < high, or a non-empty choices list")
        out.append(Decision(name, values))
    return out


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
        if recipe.tune.method == "rl":
            check_decisions(decisions_of(recipe.tune.space))
    return recipe


def check_decisions(decisions: list[Decision]) -> None:
    """The controller has something to learn: at least one decision offers two values or more."""
    if all(len(d.values) < 2 for d in decisions):
        names = ", ".join(d.name for d in decisions)
        raise InvalidInput(f"invalid recipe at tune.space: every parameter offers a single value ({names}), so "
                           "the rl controller has no choices to make",
                           hint="give at least one parameter two choices or a range")
