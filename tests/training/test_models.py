"""Model zoo: shapes, the seed's Keras CNN, clear refusals."""

from __future__ import annotations

import pytest
import torch

from consortium.errors import InvalidInput
from consortium.recipe import CNNSpec, LogisticSpec, MLPSpec
from consortium.training.models import build_model, count_parameters, n_outputs_for


def test_cnn_mlp_logistic_shapes() -> None:
    cnn = build_model(
        CNNSpec(channels=[8, 16], kernel_size=3, pool=2, batch_norm=True, dropout=0.1, dense=[32]),
        (3, 16, 16),
        5,
    )
    assert cnn(torch.zeros(4, 3, 16, 16)).shape == (4, 5)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in cnn.modules())
    mlp = build_model({"type": "mlp", "hidden": [16, 8]}, (30,), 2)
    assert mlp(torch.zeros(7, 30)).shape == (7, 2)
    assert build_model(LogisticSpec(), (1, 8, 8), 10)(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_seed_keras_model_is_expressible() -> None:
    # Conv2D(32, 3x3, relu) -> MaxPool 2x2 -> Flatten -> Dense(128, relu) -> Dense(1, sigmoid) on 28x28x1
    spec = CNNSpec(channels=[32], kernel_size=3, padding="valid", pool=2, dense=[128])
    n_out = n_outputs_for("classification", "binary_cross_entropy", 2)
    model = build_model(spec, (1, 28, 28), n_out)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 1)
    # same parameter count as the Keras model: 320 + 13*13*32*128+128 + 129
    assert count_parameters(model) == 320 + (13 * 13 * 32 * 128 + 128) + 129


def test_refusals() -> None:
    with pytest.raises(InvalidInput, match="cnn needs image input"):
        build_model(CNNSpec(), (30,), 2)
    with pytest.raises(InvalidInput, match="too large"):
        build_model(CNNSpec(kernel_size=9, padding="valid"), (1, 8, 8), 2)
    with pytest.raises(InvalidInput, match="model.type"):
        build_model({"type": "transformer"}, (4,), 2)
    assert isinstance(build_model(MLPSpec(), (4,), 3), torch.nn.Module)
