"""The declarative recipe: one YAML/JSON document that describes a training job end to end.

The CLI, the SDK, the UI and federated jobs all hand the same recipe to the same code path.
Unknown fields are refused, and every error names the path of the bad field and what is allowed.
The package: ``schema`` (the pydantic models and their bounds), ``yaml_errors`` (reading the text),
``parse`` (``parse_recipe``), ``tuning`` (edits by dotted path for the ``tune`` section) and
``validate`` (the recipe against the rows it will train on). The names below are its public API.

>>> r = parse_recipe('''
... name: digits-cnn
... data: {dataset: northwind/digits, target: label}
... process: [{rescale: {}}]
... model: {type: cnn, channels: [32], dense: [128]}
... train: {loss: binary_cross_entropy, optimizer: adam, lr: 0.001, epochs: 3}
... ''')
>>> r.model.type, r.train.loss, r.resolved_task
('cnn', 'binary_cross_entropy', 'classification')
>>> from consortium.errors import InvalidInput
>>> try:
...     parse_recipe({"name": "x", "model": {"type": "mlp"}, "train": {"optimizer": "lbfgs"}})
... except InvalidInput as e:
...     print(str(e).split(":")[0])
invalid recipe at train.optimizer
"""

from consortium.recipe.parse import parse_recipe
from consortium.recipe.schema import (
    AUGMENT_NAMES,
    CLASSIFICATION_METRICS,
    PBT_MUTABLE,
    REGRESSION_METRICS,
    STEP_NAMES,
    TUNE_METHODS,
    AugmentStep,
    CNNSpec,
    DataSpec,
    DPSpec,
    EarlyStoppingSpec,
    EvaluateSpec,
    FederatedSpec,
    LogisticSpec,
    Loss,
    Metric,
    MLPSpec,
    ModelSpec,
    ParamRange,
    ProcessStep,
    Recipe,
    RegisterSpec,
    ScheduleSpec,
    Task,
    TrainSpec,
    TuneSpec,
    check_parallel,
    validate_mapping,
)
from consortium.recipe.tuning import Decision, apply_params, check_space, decisions_of, is_float_path
from consortium.recipe.validate import validate_against

__all__ = [
    "AUGMENT_NAMES",
    "CLASSIFICATION_METRICS",
    "PBT_MUTABLE",
    "REGRESSION_METRICS",
    "STEP_NAMES",
    "TUNE_METHODS",
    "AugmentStep",
    "CNNSpec",
    "DPSpec",
    "DataSpec",
    "EarlyStoppingSpec",
    "EvaluateSpec",
    "FederatedSpec",
    "LogisticSpec",
    "Loss",
    "MLPSpec",
    "Metric",
    "ModelSpec",
    "ParamRange",
    "ProcessStep",
    "Recipe",
    "RegisterSpec",
    "ScheduleSpec",
    "Task",
    "TrainSpec",
    "TuneSpec",
    "apply_params",
    "check_parallel",
    "check_space",
    "is_float_path",
    "Decision",
    "decisions_of",
    "parse_recipe",
    "validate_against",
    "validate_mapping",
]
