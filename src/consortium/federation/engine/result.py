"""What a federated job returns, read from the ServerApp's output directory.

>>> FederatedResult.__dataclass_fields__.keys() >= {"state_dict", "onnx", "history", "epsilon"}
True
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from consortium.errors import ConsortiumError, Unavailable, from_code
from consortium.federation.app.progress import read_progress

if TYPE_CHECKING:
    from consortium.evaluation.explain import Explainable
    from consortium.recipe import Recipe


@dataclass
class FederatedResult:
    """Final model and report of one federated job.

    ``state_dict``: ``torch.save`` bytes of the final model (``Scale`` + net; takes raw features);
    ``onnx``: the same model in ONNX (None if export is unavailable); ``history``: the per-round
    records (see ``app.progress``); ``epsilon``: spent epsilon per organization (DP jobs);
    ``contribution``: leave-one-out / Shapley report; ``stats``: the global feature statistics
    (input shape, classes) needed to rebuild the model with ``app.model.global_model``.
    """

    state_dict: bytes
    onnx: bytes | None
    history: list[dict[str, Any]]
    epsilon: dict[str, float]
    contributors: list[str]
    contribution: dict[str, Any]
    final: dict[str, Any] | None
    stats: dict[str, Any]
    recipe: dict[str, Any]
    node_rows: dict[str, int]
    privacy_plan: dict[str, Any]
    seconds: float
    engine: str
    timings: dict[str, float] = field(default_factory=dict)

    def model(self) -> Any:
        """The final model as a torch module."""
        from consortium.recipe import parse_recipe

        return load_global_model(parse_recipe(self.recipe), self.stats, self.state_dict)

    def report(self) -> dict[str, Any]:
        """JSON-ready summary (everything but the model bytes)."""
        return {"engine": self.engine, "history": self.history, "epsilon": self.epsilon,
                "contributors": self.contributors, "contribution": self.contribution,
                "final": self.final, "node_rows": self.node_rows, "privacy_plan": self.privacy_plan,
                "seconds": self.seconds, "timings": self.timings}


def load_global_model(recipe: Recipe, stats: dict[str, Any], state: bytes) -> Any:
    """A federated job's final model (``Scale`` + net, eval mode) from its recipe, global statistics
    (``GlobalStats.to_dict``) and ``torch.save`` weights."""
    import torch

    from consortium.federation.app.features import GlobalStats
    from consortium.federation.app.model import global_model

    m = global_model(recipe, GlobalStats.from_dict(stats))
    m.load_state_dict(torch.load(io.BytesIO(state), weights_only=True))
    return m.eval()


def explainable(recipe: dict[str, Any], stats: dict[str, Any], state: bytes,
                feature_names: list[str] | None = None) -> Explainable:
    """A federated model for ``evaluation.explain``: the net is explained on the scaled inputs (zero
    baseline = the federation's mean), the scores reported against the raw values, under ``feature_names``."""
    from consortium.evaluation.explain import Explainable
    from consortium.recipe import parse_recipe
    from consortium.training.export import WithHead

    parsed = parse_recipe(recipe)
    m = load_global_model(parsed, stats, state)
    task = parsed.resolved_task
    return Explainable(WithHead(m[1], task), tuple(stats["input_shape"]), task, scale=m[0],
                       class_names=[str(c) for c in stats.get("classes", [])], feature_names=feature_names)


def raise_if_failed(out_dir: Path) -> None:
    """Raise the job's own error if the ServerApp recorded one."""
    for rec in read_progress(out_dir / "progress.jsonl"):
        if rec.get("kind") == "error":
            err = from_code(str(rec.get("code", "error")), f"federated job failed: {rec.get('message')}")
            raise err


def export_onnx_bytes(model: Any, stats: dict[str, Any], task: str = "classification") -> bytes | None:
    """ONNX bytes via ``consortium.training.export.export_onnx`` when that module exists."""
    try:
        from consortium.training.export import export_onnx
    except ImportError:
        return None
    return bytes(export_onnx(model, tuple(stats["input_shape"]), task=task))


def load_result(out_dir: Path, engine: str, timings: dict[str, float] | None = None) -> FederatedResult:
    """Build the result from ``result.json`` and ``model.pt`` in the job's output dir."""
    raise_if_failed(out_dir)
    path = out_dir / "result.json"
    if not path.exists():
        raise Unavailable("the federated job ended without a result", hint=f"see {out_dir}/progress.jsonl")
    data = json.loads(path.read_text())
    res = FederatedResult(
        state_dict=(out_dir / "model.pt").read_bytes(), onnx=None, history=data["history"],
        epsilon=data["epsilon"], contributors=data["contributors"], contribution=data["contribution"],
        final=data["final"], stats=data["stats"], recipe=data["recipe"], node_rows=data["node_rows"],
        privacy_plan=data.get("privacy_plan") or {}, seconds=float(data["seconds"]), engine=engine,
        timings=dict(timings or {}))
    try:
        task = "regression" if res.recipe.get("task") == "regression" or \
            (res.recipe.get("train") or {}).get("loss") == "mse" else "classification"
        res.onnx = export_onnx_bytes(res.model(), res.stats, task)
    except ConsortiumError:
        raise
    except Exception as e:  # noqa: BLE001 - the torch model is still returned
        res.timings["onnx_error"] = 0.0
        res.contribution.setdefault("warnings", []).append(f"ONNX export failed: {e}")
    return res
