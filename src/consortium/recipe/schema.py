"""The recipe's schema: pydantic models for every section, with the size bounds a job may ask for.

Every section refuses unknown fields. ``validate_mapping`` turns pydantic's errors into one
``InvalidInput`` that names the path of the first bad field (``train.optimizer``) and lists them all.

>>> r = validate_mapping({"name": "x", "model": {"type": "cnn", "channels": [8]}})
>>> r.model.channels, r.resolved_task
([8], 'classification')
>>> try:
...     validate_mapping({"name": "x", "model": {"type": "mlp", "hiden": [8]}})
... except InvalidInput as e:
...     print(e.message)
invalid recipe at model.hiden: Extra inputs are not permitted; remove it or check its spelling
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from consortium.errors import InvalidInput

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
MAX_WORKERS = 64  # train.workers and tune.parallel (the submission checks hold them to the cluster's CPUs)
MAX_FEDERATED_CHILDREN = 8  # tune.trials of a federated job: each child is a federated run of its own
# The tuning methods (``tune.method``): Optuna's TPE with Hyperband pruning (ASHA brackets on Ray
# with ``parallel`` > 1), Population Based Training (Ray Tune), the REINFORCE architecture controller
# with Hyperband pruning (``consortium.training.rl_controller``; one child at a time), and random
# search with Hyperband pruning (the baseline). A new method is one more name here and a branch in
# ``consortium.training.pipeline.tune_step`` or ``consortium.training.tuning.tune``.
TuneMethod = Literal["tpe", "pbt", "rl", "random"]
TUNE_METHODS: tuple[str, ...] = get_args(TuneMethod)
# What PBT may change in a running trial: optimizer settings and dropout (no parameter's shape).
PBT_MUTABLE = ("train.lr", "train.weight_decay", "train.momentum", "train.batch_size", "model.dropout")


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
        setattr(step, name, get_args(type(step).model_fields[name].annotation)[0]())  # X of `X | None`


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
    # > 1: data-parallel (DistributedDataParallel over Ray Train), each worker batch_size / workers rows
    workers: int = Field(1, ge=1, le=MAX_WORKERS)


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
    """``tune``: search ``space`` (dotted ``train.*`` / ``model.*`` paths -> a ``ParamRange``) with
    ``trials`` children proposed by ``method`` (tpe, random, rl; pbt on Ray), each stopped early by
    Hyperband, within ``timeout_s``; ``parallel`` > 1 runs children at once on Ray.

    Hub-side jobs: a child trains for ``train.epochs`` on the training split and is scored on the
    validation split. Federated jobs (``federated`` set): a child is one whole federated run of
    ``federated.rounds`` rounds, scored after each round on the hub-held validation rows (or the
    nodes' own evaluation), at most ``MAX_FEDERATED_CHILDREN`` children one at a time, no pbt, no
    ``train.epochs`` in ``space``; one approval covers every child, and with ``federated.dp`` the job
    spends children x epsilon (``check_federated_tune``, ``jobs.federated_tuning``)."""

    trials: int = Field(10, ge=1, le=1000)
    timeout_s: float | None = Field(None, gt=0, le=7 * 86400)
    metric: Literal["val_loss"] = "val_loss"
    space: dict[str, ParamRange] = Field(max_length=MAX_STEPS)
    method: str = "tpe"  # one of TUNE_METHODS (checked in ``_method`` so the 422 lists them)
    parallel: int = Field(1, ge=1, le=MAX_WORKERS)  # > 1 or pbt: trials run concurrently on Ray Tune

    @field_validator("space")
    @classmethod
    def _space(cls, v: dict[str, ParamRange]) -> dict[str, ParamRange]:
        if not v:
            raise PydanticCustomError("tune_space", "the search space has no choices; declare at least one range "
                                      "or choices list, e.g. train.lr: {low: 0.001, high: 0.1, log: true}")
        return v

    @field_validator("method")
    @classmethod
    def _method(cls, v: str) -> str:
        if v not in TUNE_METHODS:
            raise PydanticCustomError("tune_method", "unknown tuning method '{method}'; the methods are: {methods}",
                                      {"method": v, "methods": ", ".join(TUNE_METHODS)})
        return v


class FederatedSpec(Spec):
    datasets: list[str] = Field(min_length=1, max_length=100)
    strategy: Literal["fedavg", "fedprox", "fedadam"] = "fedavg"
    rounds: int = Field(10, ge=1, le=10_000)
    local_epochs: int = Field(1, ge=1, le=1_000)
    min_nodes: int = Field(2, ge=1, le=100)
    # seconds a round (and each SecAgg+ stage) waits for a node's reply; a node slower than this is
    # dropped from that round. None: the engine's default (300 s for the hub's jobs)
    round_timeout_s: float | None = Field(None, gt=0, le=86_400)
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


# --------------------------------------------------------------------------- validation errors
_UNION_TAGS = {"cnn", "mlp", "logistic"}


def _path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for i, p in enumerate(loc) if not (i == 1 and loc[0] == "model" and p in _UNION_TAGS)]
    return ".".join(parts) or "(recipe)"


def _allowed(err: ErrorDetails) -> str:
    if err["type"] == "extra_forbidden":
        return "; remove it or check its spelling"
    return ""


def validate_mapping(doc: dict[str, Any]) -> Recipe:
    """``Recipe.model_validate``, with the error naming the bad field's path instead of pydantic's dump."""
    try:
        recipe = Recipe.model_validate(doc)
    except ValidationError as e:
        errs = e.errors(include_url=False)
        first = errs[0]
        msg = f"invalid recipe at {_path(first['loc'])}: {first['msg']}{_allowed(first)}"
        details = [{"path": _path(x["loc"]), "message": x["msg"]} for x in errs]
        raise InvalidInput(msg, details=details) from None
    check_parallel(recipe)
    return recipe


def check_parallel(recipe: Recipe) -> None:
    """What ``train.workers`` and ``tune.method``/``parallel`` need of the rest of the recipe.

    Data-parallel training splits each batch evenly (the effective batch stays ``batch_size``), and
    refuses DP-SGD: Opacus' accountant assumes one process Poisson-sampling every row, so N workers
    each sampling a shard would spend a different epsilon than the one reported. PBT needs a
    population (2 trials or more), epochs to perturb between, something it may change in a running
    trial (``PBT_MUTABLE``), and no learning-rate schedule (trials restart from checkpoints).

    >>> check_parallel(validate_mapping({"name": "x", "train": {"workers": 2, "batch_size": 64}}))
    >>> try:
    ...     check_parallel(Recipe.model_validate({"name": "x", "train": {"workers": 3, "batch_size": 32}}))
    ... except InvalidInput as e:
    ...     print(e.message)
    invalid recipe at train.batch_size: 32 rows do not split evenly over 3 workers
    """
    n = recipe.train.workers
    space = recipe.tune.space if recipe.tune is not None else {}
    if n > 1:
        if recipe.federated is not None:
            what = "DP-SGD's accounting assumes one process sampling every row" if recipe.federated.dp else \
                "a federated job trains at each site's node, in one process"
            raise InvalidInput(f"invalid recipe at train.workers: {what}; workers > 1 is for hub-side training "
                               "jobs", hint="set train.workers: 1")
        if recipe.train.batch_size % n:
            raise InvalidInput(f"invalid recipe at train.batch_size: {recipe.train.batch_size} rows do not split "
                               f"evenly over {n} workers", hint=f"use a multiple of {n}")
        bs = space.get("train.batch_size")
        if bs is not None and (bs.choices is None or any(not isinstance(v, int) or v % n for v in bs.choices)):
            raise InvalidInput(f"invalid recipe at tune.space.train.batch_size: with {n} workers every batch size "
                               f"must split evenly", hint=f"give choices that are multiples of {n}")
    if recipe.federated is not None and recipe.tune is not None:
        check_federated_tune(recipe.tune)
    if recipe.tune is not None and recipe.tune.method == "rl" and recipe.tune.parallel > 1:
        raise InvalidInput("invalid recipe at tune.parallel: the rl controller learns from each child before it "
                           "proposes the next, so its children run one at a time", hint="set tune.parallel: 1")
    if recipe.tune is None or recipe.tune.method != "pbt":
        return
    if not any(k in PBT_MUTABLE for k in space):
        raise InvalidInput("invalid recipe at tune.space: pbt changes running trials, and none of these can be "
                           "changed without rebuilding the model", hint=f"tune one of: {', '.join(PBT_MUTABLE)}")
    if recipe.tune.trials < 2:
        raise InvalidInput("invalid recipe at tune.trials: pbt needs a population of 2 trials or more")
    if recipe.train.epochs < 2:
        raise InvalidInput("invalid recipe at train.epochs: pbt perturbs trials between epochs; give 2 or more")
    if recipe.train.schedule is not None:
        raise InvalidInput("invalid recipe at train.schedule: pbt restarts trials from checkpoints with the "
                           "learning rate it chose, which a schedule would override", hint="remove train.schedule")


def check_federated_tune(tune: TuneSpec) -> None:
    """What ``tune`` may ask of a federated job: each child is one federated run (all rounds, at
    every site), so at most ``MAX_FEDERATED_CHILDREN`` of them, one at a time, with a sampler that
    proposes whole children (tpe, random, rl; pbt changes trials while they train); and no
    ``train.epochs``, which federated training does not use (``federated.local_epochs`` is).

    >>> try:
    ...     check_federated_tune(TuneSpec(trials=9, space={"train.lr": ParamRange(low=0.001, high=0.1)}))
    ... except InvalidInput as e:
    ...     print(e.message[:69])
    invalid recipe at tune.trials: a federated job tunes with at most 8 c
    """
    if tune.trials > MAX_FEDERATED_CHILDREN:
        raise InvalidInput(f"invalid recipe at tune.trials: a federated job tunes with at most "
                           f"{MAX_FEDERATED_CHILDREN} children (each is a federated run of its own), not {tune.trials}",
                           hint=f"set tune.trials to {MAX_FEDERATED_CHILDREN} or fewer")
    if tune.parallel > 1:
        raise InvalidInput("invalid recipe at tune.parallel: a federated job's children run one after another "
                           "(every site takes part in each)", hint="set tune.parallel: 1")
    if tune.method == "pbt":
        raise InvalidInput("invalid recipe at tune.method: pbt perturbs trials while they train, which a federated "
                           "run does not allow", hint="use tpe, random or rl")
    if "train.epochs" in tune.space:
        raise InvalidInput("invalid recipe at tune.space.train.epochs: federated training runs "
                           "federated.local_epochs per round, not train.epochs",
                           hint="remove it from tune.space (the rounds are the children's budget)")
