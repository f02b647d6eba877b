"""Shared fixtures. Helpers for physics assertions live in :mod:`matsym.testing`."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture
def seed() -> int:
    """Fix every random generator the tests use."""
    torch.manual_seed(0)
    np.random.seed(0)
    return 0


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request) -> torch.dtype:
    return request.param
