"""Explanations with Integrated Gradients (Captum): which inputs pushed the model toward a class.

Attributions are computed on the model's probability for the target class (softmax; for a
single-logit binary model, the sigmoid pair), from an all-zeros baseline in the preprocessed
space (for standardized features that is the training mean). Tabular inputs get one score per
feature with its name; images get a (C, H, W) map and a PNG heat map.

The model comes in built, as an ``Explainable`` (or anything whose ``explainable()`` gives one):
training (``TrainingResult.explainable``, ``training.result.explainable``) and federation
(``federation.engine.result.explainable``) build theirs, so this module imports neither.

>>> import torch
>>> head = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Softmax(dim=1))  # (B, 3) -> (B, 2)
>>> model = Explainable(head, (3,), "classification", class_names=["no", "yes"], feature_names=["a", "b", "c"])
>>> e = explain(model, [1.0, 0.0, 2.0], target="yes")
>>> e["target_name"], sorted(f["name"] for f in e["features"]), sorted(e["features"][0])
('yes', ['a', 'b', 'c'], ['name', 'score', 'value'])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from consortium.errors import InvalidInput


@dataclass(frozen=True)
class Explainable:
    """A model ready to explain. ``head`` maps model inputs (B, *input_shape) to what is explained:
    class probabilities, or the predicted values for regression (``training.export.WithHead`` on a
    trained net). With ``preprocessing`` (a ``Preprocessor`` state) inputs are raw and transformed
    first. With ``scale`` (a federated model's leading ``Scale`` layer) attributions are on the
    scaled inputs (zero baseline = the federation's mean) and reported against the raw values."""

    head: Any  # torch.nn.Module
    input_shape: tuple[int, ...]
    task: str
    preprocessing: dict[str, Any] | None = None
    scale: Any = None  # torch.nn.Module | None
    class_names: list[str] | None = None  # None: the preprocessing's, else the output indices
    feature_names: list[str] | None = None  # None: the preprocessing's, else f0, f1, ...


class HasExplainable(Protocol):
    """Anything that can give its model as an ``Explainable`` (e.g. a ``TrainingResult``)."""

    def explainable(self) -> Explainable: ...


def explain(
    source: Explainable | HasExplainable,
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

    if not isinstance(source, Explainable):
        if not callable(getattr(source, "explainable", None)):
            raise InvalidInput("explain needs an Explainable, or a result with explainable() (a TrainingResult)")
        source = source.explainable()
    input_shape, task = tuple(source.input_shape), source.task
    prep = Preprocessor.from_state(source.preprocessing) if source.preprocessing else None
    shown = None  # the values reported next to each score, when they differ from the model's input
    if prep is not None and not preprocessed:
        X = prep.transform_inputs(x)
    else:
        X = np.asarray(x, dtype=np.float32).reshape(-1, *input_shape)
    if source.scale is not None:
        shown = X
        with torch.no_grad():
            X = source.scale(torch.from_numpy(np.ascontiguousarray(X))).numpy()
    if X.shape[0] != 1:
        raise InvalidInput(f"explain takes one sample; got {X.shape[0]}", hint="call it once per sample")
    head = source.head.eval()
    inp = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    with torch.no_grad():
        out = head(inp)[0].numpy()  # (K,)
    if source.class_names is not None:
        names = source.class_names or [str(i) for i in range(len(out))]
    elif prep is not None:
        names = prep.class_names
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
        if source.feature_names:
            feat = source.feature_names
        elif prep is not None and prep.feature_names:
            feat = prep.feature_names
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


__all__ = ["Explainable", "HasExplainable", "explain", "heatmap_png"]
