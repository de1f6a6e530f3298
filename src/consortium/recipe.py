"""The declarative recipe: one YAML/JSON document that describes a training job end to end.

The CLI, the SDK, the UI and federated jobs all hand the same recipe to the same code path.
Unknown fields are refused, and every error names the path of the bad field and what is allowed.

>>> r = parse_recipe('''
... name: digits-cnn
... data: {dataset: northwind/digits, target: label}
... process: [{rescale: {}}]
... model: {type: cnn, channels: [32], dense: [128]}
... train: {loss: binary_cross_entropy, optimizer: adam, lr: 0.001, epochs: 3}
... ''')
>>> r.model.type, r.train.loss, r.resolved_task
('cnn', 'binary_cross_entropy', 'classification')
>>> try:
...     parse_recipe({"name": "x", "model": {"type": "mlp"}, "train": {"optimizer": "lbfgs"}})
... except InvalidInput as e:
...     print(str(e).split(":")[0])
invalid recipe at train.optimizer
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from consortium.errors import InvalidInput

if TYPE_CHECKING:
    from consortium.data.frame import DataFrameSet

Loss = Literal["cross_entropy", "binary_cross_entropy", "mse"]
Optimizer = Literal["adam", "adamw", "sgd"]
Task = Literal["classification", "regression"]
CLASSIFICATION_METRICS = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mse", "mae", "r2")
Metric = Literal[
    "accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc", "log_loss", "mse", "mae", "r2"
]
VERSION_MAX = 2**31 - 1  # version numbers are 32-bit columns (consortium.store.db.INT32_MAX)
SEED_MAX = 2**32 - 1  # what numpy, scikit-learn and torch all accept as a seed
# Sizes a recipe controls, bounded so that a job cannot exhaust the machine by itself (the model's
# parameter count is checked against CONSORTIUM_MAX_MODEL_PARAMS at submission, from the data's shape).
MAX_LAYERS = 16  # conv blocks, dense layers, hidden layers
MAX_WIDTH = 65_536  # units of one dense or hidden layer
MAX_CHANNELS = 4_096  # channels of one conv block
MAX_KERNEL = 31
MAX_BATCH = 4_096
MAX_STEPS = 32  # processing steps, augmentations, tuned parameters


class Spec(BaseModel):
    """Base of every recipe section: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- data
class DataSpec(Spec):
    dataset: str | None = None  # "org/name" in the hub; None when the caller passes data directly
    version: int | None = Field(None, ge=1, le=VERSION_MAX)
    target: str | None = None  # tabular: target column; images: ignored (labels)
    test_size: float = Field(0.2, gt=0, lt=1)
    val_size: float = Field(0.1, ge=0, lt=1)
    seed: int = Field(0, ge=0, le=SEED_MAX)

    @model_validator(mode="after")
    def _sizes(self) -> DataSpec:
        if self.test_size + self.val_size >= 0.9:
            raise ValueError("test_size + val_size must leave at least 10% of rows for training")
        return self


# --------------------------------------------------------------------------- processing steps
class DropMissing(Spec):
    columns: list[str] | None = None  # None: any column


class Impute(Spec):
    strategy: Literal["mean", "median", "most_frequent", "constant"] = "mean"
    fill_value: float | str | None = None  # for strategy "constant"
    columns: list[str] | None = None


class DropDuplicates(Spec):
    pass


class ClipOutliers(Spec):
    method: Literal["quantile", "z"] = "quantile"
    lower: float = Field(0.01, ge=0, le=0.5)  # quantile method
    upper: float = Field(0.99, ge=0.5, le=1)
    z: float = Field(3.0, gt=0)  # z method: mean +- z * std


class Normalize(Spec):
    method: Literal["standard", "minmax"] = "standard"


class OneHot(Spec):
    columns: list[str] | None = None  # None: every non-numeric column
    max_categories: int = Field(50, ge=2, le=10_000)


class Rescale(Spec):
    factor: float | None = None  # None: divide by the training maximum (pixels -> [0, 1])


def _fill_default(step: BaseModel) -> None:
    """``{normalize: null}`` means the step with its defaults."""
    name = next(iter(step.model_fields_set))
    if getattr(step, name) is None:
        setattr(step, name, type(step).model_fields[name].annotation.__args__[0]())  # type: ignore[union-attr]


STEP_NAMES = ("drop_missing", "impute", "drop_duplicates", "clip_outliers", "normalize", "one_hot", "rescale")


class _OneKey(Spec):
    """A step written as a one-key mapping, ``{name: {params}}``; subclasses list the keys."""

    _names: tuple[str, ...] = ()
    _what: str = "step"

    @model_validator(mode="after")
    def _one(self) -> Any:
        if len(self.model_fields_set) != 1:
            raise ValueError(f"each {self._what} has exactly one key, one of: {', '.join(self._names)}")
        _fill_default(self)
        return self

    @property
    def name(self) -> str:
        return next(iter(self.model_fields_set))

    @property
    def params(self) -> Any:
        return getattr(self, self.name)


class ProcessStep(_OneKey):
    """One processing step, written as a one-key mapping: ``{normalize: {method: standard}}``."""

    _names = STEP_NAMES

    drop_missing: DropMissing | None = None
    impute: Impute | None = None
    drop_duplicates: DropDuplicates | None = None
    clip_outliers: ClipOutliers | None = None
    normalize: Normalize | None = None
    one_hot: OneHot | None = None
    rescale: Rescale | None = None


# --------------------------------------------------------------------------- augmentation
class HorizontalFlip(Spec):
    p: float = Field(0.5, ge=0, le=1)


class Rotation(Spec):
    degrees: float = Field(10.0, ge=0, le=180)
    p: float = Field(0.5, ge=0, le=1)


class Affine(Spec):
    degrees: float = Field(0.0, ge=0, le=180)
    translate: tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]] | None = None
    scale: tuple[Annotated[float, Field(gt=0, le=10)], Annotated[float, Field(gt=0, le=10)]] | None = None
    p: float = Field(0.5, ge=0, le=1)


class GaussianNoise(Spec):
    std: float = Field(0.1, gt=0, le=100)
    p: float = Field(0.5, ge=0, le=1)


AUGMENT_NAMES = ("horizontal_flip", "rotation", "affine", "gaussian_noise")


class AugmentStep(_OneKey):
    _names = AUGMENT_NAMES
    _what = "augmentation"

    horizontal_flip: HorizontalFlip | None = None
    rotation: Rotation | None = None
    affine: Affine | None = None
    gaussian_noise: GaussianNoise | None = None


# --------------------------------------------------------------------------- model
class CNNSpec(Spec):
    type: Literal["cnn"] = "cnn"
    channels: list[Annotated[int, Field(ge=1, le=MAX_CHANNELS)]] = Field(
        default_factory=lambda: [32, 64], min_length=1, max_length=MAX_LAYERS)
    kernel_size: int = Field(3, ge=1, le=MAX_KERNEL)
    padding: Literal["same", "valid"] = "same"
    pool: int = Field(2, ge=1, le=MAX_KERNEL)  # 1: no pooling
    batch_norm: bool = False
    dropout: float = Field(0.0, ge=0, lt=1)
    dense: list[Annotated[int, Field(ge=1, le=MAX_WIDTH)]] = Field(default_factory=lambda: [128],
                                                                   max_length=MAX_LAYERS)


class MLPSpec(Spec):
    type: Literal["mlp"] = "mlp"
    hidden: list[Annotated[int, Field(ge=1, le=MAX_WIDTH)]] = Field(default_factory=lambda: [64, 32],
                                                                    max_length=MAX_LAYERS)
    dropout: float = Field(0.0, ge=0, lt=1)
    batch_norm: bool = False


class LogisticSpec(Spec):
    type: Literal["logistic"] = "logistic"


ModelSpec = Annotated[CNNSpec | MLPSpec | LogisticSpec, Field(discriminator="type")]


# --------------------------------------------------------------------------- training
class ScheduleSpec(Spec):
    type: Literal["cosine", "step"]
    step_size: int = Field(5, ge=1, le=10_000)  # step: epochs between decays
    gamma: float = Field(0.5, gt=0, le=1)


class EarlyStoppingSpec(Spec):
    patience: int = Field(3, ge=1, le=10_000)
    min_delta: float = Field(0.0, ge=0)


class TrainSpec(Spec):
    loss: Loss | None = None  # None: cross_entropy for classification, mse for regression
    optimizer: Optimizer = "adam"
    lr: float = Field(0.001, gt=0, le=10)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)  # sgd only
    epochs: int = Field(10, ge=1, le=10_000)
    batch_size: int = Field(32, ge=1, le=MAX_BATCH)
    schedule: ScheduleSpec | None = None
    early_stopping: EarlyStoppingSpec | None = None
    seed: int = Field(0, ge=0, le=SEED_MAX)


class DPSpec(Spec):
    """Differential privacy (DP-SGD with Opacus): target (epsilon, delta) over the training run."""

    epsilon: float = Field(3.0, gt=0)
    delta: float = Field(1e-5, gt=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)
    noise_multiplier: float | None = Field(None, gt=0)  # set to fix the noise instead of targeting epsilon


class EvaluateSpec(Spec):
    cv_folds: int | None = Field(None, ge=0, le=20)  # None or 0: no cross-validation
    metrics: list[Metric] | None = None  # None: every metric that fits the task

    @model_validator(mode="after")
    def _folds(self) -> EvaluateSpec:
        if self.cv_folds == 1:
            raise ValueError("cv_folds must be 0 (off) or at least 2")
        return self


class ParamRange(Spec):
    """A search range: ``{low, high, log}`` (ints stay ints) or ``{choices: [...]}``."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = Field(None, max_length=100)

    @model_validator(mode="after")
    def _shape(self) -> ParamRange:
        if self.choices is not None:
            if self.low is not None or self.high is not None or not self.choices:
                raise ValueError("give either non-empty choices or low/high, not both")
        elif self.low is None or self.high is None or self.low >= self.high:
            raise ValueError("give low < high, or choices")
        elif self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


class TuneSpec(Spec):
    trials: int = Field(10, ge=1, le=1000)
    timeout_s: float | None = Field(None, gt=0, le=7 * 86400)
    metric: Literal["val_loss"] = "val_loss"
    space: dict[str, ParamRange] = Field(min_length=1, max_length=MAX_STEPS)


class FederatedSpec(Spec):
    datasets: list[str] = Field(min_length=1, max_length=100)
    strategy: Literal["fedavg", "fedprox", "fedadam"] = "fedavg"
    rounds: int = Field(10, ge=1, le=10_000)
    local_epochs: int = Field(1, ge=1, le=1_000)
    min_nodes: int = Field(2, ge=1, le=100)
    secure_aggregation: bool = False
    dp: DPSpec | None = None
    proximal_mu: float = Field(0.01, ge=0)


class RegisterSpec(Spec):
    model: str = Field(min_length=1)


class Recipe(Spec):
    """The whole job. ``register`` (written ``register:`` in the recipe) is ``recipe.registration``
    in Python, since pydantic models already have a ``register`` method."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=200)
    task: Task | None = None  # None: inferred from the loss (mse -> regression)
    data: DataSpec = Field(default_factory=DataSpec)
    process: list[ProcessStep] = Field(default_factory=list, max_length=MAX_STEPS)
    augment: list[AugmentStep] = Field(default_factory=list, max_length=MAX_STEPS)
    model: ModelSpec = Field(default_factory=MLPSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    evaluate: EvaluateSpec = Field(default_factory=EvaluateSpec)
    tune: TuneSpec | None = None
    federated: FederatedSpec | None = None
    registration: RegisterSpec | None = Field(None, alias="register")

    @model_validator(mode="after")
    def _coherent(self) -> Recipe:
        if self.task == "regression" and self.train.loss not in (None, "mse"):
            raise ValueError(f"task regression needs loss mse, not {self.train.loss}")
        if self.task == "classification" and self.train.loss == "mse":
            raise ValueError("task classification needs loss cross_entropy or binary_cross_entropy")
        return self

    @property
    def resolved_task(self) -> Task:
        if self.task is not None:
            return self.task
        return "regression" if self.train.loss == "mse" else "classification"

    @property
    def resolved_loss(self) -> Loss:
        if self.train.loss is not None:
            return self.train.loss
        return "mse" if self.resolved_task == "regression" else "cross_entropy"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form that ``parse_recipe`` reads back to an equal recipe."""
        d = self.model_dump(mode="json", by_alias=True)
        d["process"] = [{s.name: s.params.model_dump(mode="json")} for s in self.process]
        d["augment"] = [{s.name: s.params.model_dump(mode="json")} for s in self.augment]
        return d


# --------------------------------------------------------------------------- parsing
_UNION_TAGS = {"cnn", "mlp", "logistic"}


def _path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for i, p in enumerate(loc) if not (i == 1 and loc[0] == "model" and p in _UNION_TAGS)]
    return ".".join(parts) or "(recipe)"


def _allowed(err: dict[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "; remove it or check its spelling"
    return ""


def parse_recipe(source: str | bytes | dict[str, Any] | Recipe) -> Recipe:
    """Read a recipe from YAML/JSON text or a mapping; raise ``InvalidInput`` naming the bad field."""
    return _check_space(_validate(source))


def _validate(source: str | bytes | dict[str, Any] | Recipe) -> Recipe:
    if isinstance(source, Recipe):
        return source
    if isinstance(source, (str, bytes)):
        try:
            source = yaml.safe_load(source)
        except yaml.YAMLError as e:
            raise _yaml_error(e) from None
    if not isinstance(source, dict):
        raise InvalidInput(
            "a recipe is a mapping with at least a 'name'", hint="e.g. {name: my-model, model: {type: mlp}}"
        )
    try:
        return Recipe.model_validate(source)
    except ValidationError as e:
        errs = e.errors(include_url=False)
        first = errs[0]
        msg = f"invalid recipe at {_path(first['loc'])}: {first['msg']}{_allowed(first)}"
        details = [{"path": _path(x["loc"]), "message": x["msg"]} for x in errs]
        raise InvalidInput(msg, details=details) from None


def _yaml_error(e: yaml.YAMLError) -> InvalidInput:
    """The parser's complaint in one line, with where (1-based line and column) and what to check.

    >>> try:
    ...     yaml.safe_load("name: x\\nmodel: {type: mlp\\ntrain: {}")
    ... except yaml.YAMLError as err:
    ...     print(_yaml_error(err).message)
    the recipe is not valid YAML at line 3, column 6: expected ',' or '}', but got ':' (in the flow mapping that starts at line 2, column 8)
    """
    mark, problem = getattr(e, "problem_mark", None), getattr(e, "problem", None)
    if mark is None or not problem:
        return InvalidInput("the recipe is not valid YAML/JSON", hint="check its brackets and indentation")
    msg = f"the recipe is not valid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"
    context, cmark = getattr(e, "context", None), getattr(e, "context_mark", None)
    if context and cmark is not None and (cmark.line, cmark.column) != (mark.line, mark.column):
        what = context.removeprefix("while parsing ").removeprefix("while scanning ")
        what = what.removeprefix("a ").removeprefix("an ")
        msg += f" (in the {what} that starts at line {cmark.line + 1}, column {cmark.column + 1})"
    hint = ("indent with spaces, not tabs" if "\\t" in problem else
            "close every { and [ you open, put a space after each ':', and indent nested keys by the same spaces")
    return InvalidInput(msg, hint=hint, details=[{"line": mark.line + 1, "column": mark.column + 1}])


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

    >>> r = apply_params(parse_recipe({"name": "a"}), {"train.lr": 0.01}); r.train.lr
    0.01
    """
    tree = copy.deepcopy(recipe.to_dict())
    tree.pop("tune", None)
    for path, value in params.items():
        if not (path.startswith("train.") or path.startswith("model.")):
            raise InvalidInput(f"invalid recipe at tune.space.{path}: only train.* and model.* can be tuned")
        try:
            _set_path(tree, path, value)
        except (KeyError, IndexError, ValueError, TypeError):
            raise InvalidInput(
                f"invalid recipe at tune.space.{path}: no such field in the recipe",
                hint="use a dotted path such as train.lr or model.dense.0",
            ) from None
    return _validate(tree).model_copy(update={"tune": recipe.tune})


def _check_space(recipe: Recipe) -> Recipe:
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


def recipe_json(recipe: Recipe) -> str:
    return json.dumps(recipe.to_dict(), sort_keys=True)


# --------------------------------------------------------------------------- against data
def _looks_like_classes(y: Any) -> bool:
    import numpy as np

    y = np.asarray(y)
    if y.dtype.kind in "OUSb":
        return True
    if y.dtype.kind in "iu":
        return len(np.unique(y)) <= max(20, int(0.05 * len(y)))
    if y.dtype.kind == "f":
        finite = y[np.isfinite(y)]
        return bool(finite.size) and bool(np.all(finite == np.round(finite))) and len(np.unique(finite)) <= 20
    return False


def validate_against(recipe: Recipe, data: DataFrameSet) -> None:
    """Raise ``InvalidInput`` if the recipe cannot train on this data (target, task, model kind)."""
    import numpy as np

    if data.kind == "tabular":
        assert data.frame is not None
        target = recipe.data.target or data.target
        if target is None or target not in data.frame.columns:
            cols = ", ".join(map(str, list(data.frame.columns)[:20]))
            raise InvalidInput(
                f"invalid recipe at data.target: column {target!r} is not in the data",
                hint=f"columns are: {cols}",
            )
        y = data.frame[target].to_numpy()
        if isinstance(recipe.model, CNNSpec):
            raise InvalidInput(
                "invalid recipe at model.type: a cnn needs image data, this dataset is tabular",
                hint="use type mlp or logistic",
            )
        for step in recipe.augment:
            if step.name != "gaussian_noise":
                raise InvalidInput(
                    f"invalid recipe at augment: {step.name} needs image data",
                    hint="only gaussian_noise applies to tabular data",
                )
    else:
        y = data.target_values()
        if any(s.name == "one_hot" for s in recipe.process):
            raise InvalidInput("invalid recipe at process: one_hot does not apply to images")
    allowed = REGRESSION_METRICS if recipe.resolved_task == "regression" else CLASSIFICATION_METRICS
    wrong = [m for m in recipe.evaluate.metrics or [] if m not in allowed]
    if wrong:
        raise InvalidInput(
            f"invalid recipe at evaluate.metrics: {wrong} do not apply to {recipe.resolved_task}",
            hint=f"choose from: {', '.join(allowed)}",
        )
    if data.n_rows < 10:
        raise InvalidInput(f"the dataset has {data.n_rows} rows; training needs at least 10")
    loss = recipe.resolved_loss
    y_present = y[~_isnan(y)] if y.dtype.kind == "f" else y
    classes = np.unique(y_present.astype(str)) if y_present.dtype.kind == "O" else np.unique(y_present)
    if loss == "mse" and recipe.task != "regression" and _looks_like_classes(y_present):
        raise InvalidInput(
            f"invalid recipe at train.loss: mse on class labels ({len(classes)} distinct values)",
            hint="set task: regression if the target is a quantity, or use loss cross_entropy",
        )
    if recipe.resolved_task == "classification":
        if y_present.dtype.kind == "f" and not _looks_like_classes(y_present):
            raise InvalidInput(
                "invalid recipe at task: the target is continuous but the task is classification",
                hint="set task: regression and loss: mse",
            )
        if len(classes) < 2:
            raise InvalidInput(f"the target has {len(classes)} class; classification needs at least 2")
        if loss == "binary_cross_entropy" and len(classes) > 2:
            raise InvalidInput(
                f"invalid recipe at train.loss: binary_cross_entropy needs 2 classes, the target has "
                f"{len(classes)}",
                hint="use loss cross_entropy",
            )
    elif y_present.dtype.kind not in "iuf":
        raise InvalidInput("invalid recipe at task: regression needs a numeric target")


def _isnan(y: Any) -> Any:
    import numpy as np

    return np.isnan(y.astype(float))
