"""What a training run produced (``TrainingResult``), and the trained model rebuilt from its spec and
weights: as a torch module (``load_torch_model``) or ready to explain (``explainable``).

>>> import io, torch
>>> from consortium.recipe import MLPSpec
>>> from consortium.training.models import build_model
>>> buf = io.BytesIO(); torch.save(build_model(MLPSpec(hidden=[4]), (3,), 2).state_dict(), buf)
>>> load_torch_model({"type": "mlp", "hidden": [4]}, buf.getvalue(), (3,), 2)(torch.zeros(5, 3)).shape
torch.Size([5, 2])
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from consortium.processing.preprocessor import Preprocessor

if TYPE_CHECKING:
    from consortium.evaluation.explain import Explainable


@dataclass
class TrainingResult:
    """Everything a training run produced. All fields but the bytes are JSON-serializable;
    ``summary()`` gives them without the bytes."""

    onnx: bytes
    torch_state: bytes  # torch.save(state_dict)
    model_spec: dict[str, Any]
    input_shape: tuple[int, ...]
    n_outputs: int
    signature: dict[str, Any]
    preprocessing: dict[str, Any]  # Preprocessor.state()
    task: str
    class_names: list[str]
    metrics: dict[str, Any]  # on the test split
    history: list[dict[str, Any]]
    recipe: dict[str, Any]  # the recipe actually trained (best tuned values applied)
    reference_stats: dict[str, Any]
    confusion_matrix: list[list[int]] | None = None
    cv: dict[str, Any] | None = None  # {"folds": k, "epochs", "per_fold": [...], "summary": {metric: {mean, std}}}
    tuning: dict[str, Any] | None = None
    plots: dict[str, bytes] = field(default_factory=dict)
    split_sizes: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    onnx_max_abs_diff: float | None = None

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("onnx", "torch_state", "plots"):
            d.pop(k)
        d["input_shape"] = list(self.input_shape)
        d["plots"] = sorted(self.plots)
        return d

    def load_model(self) -> Any:
        """The trained torch module (eval mode), rebuilt from spec + state."""
        return load_torch_model(self.model_spec, self.torch_state, self.input_shape, self.n_outputs)

    def preprocessor(self) -> Preprocessor:
        return Preprocessor.from_state(self.preprocessing)

    def explainable(self) -> Explainable:
        """The trained model as ``consortium.evaluation.explain.explain`` takes it (raw inputs)."""
        return explainable(self.model_spec, self.torch_state, self.input_shape, self.n_outputs,
                           self.preprocessing, self.task)


def load_torch_model(
    spec: dict[str, Any], state: bytes | dict[str, Any], input_shape: tuple[int, ...], n_outputs: int
) -> Any:
    """The net of ``spec`` with the weights ``state`` (``torch.save`` bytes or a state dict), eval mode."""
    import torch

    from consortium.training.models import build_model

    model = build_model(spec, tuple(input_shape), n_outputs)
    sd = torch.load(io.BytesIO(state), weights_only=True) if isinstance(state, (bytes, bytearray)) else state
    model.load_state_dict(sd)
    return model.eval()


def explainable(
    spec: dict[str, Any],
    state: bytes | dict[str, Any],
    input_shape: tuple[int, ...],
    n_outputs: int,
    preprocessing: dict[str, Any] | None = None,
    task: str | None = None,
) -> Explainable:
    """A trained net (spec + weights) with its output head, for ``evaluation.explain``. ``task``
    defaults to the preprocessing's, else classification; with ``preprocessing`` inputs are raw."""
    from consortium.evaluation.explain import Explainable
    from consortium.training.export import WithHead

    task = task or (preprocessing or {}).get("task", "classification")
    model = load_torch_model(spec, state, tuple(input_shape), int(n_outputs))
    return Explainable(WithHead(model, task), tuple(input_shape), task, preprocessing=preprocessing)
