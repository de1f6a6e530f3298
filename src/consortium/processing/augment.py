"""Training-time augmentation with kornia, applied to training batches only (never to eval or
serving). Geometric steps need images (N, C, H, W); gaussian_noise also works on tabular rows.

>>> import torch
>>> aug = build_augmenter([{"horizontal_flip": {"p": 1.0}}])
>>> x = torch.arange(4.0).reshape(1, 1, 2, 2)
>>> aug(x)[0, 0].tolist()
[[1.0, 0.0], [3.0, 2.0]]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from consortium.errors import InvalidInput


def _steps(augment: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for s in augment:
        if isinstance(s, dict):
            name, params = next(iter(s.items()))
            out.append((name, dict(params or {})))
        else:
            out.append((s.name, s.params.model_dump()))
    return out


def build_augmenter(augment: list[Any]) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """A callable batch -> augmented batch, or None if the list is empty."""
    steps = _steps(augment)
    if not steps:
        return None
    import kornia.augmentation as K

    image_ops: list[torch.nn.Module] = []
    noise: list[tuple[float, float]] = []
    for name, p in steps:
        prob = float(p.get("p", 0.5))
        if name == "horizontal_flip":
            image_ops.append(K.RandomHorizontalFlip(p=prob))
        elif name == "rotation":
            image_ops.append(K.RandomRotation(degrees=float(p.get("degrees", 10.0)), p=prob))
        elif name == "affine":
            image_ops.append(
                K.RandomAffine(
                    degrees=float(p.get("degrees", 0.0)),
                    translate=tuple(p["translate"]) if p.get("translate") else None,
                    scale=tuple(p["scale"]) if p.get("scale") else None,
                    p=prob,
                )
            )
        elif name == "gaussian_noise":
            noise.append((float(p.get("std", 0.1)), prob))
        else:
            raise InvalidInput(
                f"unknown augmentation {name!r}",
                hint="use horizontal_flip, rotation, affine or gaussian_noise",
            )
    pipeline = torch.nn.Sequential(*image_ops)

    def apply(x: torch.Tensor) -> torch.Tensor:
        if image_ops:
            if x.dim() != 4:
                raise InvalidInput("geometric augmentation needs image batches (N, C, H, W)")
            x = pipeline(x)
        for std, prob in noise:  # per-sample noise on any shape (kornia's noise op wants images)
            mask = (torch.rand(x.shape[0], device=x.device) < prob).to(x.dtype)
            x = x + torch.randn_like(x) * std * mask.view(-1, *([1] * (x.dim() - 1)))
        return x

    return apply
