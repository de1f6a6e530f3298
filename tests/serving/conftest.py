"""Fixtures for the serving tests."""

from __future__ import annotations

import pytest
from serving_models import linear_onnx


@pytest.fixture(scope="session")
def linear_bytes() -> bytes:
    return linear_onnx()
