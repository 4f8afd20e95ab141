"""Shared test settings: tolerances per dtype, seeded generators."""

import numpy as np
import pytest
import torch

# Named tolerances (STYLE.md). float32 is looser by its machine epsilon.
TOL = {
    torch.float64: dict(rtol=1e-9, atol=1e-11),
    torch.float32: dict(rtol=1e-5, atol=1e-6),
}

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


@pytest.fixture
def rng():
    return np.random.default_rng(0)
