"""Explanations with Integrated Gradients (Captum): which inputs pushed the model toward a class.

Attributions are computed on the model's probability for the target class (softmax; for a
single-logit binary model, the sigmoid pair), from an all-zeros baseline in the preprocessed
space (for standardized features that is the training mean). Tabular inputs get one score per
feature with its name; images get a (C, H, W) map and a PNG heat map.

>>> from consortium.data.samples import load_sample
>>> from consortium.training.pipeline import run_training
>>> recipe = {"name": "iris", "data": {"target": "target"}, "process": [{"normalize": {}}],
...           "model": {"type": "logistic"}, "train": {"lr": 0.1, "epochs": 10}}
>>> res = run_training(recipe, load_sample("iris"))
>>> e = explain(res, [5.1, 3.5, 1.4, 0.2])
>>> e["target_name"], len(e["features"]), sorted(e["features"][0])
('setosa', 4, ['name', 'score', 'value'])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from consortium.errors import InvalidInput


@dataclass(frozen=True)
class FederatedSource:
    """A federated model (``consortium.federation``): ``Scale`` + net over raw features. The net
    is explained on the scaled inputs (zero baseline = the federation's mean), the scores are
    reported against the raw values, under ``feature_names``."""

    recipe: dict[str, Any]
    stats: dict[str, Any]
    state: bytes
    feature_names: list[str] | None = None

    def load(self) -> tuple[Any, Any, tuple[int, ...], str]:
        """(scale, net, input_shape, task)."""
        import io

        import torch

        from consortium.federation.app.features import GlobalStats
        from consortium.federation.app.model import global_model
        from consortium.recipe import parse_recipe

        recipe = parse_recipe(self.recipe)
        m = global_model(recipe, GlobalStats.from_dict(self.stats))
        m.load_state_dict(torch.load(io.BytesIO(self.state), weights_only=True))
        m.eval()
        return m[0], m[1], tuple(self.stats["input_shape"]), recipe.resolved_task


def _resolve(source: Any) -> tuple[Any, tuple[int, ...], str, dict[str, Any] | None]:
    """(model, input_shape, task, preprocessing state or None) from a result or a tuple."""
    from consortium.training.pipeline import TrainingResult, load_torch_model

    if isinstance(source, TrainingResult):
        return source.load_model(), source.input_shape, source.task, source.preprocessing
    if isinstance(source, FederatedSource):
        _, net, shape, task = source.load()
        return net, shape, task, None
    if isinstance(source, (tuple, list)) and len(source) in (4, 5, 6):
        spec, state, input_shape, n_outputs = source[:4]
        prep = source[4] if len(source) > 4 else None
        task = source[5] if len(source) > 5 else (prep or {}).get("task", "classification")
        return (
            load_torch_model(spec, state, tuple(input_shape), int(n_outputs)),
            tuple(input_shape),
            task,
            prep,
        )
    raise InvalidInput(
        "explain needs a TrainingResult or (model_spec, torch_state, input_shape, n_outputs"
        "[, preprocessing_state[, task]])"
    )


def explain(
    source: Any,
    x: Any,
    target: int | str | None = None,
    *,
    preprocessed: bool | None = None,
    n_steps: int = 32,
) -> dict[str, Any]:
    """Integrated Gradients for one sample. ``x`` is raw (a row, a dict by column, a pixel array)
    when preprocessing state is known, else already preprocessed; ``preprocessed=True`` forces the
    latter. ``target`` is a class index or name (default: the predicted class)."""
    import torch
    from captum.attr import IntegratedGradients

    from consortium.processing.preprocessor import Preprocessor
    from consortium.training.export import WithHead

    model, input_shape, task, prep_state = _resolve(source)
    prep = Preprocessor.from_state(prep_state) if prep_state else None
    shown = None  # the values reported next to each score, when they differ from the model's input
    if prep is not None and not preprocessed:
        X = prep.transform_inputs(x)
    else:
        X = np.asarray(x, dtype=np.float32).reshape(-1, *input_shape)
    if isinstance(source, FederatedSource):
        scale = source.load()[0]
        shown = X
        with torch.no_grad():
            X = scale(torch.from_numpy(np.ascontiguousarray(X))).numpy()
    if X.shape[0] != 1:
        raise InvalidInput(f"explain takes one sample; got {X.shape[0]}", hint="call it once per sample")
    head = WithHead(model, task).eval()
    inp = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    with torch.no_grad():
        out = head(inp)[0].numpy()  # (K,)
    if prep is not None:
        names = prep.class_names
    elif isinstance(source, FederatedSource):
        names = [str(c) for c in source.stats.get("classes", [])] or [str(i) for i in range(len(out))]
    else:
        names = [str(i) for i in range(len(out))]
    if task == "regression":
        idx = 0
    elif target is None:
        idx = int(out.argmax())
    elif isinstance(target, str):
        if target not in names:
            raise InvalidInput(f"unknown class {target!r}", hint=f"classes are: {', '.join(names)}")
        idx = names.index(target)
    else:
        idx = int(target)
        if not 0 <= idx < len(out):
            raise InvalidInput(f"target class index {idx} is out of range 0..{len(out) - 1}")
    ig = IntegratedGradients(head)
    attr, delta = ig.attribute(
        inp, baselines=torch.zeros_like(inp), target=idx, n_steps=n_steps, return_convergence_delta=True
    )
    a = attr[0].detach().numpy().astype(np.float64)
    result: dict[str, Any] = {
        "method": "integrated_gradients",
        "task": task,
        "target": idx,
        "target_name": names[idx] if task != "regression" and idx < len(names) else None,
        "output": out.tolist(),
        "convergence_delta": float(delta.abs().max()),
    }
    if len(input_shape) == 3:
        result["attributions"] = a.tolist()  # (C, H, W)
        result["heatmap_png"] = heatmap_png(a, X[0] if shown is None else shown[0])
    else:
        if prep is not None and prep.feature_names:
            feat = prep.feature_names
        elif isinstance(source, FederatedSource) and source.feature_names:
            feat = source.feature_names
        else:
            feat = [f"f{i}" for i in range(a.size)]
        result["attributions"] = a.tolist()
        result["features"] = sorted(
            (
                {"name": n, "value": float(v), "score": float(s)}
                for n, v, s in zip(feat, X[0] if shown is None else shown[0], a, strict=False)
            ),
            key=lambda f: -abs(f["score"]),
        )
    return result


def heatmap_png(attr: np.ndarray, image: np.ndarray) -> bytes:
    """Side by side: the (preprocessed) input and its attribution map (red: toward the class)."""
    from consortium.evaluation.plots import _figure, _png

    fig = _figure(6, 3)
    left, right = fig.subplots(1, 2)
    img = image.mean(0) if image.shape[0] != 3 else np.moveaxis(image, 0, -1)
    if img.ndim == 3:
        img = (img - img.min()) / (np.ptp(img) or 1.0)
    left.imshow(img, cmap="gray" if img.ndim == 2 else None)
    left.set_title("input")
    m = attr.sum(0)
    lim = float(np.abs(m).max()) or 1.0
    im = right.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim)
    right.set_title("attribution")
    fig.colorbar(im, ax=right)
    for ax in (left, right):
        ax.axis("off")
    return _png(fig)


__all__ = ["explain", "heatmap_png"]
