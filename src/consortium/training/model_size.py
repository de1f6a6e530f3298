"""How large a recipe's model is, counted from its spec without building it (no torch here, so the
hub checks a job at submission in microseconds). ``training.models`` builds its networks from the
same layer plan, so the count is exactly what ``count_parameters`` finds in the built model.

>>> from consortium.recipe import CNNSpec, MLPSpec
>>> parameter_count(MLPSpec(hidden=[8]), (4,), 3)  # (4*8 + 8) + (8*3 + 3)
67
>>> parameter_count(CNNSpec(channels=[32], padding="valid", dense=[128]), (1, 28, 28), 1)  # the seed's Keras CNN
692801
>>> try:
...     check_model_size(MLPSpec(hidden=[65536, 65536]), (30,), 2, limit=50_000_000)
... except InvalidInput as e:
...     print(e.message)
invalid recipe at model: the model would have 4,297,195,522 parameters ... more than this hub's limit of 50,000,000
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consortium.errors import InvalidInput
from consortium.recipe import CNNSpec, LogisticSpec, MLPSpec, Recipe, apply_params

DEFAULT_MAX_PARAMS = 50_000_000  # ~200 MB of float32 weights, ~1 GB with Adam's state and gradients


@dataclass(frozen=True)
class ConvBlock:
    """One conv block of a CNN: conv (in_c -> out_c) -> [batch norm] -> ReLU -> [max pool]."""

    in_c: int
    out_c: int
    pool: bool


def conv_plan(spec: CNNSpec, input_shape: tuple[int, ...]) -> tuple[list[ConvBlock], tuple[int, int, int]]:
    """The CNN's conv blocks for ``(C, H, W)`` images, and the feature map shape they leave."""
    c, h, w = input_shape
    k = spec.kernel_size
    pad = k // 2 if spec.padding == "same" else 0
    blocks = []
    for out_c in spec.channels:
        h, w = h + 2 * pad - k + 1, w + 2 * pad - k + 1  # (B, out_c, h', w')
        if h < 1 or w < 1:
            raise InvalidInput(
                f"model.kernel_size {k} is too large for {tuple(input_shape[1:])} images",
                hint="use padding: same or a smaller kernel",
            )
        pool = spec.pool > 1 and h >= spec.pool and w >= spec.pool
        if pool:
            h, w = h // spec.pool, w // spec.pool  # (B, out_c, h/pool, w/pool)
        blocks.append(ConvBlock(c, out_c, pool))
        c = out_c
    return blocks, (c, h, w)


def n_outputs_for(task: str, loss: str, n_classes: int) -> int:
    """Output width: one logit for binary cross-entropy and regression, else one per class."""
    if task == "regression" or loss == "binary_cross_entropy":
        return 1
    return n_classes


def _dense_count(n_in: int, widths: list[int], n_out: int, *, batch_norm: bool) -> int:
    total = 0
    for width in widths:
        total += n_in * width + width + (2 * width if batch_norm else 0)
        n_in = width
    return total + n_in * n_out + n_out


def _features(input_shape: tuple[int, ...]) -> int:
    n = 1
    for d in input_shape:
        n *= int(d)
    return n


def parameter_count(spec: CNNSpec | MLPSpec | LogisticSpec, input_shape: tuple[int, ...], n_outputs: int) -> int:
    """Trainable parameters of the model ``training.models.build_model`` builds for this input
    shape (without the batch: ``(F,)`` or ``(C, H, W)``) and number of outputs."""
    if isinstance(spec, CNNSpec):
        if len(input_shape) != 3:
            raise InvalidInput(
                f"a cnn needs image input (C, H, W); this data has shape {tuple(input_shape)}",
                hint="use model type mlp or logistic for tabular data",
            )
        blocks, (c, h, w) = conv_plan(spec, input_shape)
        k2 = spec.kernel_size**2
        conv = sum(b.out_c * b.in_c * k2 + b.out_c + (2 * b.out_c if spec.batch_norm else 0) for b in blocks)
        return conv + _dense_count(c * h * w, spec.dense, n_outputs, batch_norm=False)
    if isinstance(spec, MLPSpec):
        return _dense_count(_features(input_shape), spec.hidden, n_outputs, batch_norm=spec.batch_norm)
    return _dense_count(_features(input_shape), [], n_outputs, batch_norm=False)


def check_model_size(spec: CNNSpec | MLPSpec | LogisticSpec, input_shape: tuple[int, ...], n_outputs: int,
                     limit: int, *, where: str = "") -> int:
    """The parameter count, or ``InvalidInput`` (422) giving the count and the limit when it is over."""
    n = parameter_count(spec, input_shape, n_outputs)
    if n > limit:
        on = f" on {where}" if where else ""
        raise InvalidInput(
            f"invalid recipe at model: the model would have {n:,} parameters (input {tuple(input_shape)}, "
            f"{n_outputs} outputs){on}, more than this hub's limit of {limit:,}",
            hint="use fewer or narrower layers (model.hidden, model.channels, model.dense) or more pooling; "
                 "the operator sets the limit with CONSORTIUM_MAX_MODEL_PARAMS",
            details={"parameters": n, "limit": limit},
        )
    return n


# --------------------------------------------------------------------------- at submission
def schema_input(recipe: Recipe, schema: dict[str, Any]) -> tuple[tuple[int, ...], int]:
    """The model's input shape and output width for a dataset version's stored schema, without
    reading rows. Tabular: one feature per input column, a lower bound when ``one_hot`` expands
    columns (their categories are learned at training); classes as profiled for the target (at
    least 2 when the recipe picks another target)."""
    target = recipe.data.target or schema.get("target")
    classes = schema.get("classes") if target == schema.get("target") else None
    n_classes = max(2, len(classes)) if isinstance(classes, dict) else 2
    if schema.get("kind") == "image":
        shape: tuple[int, ...] = tuple(int(d) for d in schema.get("image_shape", (1, 1, 1)))
    else:
        shape = (max(1, sum(1 for c in schema.get("columns", []) if c.get("name") != target)),)
    return shape, n_outputs_for(recipe.resolved_task, recipe.resolved_loss, n_classes)


def largest_model(recipe: Recipe) -> CNNSpec | MLPSpec | LogisticSpec:
    """The recipe's model with every tuned ``model.*`` size at the top of its search range."""
    if recipe.tune is None:
        return recipe.model
    top: dict[str, Any] = {}
    for path, r in recipe.tune.space.items():
        if not path.startswith("model."):
            continue
        numbers = [c for c in r.choices or [] if isinstance(c, (int, float)) and not isinstance(c, bool)]
        if r.choices is None and r.high is not None:
            top[path] = int(r.high) if float(r.high).is_integer() else r.high
        elif numbers:
            top[path] = max(numbers)
    return apply_params(recipe, top).model if top else recipe.model


def check_recipe_size(recipe: Recipe, schema: dict[str, Any], limit: int, *, where: str = "") -> int:
    """``check_model_size`` for the recipe's largest model on a dataset version's schema."""
    shape, n_out = schema_input(recipe, schema)
    return check_model_size(largest_model(recipe), shape, n_out, limit, where=where)
