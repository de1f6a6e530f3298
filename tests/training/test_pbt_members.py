"""PBT members keep one layer numbering whatever dropout rate PBT perturbs them to, so a member
exploiting a donor on the other side of 0 loads the donor's weights (it failed with
``Missing key(s) in state_dict``)."""

from __future__ import annotations

import torch

from consortium.recipe.schema import CNNSpec, MLPSpec
from consortium.training.models import build_model
from consortium.training.ray_tuning import _member_model


def test_members_at_dropout_zero_and_above_share_their_weights_layout() -> None:
    for spec, shape in [(MLPSpec(type="mlp", hidden=[16, 8]), (30,)),
                        (CNNSpec(type="cnn", channels=[4], dense=[16]), (1, 8, 8))]:
        zero = _member_model(build_model, spec.model_copy(update={"dropout": 0.0}), shape, 2)
        some = _member_model(build_model, spec.model_copy(update={"dropout": 0.25}), shape, 2)
        some.load_state_dict(zero.state_dict())  # the exploit: a donor's weights into the member
        zero.load_state_dict(some.state_dict())
        rates = [m.p for m in zero.modules() if isinstance(m, torch.nn.Dropout)]
        assert rates and all(r == 0.0 for r in rates)  # present, and passing values through
        zero.train()
        x = torch.randn(4, *shape)
        assert torch.equal(zero(x), zero(x))  # no dropout applied at rate 0
